package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

const sluiceUser = stack.Identity

// sluiceMetrics is the analysis: one Prometheus check that always passes.
const sluiceMetrics = "- name: check\n  query: vector(100)\n  thresholdRange: {min: 99}\n"

// sluiceCtl runs the scenario on Sluice: opted-in Deployments configured by annotations, each
// with the Service that Sluice's blue/green (an isolated canary) routes with.
type sluiceCtl struct {
	s *stack.Stack
	// pprof is sluice's --pprof-bind-address and profile the directory its profiles go to
	// (both empty: no profiles).
	pprof, profile string
}

// profileSeconds is how long the CPU profile of a run records, from set image on;
// admissionProfileSeconds that of the admission latency, from its setup on.
const (
	profileSeconds          = 120
	admissionProfileSeconds = 15
)

// startProfile records a CPU profile of sluice for seconds into the profile directory (named
// after tag), in the background; wait returns once it is written, then writes a heap profile
// beside it.
func (c sluiceCtl) startProfile(ctx context.Context, tag string, seconds int, logf func(string, ...any)) (wait func()) {
	if c.pprof == "" {
		return func() {}
	}
	get := func(path, file string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.pprof+path, nil)
		if err != nil {
			logf("profile %s: %v", file, err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			logf("profile %s: %v", file, err)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(c.profile, file), b, 0o644)
		}
		if err != nil {
			logf("profile %s: %v", file, err)
			return
		}
		logf("profile written to %s (go tool pprof -top %s)", filepath.Join(c.profile, file), filepath.Join(c.profile, file))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), tag+".cpu.pprof")
	}()
	return func() {
		<-done
		get("/debug/pprof/heap", tag+".heap.pprof")
	}
}

func (sluiceCtl) name() string                           { return "sluice" }
func (sluiceCtl) user() string                           { return sluiceUser }
func (sluiceCtl) watched() []schema.GroupVersionResource { return nil }
func (c sluiceCtl) pid() (int, bool)                     { return c.s.Cluster.PID("sluice") }

func (c sluiceCtl) queueStats(ctx context.Context, window time.Duration) (*queueStats, error) {
	return readQueueStats(ctx, c.s.PrometheusURL, window)
}

func (c sluiceCtl) restart(ctx context.Context) error {
	if c.s.Cluster.Running("sluice") {
		if _, _, err := c.s.StopSluice(syscall.SIGTERM, 20*time.Second); err != nil {
			return fmt.Errorf("stop sluice: %w", err)
		}
	}
	if err := c.s.StartSluice(ctx); err != nil {
		return err
	}
	return c.s.WaitSluice(ctx)
}

func (c sluiceCtl) create(ctx context.Context, ns string, names []string) error {
	ann := map[string]string{
		spec.AnnStrategy:   string(spec.StrategyBlueGreen),
		spec.AnnIterations: fmt.Sprint(iterations),
		spec.AnnInterval:   interval.String(),
		spec.AnnMetrics:    sluiceMetrics,
	}
	return forEach(names, func(name string) error {
		if _, err := c.s.Client.CoreV1().Services(ns).Create(ctx, service(ns, name), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s: %w", name, err)
		}
		d := deployment(ns, name, map[string]string{spec.LabelEnabled: spec.ValueEnabled}, ann)
		if _, err := c.s.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Deployment %s: %w", name, err)
		}
		return nil
	})
}

func (sluiceCtl) readyDetail(t *tracker) (bool, string) { return readyCount(t) }

// observe: a parent is ready once available and recorded Idle with its stable revision; its
// release started when `<name>-canary` appears, ran analysis at each new lastRunAt of its state
// after the canary became ready (the first one is the canary-ready time the first run is due
// an interval after), and is done when the state is Succeeded on a new stable revision and the
// parent has rolled.
func (sluiceCtl) observe(t *tracker, typ watch.EventType, obj *unstructured.Unstructured, at time.Time) {
	name := obj.GetName()
	if parent, ok := strings.CutSuffix(name, "-canary"); ok {
		if r := t.releases[parent]; r != nil && typ != watch.Deleted && !r.SetImage.IsZero() && r.Started.IsZero() {
			r.Started = at
		}
		return
	}
	r := t.releases[name]
	if r == nil || typ == watch.Deleted {
		return
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
		r.Err = fmt.Errorf("decode Deployment: %w", err)
		return
	}
	st, err := spec.ReadState(d.Annotations)
	if err != nil {
		r.Err = err
		return
	}
	notes := t.notes[name]
	if r.SetImage.IsZero() {
		if st.Phase == spec.PhaseIdle && st.Stable != "" && d.Status.AvailableReplicas == replicas && d.Status.UpdatedReplicas == replicas {
			t.ready[name] = true
			notes["stable"] = st.Stable
		}
		return
	}
	if st.Revision == "" || st.Revision == notes["stable"] {
		return
	}
	switch st.Phase {
	case spec.PhaseProgressing, spec.PhasePromoting:
		if st.CanaryReady {
			r.addRun(st.LastRunAt)
		}
	case spec.PhaseSucceeded:
		if r.Done.IsZero() && st.Stable == st.Revision && rolled(&d) {
			r.Done = at
		}
	case spec.PhaseFailed, spec.PhaseRollingBack:
		if r.Err == nil {
			r.Err = fmt.Errorf("release %s: %s: %s", st.Revision, st.Phase, st.Message)
		}
	}
}
