// Command cluster runs Sluice's local control plane (package e2e/cluster) for the shell:
//
//	go run ./e2e/cmd/cluster build   # build the pinned binaries into the cache (once, ~30 min cold)
//	go run ./e2e/cmd/cluster build golangci-lint   # build an on-demand tool; prints its path
//	go run ./e2e/cmd/cluster up      # start a detached control plane (~15 s warm)
//	go run ./e2e/cmd/cluster env     # print export lines: eval "$(go run ./e2e/cmd/cluster env)"
//	go run ./e2e/cmd/cluster down    # stop it, leaving no process behind
//
// State lives in <repo>/.local/cluster by default (-dir); binaries are linked into <repo>/bin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

const usage = `usage: go run ./e2e/cmd/cluster <command> [flags]

commands:
  build   build the control-plane binaries into the cache and link them into bin/
  build TOOL
          build an on-demand tool (helm, golangci-lint) into the cache if it is not
          there and print the path of its binary (progress goes to stderr)
  up      start a detached control plane (builds first if needed)
  env     print shell exports for the running control plane
  down    stop the control plane and remove its state dir

flags (up, env, down):
  -dir DIR      state dir (default <repo>/.local/cluster)
up only:
  -nodes N      number of fake nodes (default 1)
  -prometheus   also start Prometheus scraping annotated pods
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "cluster %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func run(ctx context.Context, command string, args []string) error {
	fs := flag.NewFlagSet(command, flag.ExitOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	dir := fs.String("dir", "", "state dir")
	nodes := fs.Int("nodes", 1, "number of fake nodes")
	withPrometheus := fs.Bool("prometheus", false, "also start Prometheus")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := cluster.DetachedDir()
		if err != nil {
			return err
		}
		*dir = d
	}
	switch command {
	case "build":
		if fs.NArg() > 1 {
			return fmt.Errorf("build takes at most one tool, got %q", fs.Args())
		}
		if fs.NArg() == 1 {
			path, err := cluster.EnsureTool(ctx, cluster.Options{}, fs.Arg(0))
			if err != nil {
				return err
			}
			fmt.Println(path)
			return nil
		}
		bins, err := cluster.EnsureBinaries(ctx, cluster.Options{})
		if err != nil {
			return err
		}
		return linkBinaries(bins)
	case "up":
		return up(ctx, *dir, *nodes, *withPrometheus)
	case "env":
		kubeconfig := filepath.Join(*dir, "kubeconfig")
		if _, err := os.Stat(kubeconfig); err != nil {
			return fmt.Errorf("no control plane in %s (run `go run ./e2e/cmd/cluster up`)", *dir)
		}
		root, err := cluster.RepoRoot()
		if err != nil {
			return err
		}
		fmt.Printf("export KUBECONFIG=%s\nexport PATH=%s:$PATH\n", kubeconfig, filepath.Join(root, "bin"))
		return nil
	case "down":
		if _, err := os.Stat(*dir); errors.Is(err, os.ErrNotExist) {
			fmt.Printf("no control plane in %s\n", *dir)
			return nil
		}
		if err := cluster.Down(*dir); err != nil {
			return err
		}
		fmt.Printf("stopped the control plane in %s\n", *dir)
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
		return nil
	}
}

func up(ctx context.Context, dir string, nodes int, withPrometheus bool) error {
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Dir: dir, Detached: true, Nodes: nodes, Log: os.Stdout})
	if err != nil {
		return err
	}
	if err := linkBinaries(c.Binaries); err != nil {
		return err
	}
	keep := func(err error) error {
		return fmt.Errorf("%w\nthe control plane is still running for inspection (logs in %s/logs); stop it with `go run ./e2e/cmd/cluster down`", err, c.Dir)
	}
	if err := smokeTest(ctx, c, start); err != nil {
		return keep(err)
	}
	promURL := ""
	if withPrometheus {
		kubeconfig, err := c.PrometheusKubeconfig(ctx)
		if err != nil {
			return keep(err)
		}
		if promURL, err = c.StartPrometheus(ctx, cluster.PodsScrapeConfig(kubeconfig, time.Second)); err != nil {
			return keep(err)
		}
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		return keep(err)
	}
	fmt.Printf("\ncontrol plane up in %.1fs (API server %s, state in %s)\n", time.Since(start).Seconds(), c.Server(), c.Dir)
	if promURL != "" {
		fmt.Printf("prometheus: %s (scrapes pods annotated prometheus.io/scrape: \"true\", prometheus.io/port)\n", promURL)
	}
	fmt.Printf("kubectl: %s (-> %s)\n", filepath.Join(root, "bin", "kubectl"), c.Binaries.Kubectl)
	fmt.Printf("stop it with: go run ./e2e/cmd/cluster down\n\n")
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig)
	return nil
}

// smokeTest runs a 3-replica Deployment to Available, checks the pods got loopback IPs,
// deletes it and waits for the garbage collector to remove its pods.
func smokeTest(ctx context.Context, c *cluster.Cluster, start time.Time) error {
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	const name = "kwok-smoke"
	labels := map[string]string{"app": name}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "fake-image"}}},
			},
		},
	}
	deployments := cs.AppsV1().Deployments(metav1.NamespaceDefault)
	if _, err := deployments.Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Deployment %s: %w", name, err)
	}
	step := time.Now()
	selector := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: labels})
	err = poll(ctx, func(ctx context.Context) error {
		d, err := deployments.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != 3 {
			return fmt.Errorf("%d of 3 replicas available", d.Status.AvailableReplicas)
		}
		pods, err := cs.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if ip, err := netip.ParseAddr(p.Status.PodIP); err != nil || !ip.IsLoopback() {
				return fmt.Errorf("pod %s has IP %q, want a loopback address", p.Name, p.Status.PodIP)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("smoke test: wait for Deployment %s: %w", name, err)
	}
	fmt.Printf("[%5.1fs] smoke test: Deployment %s has 3 available replicas with loopback pod IPs (%.1fs after create)\n",
		time.Since(start).Seconds(), name, time.Since(step).Seconds())

	if err := deployments.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete Deployment %s: %w", name, err)
	}
	err = poll(ctx, func(ctx context.Context) error {
		pods, err := cs.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if n := len(pods.Items); n > 0 {
			return fmt.Errorf("%d pods left", n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("smoke test: wait for the garbage collector to delete the pods of %s: %w", name, err)
	}
	fmt.Printf("[%5.1fs] smoke test: Deployment deleted, garbage collector removed its pods\n", time.Since(start).Seconds())
	return nil
}

// poll calls check every 100 ms until it succeeds or a minute passes.
func poll(ctx context.Context, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %w)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// linkBinaries points <repo>/bin/<name> at each cached binary.
func linkBinaries(b cluster.Binaries) error {
	root, err := cluster.RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("link binaries: %w", err)
	}
	for _, target := range []string{b.Etcd, b.KubeAPIServer, b.KubeControllerManager, b.KubeScheduler, b.Kubectl, b.Kwok, b.Prometheus} {
		link := filepath.Join(bin, filepath.Base(target))
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("link %s: %w", link, err)
		}
		if err := os.Symlink(target, link); err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
	}
	return nil
}
