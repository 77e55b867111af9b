// Command mutate is Sluice's mutation tester: it plants one small bug at a time in the
// non-test files of a package (a comparison flipped, && turned into ||, an if condition negated,
// a statement of a branch removed, a returned bool negated, a constant compared with moved by
// one) and runs that package's unit tests against it. A mutant the tests catch is killed; one
// they pass with survived, which names a behaviour no test pins. The source tree is never
// written: each mutant reaches the compiler through `go test -overlay`, so it is safe to run
// while others work in the same tree.
//
//	go run ./e2e/cmd/mutate [-j 1] [-max N] [-run REGEXP] [-timeout 1m] [-list] [package ...]
//
// Packages are directories relative to the module root (default: webhook rollout/plan
// rollout/analysis rollout/spec). Mutants that do not compile are not counted. The score is
// (killed + timed out) / (killed + timed out + survived).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

var defaultPackages = []string{"webhook", "rollout/plan", "rollout/analysis", "rollout/spec"}

type options struct {
	jobs    int
	max     int
	run     *regexp.Regexp
	timeout time.Duration
	list    bool
	pkgs    []string
}

func main() {
	var o options
	var run string
	flag.IntVar(&o.jobs, "j", 1, "mutants tested in parallel")
	flag.IntVar(&o.max, "max", 0, "test at most this many mutants (0: all)")
	flag.StringVar(&run, "run", "", "only mutants whose `file:line: mutation` matches this regexp")
	flag.DurationVar(&o.timeout, "timeout", time.Minute, "test run time limit per mutant (compilation not included); a mutant over it counts as timed out")
	flag.BoolVar(&o.list, "list", false, "list the mutants without testing them")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mutate [flags] [package dir ...]  (default %s)\n", strings.Join(defaultPackages, " "))
		flag.PrintDefaults()
	}
	flag.Parse()
	if run != "" {
		re, err := regexp.Compile(run)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mutate: -run: %v\n", err)
			os.Exit(2)
		}
		o.run = re
	}
	o.pkgs = flag.Args()
	if len(o.pkgs) == 0 {
		o.pkgs = defaultPackages
	}
	if o.jobs < 1 {
		o.jobs = 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Survivors are the report, not a failure: the exit status says only whether the run
	// completed.
	if _, err := mutate(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		os.Exit(1)
	}
}

// pkg is a package under test.
type pkg struct {
	Dir        string // absolute
	ImportPath string
	GoFiles    []string
	rel        string // relative to the module root
}

func mutate(ctx context.Context, o options) (*report, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	pkgs, err := listPackages(ctx, root, o.pkgs)
	if err != nil {
		return nil, err
	}

	type job struct {
		pkg *pkg
		abs string
		m   mutant
	}
	var jobs []job
	for _, p := range pkgs {
		for _, f := range p.GoFiles {
			abs := filepath.Join(p.Dir, f)
			src, err := os.ReadFile(abs)
			if err != nil {
				return nil, err
			}
			ms, err := generate(filepath.ToSlash(filepath.Join(p.rel, f)), src)
			if err != nil {
				return nil, err
			}
			for _, m := range ms {
				if o.run != nil && !o.run.MatchString(m.String()) {
					continue
				}
				jobs = append(jobs, job{p, abs, m})
			}
		}
	}
	if o.max > 0 && len(jobs) > o.max {
		jobs = jobs[:o.max]
	}
	if o.list {
		for _, j := range jobs {
			fmt.Println(j.m)
		}
		fmt.Printf("%d mutants\n", len(jobs))
		return nil, nil
	}
	if len(jobs) == 0 {
		return nil, errors.New("no mutants (check the package list and -run)")
	}

	tmp, err := os.MkdirTemp("", "sluice-mutate-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // a temp dir: nothing to do if it stays

	// The tests must pass before anything is planted in them.
	r := runner{root: root, tmp: tmp, timeout: o.timeout}
	for _, p := range pkgs {
		fmt.Printf("baseline: go test %s\n", p.rel)
		if res := r.test(ctx, p, "", nil, -1); res.outcome != survived {
			return nil, fmt.Errorf("the tests of %s do not pass unmutated (%s):\n%s", p.rel, res.outcome, res.output)
		}
	}

	fmt.Printf("%d mutants in %s; %d at a time\n", len(jobs), strings.Join(o.pkgs, " "), o.jobs)
	rep := &report{start: time.Now(), total: len(jobs)}
	work := make(chan int)
	var wg sync.WaitGroup
	for range o.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				j := jobs[i]
				res := r.test(ctx, j.pkg, j.abs, j.m.Src, i)
				if ctx.Err() != nil {
					return
				}
				rep.add(j.m, res)
			}
		}()
	}
	for i := range jobs {
		select {
		case work <- i:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(work)
	wg.Wait()
	rep.print(os.Stdout)
	if ctx.Err() != nil {
		return rep, fmt.Errorf("interrupted after %d of %d mutants", rep.done, rep.total)
	}
	return rep, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

func listPackages(ctx context.Context, root string, dirs []string) ([]*pkg, error) {
	args := []string{"list", "-json"}
	for _, d := range dirs {
		args = append(args, "./"+filepath.ToSlash(filepath.Clean(d)))
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, stderr.String())
	}
	var pkgs []*pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if p.rel, err = filepath.Rel(root, p.Dir); err != nil {
			return nil, err
		}
		pkgs = append(pkgs, &p)
	}
	return pkgs, nil
}

type outcome string

const (
	killed     outcome = "killed"
	survived   outcome = "survived"
	timedOut   outcome = "timeout"
	buildError outcome = "build-failed"
)

type result struct {
	outcome outcome
	// detail is the first failing test of a killed mutant.
	detail  string
	output  string
	elapsed time.Duration
}

type runner struct {
	root, tmp string
	timeout   time.Duration
}

var failLine = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)

// test runs p's unit tests with file abs replaced by src (nothing replaced when abs is "").
// For the unmutated baseline a pass is reported as survived.
func (r runner) test(ctx context.Context, p *pkg, abs string, src []byte, n int) result {
	args := []string{"test", "-short", "-count=1", "-failfast", "-vet=off", "-timeout=" + r.timeout.String()}
	if abs != "" {
		file := filepath.Join(r.tmp, fmt.Sprintf("mutant-%d.go", n))
		overlay := filepath.Join(r.tmp, fmt.Sprintf("overlay-%d.json", n))
		b, err := json.Marshal(map[string]map[string]string{"Replace": {abs: file}})
		if err == nil {
			err = os.WriteFile(file, src, 0o600)
		}
		if err == nil {
			err = os.WriteFile(overlay, b, 0o600)
		}
		if err != nil {
			return result{outcome: buildError, output: err.Error()}
		}
		defer func() { _, _ = os.Remove(file), os.Remove(overlay) }() // temp files: nothing to do if they stay
		args = append(args, "-overlay="+overlay)
	}
	args = append(args, "./"+filepath.ToSlash(p.rel))

	// Compilation is not bounded by -timeout; the outer limit only guards against a hung
	// toolchain.
	cctx, cancel := context.WithTimeout(ctx, r.timeout+15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "go", args...)
	cmd.Dir = r.root
	// The test binary is a child of go: kill the whole group on cancellation.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	res := result{output: out.String(), elapsed: time.Since(start)}
	switch {
	case err == nil:
		res.outcome = survived
	case strings.Contains(res.output, "[build failed]") || strings.Contains(res.output, "[setup failed]"):
		res.outcome = buildError
	case cctx.Err() != nil || strings.Contains(res.output, "panic: test timed out after"):
		res.outcome = timedOut
	default:
		res.outcome = killed
		if m := failLine.FindStringSubmatch(res.output); m != nil {
			res.detail = m[1]
		} else if strings.Contains(res.output, "panic:") {
			res.detail = "panic"
		}
	}
	return res
}

// report collects outcomes and prints progress as they come.
type report struct {
	mu                           sync.Mutex
	start                        time.Time
	total, done                  int
	killed, timedOut, builds     int
	survivors, timeouts          []mutant
	perPkgKilled, perPkgSurvived map[string]int
}

func (r *report) add(m mutant, res result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.perPkgKilled == nil {
		r.perPkgKilled, r.perPkgSurvived = map[string]int{}, map[string]int{}
	}
	r.done++
	pkg := filepath.Dir(m.File)
	switch res.outcome {
	case killed:
		r.killed++
		r.perPkgKilled[pkg]++
	case timedOut:
		r.timedOut++
		r.timeouts = append(r.timeouts, m)
		r.perPkgKilled[pkg]++
	case survived:
		r.survivors = append(r.survivors, m)
		r.perPkgSurvived[pkg]++
	case buildError:
		r.builds++
	}
	eta := ""
	if r.done < r.total {
		left := time.Since(r.start) / time.Duration(r.done) * time.Duration(r.total-r.done)
		eta = fmt.Sprintf(", ~%s left", left.Round(time.Minute))
	}
	detail := ""
	if res.detail != "" {
		detail = " by " + res.detail
	}
	fmt.Printf("[%d/%d] %-12s %s%s (%.1fs%s)\n", r.done, r.total, res.outcome, m, detail, res.elapsed.Seconds(), eta)
}

func (r *report) print(w *os.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byPos := func(ms []mutant) {
		sort.SliceStable(ms, func(i, j int) bool {
			if ms[i].File != ms[j].File {
				return ms[i].File < ms[j].File
			}
			return ms[i].Line < ms[j].Line
		})
	}
	byPos(r.survivors)
	byPos(r.timeouts)
	fmt.Fprintf(w, "\n== mutation testing: %d mutants tested in %s\n", r.done, time.Since(r.start).Round(time.Second))
	fmt.Fprintf(w, "killed %d, timed out %d, survived %d, did not compile %d (not counted)\n", r.killed, r.timedOut, len(r.survivors), r.builds)
	pkgs := make([]string, 0, len(r.perPkgKilled))
	for p := range r.perPkgKilled {
		pkgs = append(pkgs, p)
	}
	for p := range r.perPkgSurvived {
		if _, ok := r.perPkgKilled[p]; !ok {
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		k, s := r.perPkgKilled[p], r.perPkgSurvived[p]
		fmt.Fprintf(w, "  %-18s score %5.1f%% (%d/%d)\n", p, score(k, s), k, k+s)
	}
	if counted := r.killed + r.timedOut + len(r.survivors); counted > 0 {
		fmt.Fprintf(w, "score %.1f%% (%d/%d)\n", score(r.killed+r.timedOut, len(r.survivors)), r.killed+r.timedOut, counted)
	}
	if len(r.timeouts) > 0 {
		fmt.Fprintln(w, "timed out (counted as killed):")
		for _, m := range r.timeouts {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
	if len(r.survivors) > 0 {
		fmt.Fprintln(w, "survivors:")
		for _, m := range r.survivors {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
}

func score(k, s int) float64 {
	if k+s == 0 {
		return 100
	}
	return 100 * float64(k) / float64(k+s)
}
