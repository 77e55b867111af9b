// Command benchscale measures Sluice and Flagger releasing N Deployments at once on the local
// control plane (issue 14) and writes the results to docs/benchmarks.md ("## Scale") and a plot
// to docs/bench-scale.svg.
//
//	flock /tmp/sluice-e2e.lock go run ./e2e/cmd/benchscale [-n 10,50,200] [-only sluice|flagger]
//	    [-out docs/benchmarks.md] [-svg docs/bench-scale.svg] [-note TEXT] [-timeout 30m]
//	    [-admission 200] [-unmanaged 10000] [-sluice-args "--concurrency=64"] [-profile DIR]
//	    [-keep] [-reset]
//
// For each controller it boots a control plane (e2e/cluster, the API server auditing the
// controllers' requests), Prometheus and the controller (Sluice as e2e/stack starts it, built
// from this checkout; Flagger v1.36.1 built from its module, e2e/cluster.EnsureFlagger), and for
// each N: a fresh controller process, N Deployments with 2 replicas configured for blue/green
// with 3 analysis runs at a 10 s interval and one Prometheus check `vector(100)`, then the
// image of all N set at once. Then, on Sluice's control plane, the admission latency of
// Deployment updates with Sluice's webhook, a no-op webhook and none; with -unmanaged, Sluice's
// memory without and with that many Deployments, Services and ReplicaSets it does not manage
// (memory.go). Sluice's runs also record its work queue from its own metrics (queue.go), and
// with -profile its CPU and heap profiles. Rows already in the report for other controllers or
// N stay (see results).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/stack"
)

type options struct {
	ns        []int
	only      string
	out, svg  string
	note      string
	timeout   time.Duration
	admission int
	unmanaged int
	// sluiceArgs are extra flags for sluice (e.g. --concurrency=64); profile, when set, is a
	// directory for CPU and heap profiles of sluice in each run.
	sluiceArgs []string
	profile    string
	keep       bool
	reset      bool
	// controlPlaneQPS is the controller-manager's and scheduler's client limit (0: their defaults).
	controlPlaneQPS float64
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchscale", flag.ContinueOnError)
	n := fs.String("n", "10,50,200", "comma-separated numbers of concurrent releases")
	fs.StringVar(&o.only, "only", "", "measure only this controller: sluice or flagger (default both)")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file whose \"## Scale\" section is written (created or replaced)")
	fs.StringVar(&o.svg, "svg", "docs/bench-scale.svg", "where the plot is written")
	fs.StringVar(&o.note, "note", "", "a note kept with this run's rows (e.g. \"validation run\")")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "how long the releases of one N may take before the unfinished ones are reported as such")
	fs.IntVar(&o.admission, "admission", 200, "dry-run updates per webhook setup for the admission latency (0: skip it); needs Sluice")
	fs.IntVar(&o.unmanaged, "unmanaged", 0, "also measure Sluice's memory with this many Deployments, Services and ReplicaSets it does not manage (0: skip); runs last")
	sluiceArgs := fs.String("sluice-args", "", "extra sluice flags, space-separated (e.g. \"--concurrency=64\"); the report's note should say so")
	fs.StringVar(&o.profile, "profile", "", "directory for sluice's CPU profile (the first 2 minutes after set image) and heap profile (at the end) of each run")
	fs.Float64Var(&o.controlPlaneQPS, "control-plane-qps", 0, "client limit of kube-controller-manager and kube-scheduler, requests/s (0: their defaults, 20 and 50); rows measured with it are kept apart from the default's")
	fs.BoolVar(&o.keep, "keep", false, "keep the control planes' directories (logs, audit log)")
	fs.BoolVar(&o.reset, "reset", false, "drop the rows of earlier runs from the report")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.sluiceArgs = strings.Fields(*sluiceArgs)
	for _, f := range strings.Split(*n, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 || v > 5000 {
			return o, fmt.Errorf("-n %q: want a comma-separated list of numbers of releases from 1 to 5000", *n)
		}
		if !slices.Contains(o.ns, v) {
			o.ns = append(o.ns, v)
		}
	}
	slices.Sort(o.ns)
	switch o.only {
	case "", "sluice", "flagger":
	default:
		return o, fmt.Errorf("-only %q: want sluice or flagger", o.only)
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("-timeout %s: must be positive", o.timeout)
	}
	if o.controlPlaneQPS < 0 {
		return o, fmt.Errorf("-control-plane-qps %g: must not be negative", o.controlPlaneQPS)
	}
	if o.admission < 0 {
		return o, fmt.Errorf("-admission %d: must not be negative", o.admission)
	}
	if o.unmanaged < 0 || o.unmanaged > 0 && o.only == "flagger" {
		return o, fmt.Errorf("-unmanaged %d: must not be negative, and needs Sluice", o.unmanaged)
	}
	if o.out == "" || o.svg == "" {
		return o, errors.New("-out and -svg must name files")
	}
	return o, nil
}

func run(ctx context.Context, o options) error {
	repo, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	// Checked before an hour of measuring.
	for _, p := range []*string{&o.out, &o.svg} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Dir(*p)); err != nil {
			return fmt.Errorf("output directory: %w", err)
		}
	}
	doc := ""
	if b, err := os.ReadFile(o.out); err == nil {
		doc = string(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	prev, err := existingResults(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", o.out, err)
	}
	if o.reset {
		prev = results{}
	}
	commit := gitCommit(repo)
	date := time.Now().UTC().Format("2006-01-02")
	copts := cluster.Options{Nodes: nodesFor(slices.Max(o.ns)), AuditPolicy: auditPolicy, KeepDir: o.keep, Log: os.Stdout,
		ControlPlaneQPS: float32(o.controlPlaneQPS)}

	var flaggerBin cluster.Flagger
	if o.only != "sluice" {
		// Built before any control plane runs: a cold build takes minutes.
		if flaggerBin, err = cluster.EnsureFlagger(ctx, copts); err != nil {
			return err
		}
	}
	var got results
	var errs []error
	stamp := func(s *summary) {
		s.Date, s.Commit, s.Note, s.ControlPlaneQPS = date, commit, o.note, o.controlPlaneQPS
	}
	if o.only != "flagger" {
		runs, adm, mem, err := benchSluice(ctx, o, copts, repo)
		for i := range runs {
			stamp(&runs[i])
		}
		got.Runs = append(got.Runs, runs...)
		if adm != nil {
			adm.Date, adm.Commit, adm.Note = date, commit, o.note
			got.Admission = adm
		}
		if mem != nil {
			mem.Date, mem.Commit, mem.Note = date, commit, o.note
			got.Memory = mem
		}
		errs = append(errs, err)
	}
	if o.only != "sluice" && ctx.Err() == nil {
		runs, err := benchFlagger(ctx, o, copts, flaggerBin)
		for i := range runs {
			stamp(&runs[i])
		}
		got.Runs = append(got.Runs, runs...)
		errs = append(errs, err)
	}
	if len(got.Runs) > 0 || got.Admission != nil || got.Memory != nil {
		if err := write(o, doc, prev.merge(got)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// write renders the merged results into the report and the plot, and prints the section.
func write(o options, doc string, r results) error {
	rel, err := filepath.Rel(filepath.Dir(o.out), o.svg)
	if err != nil {
		rel = o.svg
	}
	section, err := render(r, filepath.ToSlash(rel))
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, []byte(replaceSection(doc, section)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(o.svg, []byte(plot(r.Runs)), 0o644); err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(section[:strings.Index(section, dataPrefix)])
	fmt.Printf("written to %s and %s\n", o.out, o.svg)
	return nil
}

// benchSluice boots a control plane with Prometheus and Sluice and runs every N, then the
// admission latency, then (asked for with -unmanaged) the memory beside unmanaged objects.
func benchSluice(ctx context.Context, o options, copts cluster.Options, repo string) ([]summary, *admissionResult, *memoryResult, error) {
	fmt.Println("== Sluice: booting a control plane, Prometheus and sluice (built from this checkout)")
	c, err := cluster.Start(ctx, copts)
	if err != nil {
		return nil, nil, nil, err
	}
	defer stopCluster(c)
	ctl := sluiceCtl{profile: o.profile}
	args := o.sluiceArgs
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return nil, nil, nil, err
		}
		ports, err := cluster.FreePorts(1)
		if err != nil {
			return nil, nil, nil, err
		}
		ctl.pprof = fmt.Sprintf("127.0.0.1:%d", ports[0])
		args = append(slices.Clone(args), "--pprof-bind-address="+ctl.pprof)
	}
	if ctl.s, err = stack.Up(ctx, c, stack.Options{Log: os.Stdout, SluiceArgs: args}); err != nil {
		return nil, nil, nil, err
	}
	b, err := newBench(c, ctl, o)
	if err != nil {
		return nil, nil, nil, err
	}
	runs, err := b.runAll(ctx)
	if err != nil {
		return runs, nil, nil, err
	}
	var adm *admissionResult
	if o.admission > 0 {
		adm = &admissionResult{Requests: o.admission, Load: loadAverage()}
		profiled := ctl.startProfile(ctx, "sluice-admission", admissionProfileSeconds, b.logf)
		adm.Cases, err = measureAdmission(ctx, b.cs, repo, ctl.s.MetricsURL, o.admission, b.logf)
		profiled()
		if err != nil {
			return runs, nil, nil, fmt.Errorf("admission latency: %w", err)
		}
		for _, c := range adm.Cases {
			b.logf("admission %s: p50 %.2f ms, p99 %.2f ms", c.Webhook, c.P50, c.P99)
		}
	}
	if o.unmanaged == 0 {
		return runs, adm, nil, nil
	}
	mem, err := b.measureMemory(ctx, o.unmanaged)
	if err != nil {
		return runs, adm, nil, fmt.Errorf("memory: %w", err)
	}
	return runs, adm, mem, nil
}

// benchFlagger boots a control plane with Prometheus and Flagger and runs every N.
func benchFlagger(ctx context.Context, o options, copts cluster.Options, f cluster.Flagger) ([]summary, error) {
	fmt.Printf("== Flagger %s: booting a control plane, Prometheus and flagger\n", f.Version)
	c, err := cluster.Start(ctx, copts)
	if err != nil {
		return nil, err
	}
	defer stopCluster(c)
	ports, err := cluster.FreePorts(1)
	if err != nil {
		return nil, err
	}
	promKubeconfig, err := c.PrometheusKubeconfig(ctx)
	if err != nil {
		return nil, err
	}
	// As e2e/stack configures it for Sluice: pods every second, and the controller's /metrics.
	promConfig := cluster.PodsScrapeConfig(promKubeconfig, time.Second) +
		cluster.StaticScrapeJob("flagger", fmt.Sprintf("127.0.0.1:%d", ports[0]), time.Second)
	promURL, err := c.StartPrometheus(ctx, promConfig)
	if err != nil {
		return nil, err
	}
	ctl, err := startFlagger(ctx, c, f, promURL, ports[0])
	if err != nil {
		return nil, err
	}
	b, err := newBench(c, ctl, o)
	if err != nil {
		return nil, err
	}
	return b.runAll(ctx)
}

func newBench(c *cluster.Cluster, ctl controller, o options) (*bench, error) {
	cs, dyn, err := clients(c)
	if err != nil {
		return nil, err
	}
	return &bench{c: c, cs: cs, dyn: dyn, ctl: ctl, opts: o}, nil
}

// clients are admin clients that keep the API server's warnings (Sluice's "held …" for every
// update) out of the progress lines.
func clients(c *cluster.Cluster) (kubernetes.Interface, dynamic.Interface, error) {
	cfg := c.RESTConfig()
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	return cs, dyn, err
}

// runAll runs every N in turn; it stops at the first that fails.
func (b *bench) runAll(ctx context.Context) ([]summary, error) {
	var out []summary
	for _, n := range b.opts.ns {
		s, err := b.run(ctx, n)
		if err != nil {
			return out, fmt.Errorf("%s N=%d: %w", b.ctl.name(), n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func stopCluster(c *cluster.Cluster) {
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
}

// nodesFor sizes the fake nodes for n releases: each node hands out pod IPs from its own /24,
// and a release has up to about 5 pods at once (2 stable, 2 canary, 1 surging).
func nodesFor(n int) int {
	return max(1, int(math.Ceil(float64(5*n)/240)))
}

// gitCommit names the checkout's commit, "+dirty" when tracked files have changes.
func gitCommit(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		commit += "+dirty"
	}
	return commit
}
