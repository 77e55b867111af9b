// Command demo runs Sluice end to end on the local control plane.
//
//	go run ./e2e/cmd/demo run    # boot, release a good version (promoted) and a bad one (rolled back), tear down
//	go run ./e2e/cmd/demo up     # boot and leave the control plane, Prometheus and sluice running
//	go run ./e2e/cmd/demo down   # stop what `up` started
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: demo run|up|down")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "run":
		err = run(ctx)
	case "up":
		err = up(ctx)
	case "down":
		err = down()
	default:
		err = fmt.Errorf("unknown command %q (want run, up or down)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const intro = `Sluice demo on a local control plane (kube-apiserver, etcd, controller-manager, scheduler,
kwok fake nodes), a real Prometheus, and the real sluice binary serving its webhook over TLS.

What is simulated: kwok pods run no process. This demo binds a real HTTP server on each pod's
loopback IP (the "app", whose behaviour comes from its image tag: *bad* answers every second
request with HTTP 500), sends 50 requests/s to random Ready pods of the app as kube-proxy would,
and Prometheus discovers the pods through the API server and scrapes their /metrics. Everything
else — admission, pausing, the canary Deployment, analysis queries, Events — is the real thing.
`

func run(ctx context.Context) error {
	fmt.Print(intro)
	c, err := cluster.Start(ctx, cluster.Options{})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("stopping the local control plane")
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop:", err)
		}
	}()
	s, err := stack.Up(ctx, c, stack.Options{})
	if err != nil {
		return err
	}
	const ns, name = "demo", "shop"
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	fleet := &demoapp.Fleet{Client: s.Client, Namespace: ns}
	load := &demoapp.Load{Fleet: fleet, RPS: 50, Selector: labels.SelectorFromSet(labels.Set{"app": name})}
	appCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- fleet.Run(appCtx) }()
	go func() { done <- load.Run(appCtx) }()
	defer func() {
		cancel()
		for range 2 { // both return nil when appCtx ends
			if err := <-done; err != nil {
				fmt.Fprintln(os.Stderr, "demo app:", err)
			}
		}
	}()

	dir := filepath.Join(c.Dir, "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kubectl := func(args ...string) (string, error) {
		fmt.Printf("$ kubectl %s\n", strings.Join(args, " "))
		out, stderr, err := c.Kubectl(ctx, append([]string{"-n", ns}, args...)...)
		for _, l := range strings.Split(strings.TrimSpace(out+stderr), "\n") {
			if l != "" {
				fmt.Println("  " + l)
			}
		}
		return stderr, err
	}
	manifest := func(image string) (string, error) {
		d := demoapp.Deployment(name, ns, image, 3)
		d.Labels[spec.LabelEnabled] = spec.ValueEnabled
		d.Annotations = map[string]string{spec.AnnInterval: "5s", spec.AnnThreshold: "2"}
		b, err := yaml.Marshal(d)
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, "shop.yaml")
		return path, os.WriteFile(path, b, 0o644)
	}

	fmt.Println("\n== 1. Deploy shop demo:v1, opted in (label sluice.dev/enabled=true, interval 5s, threshold 2)")
	path, err := manifest("demo:v1")
	if err != nil {
		return err
	}
	if _, err := kubectl("apply", "-f", path); err != nil {
		return err
	}
	if _, err := kubectl("rollout", "status", "deployment/"+name, "--timeout=60s"); err != nil {
		return err
	}

	fmt.Println("\n== 2. Release a good version: held, canary stepped 10%…50% under analysis, promoted")
	if _, err := kubectl("set", "image", "deployment/"+name, "app=demo:v2"); err != nil {
		return err
	}
	if err := watch(ctx, s, ns, name, spec.PhaseSucceeded, 3*time.Minute); err != nil {
		return err
	}

	fmt.Println("\n== 3. Release a bad version (every second request fails): held, analysed, rolled back")
	if _, err := kubectl("set", "image", "deployment/"+name, "app=demo:v3-bad"); err != nil {
		return err
	}
	if err := watch(ctx, s, ns, name, spec.PhaseFailed, 3*time.Minute); err != nil {
		return err
	}
	pods, err := s.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		if img := p.Spec.Containers[0].Image; img != "demo:v2" && p.DeletionTimestamp == nil {
			return fmt.Errorf("pod %s runs %s after the rollback, want the stable demo:v2", p.Name, img)
		}
	}
	fmt.Printf("stable pods all still run demo:v2; the Deployment holds demo:v3-bad paused until Git moves on\n")
	if _, err := kubectl("get", "events", "--field-selector", "involvedObject.name="+name, "--sort-by=.metadata.creationTimestamp",
		"-o", "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message"); err != nil {
		return err
	}
	fmt.Println("\ndemo passed")
	return nil
}

// watch prints a progress line whenever the release's phase, weight or check readings change,
// until it reaches want (or another terminal phase, which is an error).
func watch(ctx context.Context, s *stack.Stack, ns, name string, want spec.Phase, timeout time.Duration) error {
	start := time.Now()
	deadline := start.Add(timeout)
	last := ""
	for {
		d, err := s.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st, err := spec.ReadState(d.Annotations)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%-12s weight %3d%%  failed %d/%d  %s  %s", st.Phase, st.Weight, st.FailedChecks, threshold(st), checks(st), st.Message)
		if line != last {
			fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		switch {
		case st.Phase == want:
			return nil
		case st.Phase == spec.PhaseSucceeded || st.Phase == spec.PhaseFailed || st.Phase == spec.PhaseIdle && !st.FinishedAt.IsZero():
			return fmt.Errorf("release ended %s, want %s: %s", st.Phase, want, st.Message)
		case time.Now().After(deadline):
			return fmt.Errorf("release not %s after %s", want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func threshold(st spec.State) int {
	if st.Plan == nil {
		return 0
	}
	return st.Plan.Threshold
}

func checks(st spec.State) string {
	parts := make([]string, 0, len(st.Checks))
	for _, c := range st.Checks {
		v := "no-data"
		if c.Value != nil {
			v = fmt.Sprintf("%.4g", *c.Value)
		}
		parts = append(parts, fmt.Sprintf("%s=%s(%s)", c.Name, v, c.Verdict))
	}
	return strings.Join(parts, " ")
}

func up(ctx context.Context) error {
	dir, err := cluster.DetachedDir()
	if err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{Detached: true, Dir: dir, KeepDir: true})
	if err != nil {
		return err
	}
	s, err := stack.Up(ctx, c, stack.Options{})
	if err != nil {
		return errors.Join(err, cluster.Down(dir))
	}
	fmt.Printf(`
Sluice is running on a local control plane. Try:

  export KUBECONFIG=%s
  export PATH=%s:%s:$PATH    # kubectl, and kubectl sluice (the plugin)
  kubectl sluice list

  Prometheus (used by sluice):  %s
  sluice metrics:               %s
  sluice log:                   %s

An inline check that always passes, to see a release through without app traffic:
  sluice.dev/metrics: |
    - name: always-ok
      query: vector(100)
      thresholdRange: {min: 99}

Stop everything with: make down
`, c.Kubeconfig, filepath.Dir(c.Binaries.Kubectl), filepath.Dir(s.PluginBinary), s.PrometheusURL, s.MetricsURL, filepath.Join(c.Dir, "logs", "sluice.log"))
	return nil
}

func down() error {
	dir, err := cluster.DetachedDir()
	if err != nil {
		return err
	}
	return cluster.Down(dir)
}
