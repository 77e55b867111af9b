package faults

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// recorder follows an app through watches (which resume after an API server restart from the
// last resourceVersion seen, so no write is missed): every state annotation the parent had, in
// order, every canary Deployment created, the canary's sizes, and every change to the pods
// that ran when it started (the stable ReplicaSet's).
type recorder struct {
	a      *app
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	raws     []string
	states   []spec.State
	canaries []types.UID
	sizes    []int32 // the canary's spec.replicas, each change
	stable   map[types.UID]string
	seen     map[types.UID]bool // new non-canary pods already counted
	touched  []touch
	// promotedRV is the resourceVersion of the first parent version in Promoting or Succeeded:
	// stable pods may change from then on.
	promotedRV uint64
}

// touch is a change to the stable pods: one deleted, or a new non-canary pod.
type touch struct {
	what string
	rv   uint64
}

// record starts following a (after its first version is deployed).
func (a *app) record() *recorder {
	a.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{a: a, cancel: cancel, done: make(chan struct{}), stable: a.stableUIDs(), seen: map[types.UID]bool{}}
	if len(r.stable) != replicas {
		a.t.Fatalf("%d stable pods at the start, want %d", len(r.stable), replicas)
	}
	for uid := range r.stable {
		r.seen[uid] = true
	}
	depRV, podRV, err := r.list(ctx)
	if err != nil {
		a.t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			r.follow(ctx, depRV, podRV)
			// A watch ends for good when its resourceVersion is too old (410), as after an API
			// server restart (the new watch cache starts at the current revision): list again
			// and go on from there. Only writes between the restart and this list could be
			// missed; sluice is reconnecting then.
			for ctx.Err() == nil {
				if depRV, podRV, err = r.list(ctx); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	a.t.Cleanup(r.stop)
	return r
}

// list reads the app's Deployments and pods, records them, and returns the lists' versions.
func (r *recorder) list(ctx context.Context) (depRV, podRV string, err error) {
	deps, err := env.Client.AppsV1().Deployments(r.a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", "", err
	}
	pods, err := env.Client.CoreV1().Pods(r.a.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", "", err
	}
	for i := range deps.Items {
		r.deployment(&deps.Items[i])
	}
	r.mu.Lock()
	listed := map[types.UID]bool{}
	for _, p := range pods.Items {
		listed[p.UID] = true
	}
	rv, _ := strconv.ParseUint(pods.ResourceVersion, 10, 64)
	for uid, name := range r.stable {
		if !listed[uid] { // deleted while no watch ran: at the latest by this list
			r.touched = append(r.touched, touch{"stable pod " + name + " deleted", rv})
			delete(r.stable, uid)
		}
	}
	r.mu.Unlock()
	for i := range pods.Items {
		r.pod(watch.Modified, &pods.Items[i])
	}
	return deps.ResourceVersion, pods.ResourceVersion, nil
}

// follow records the watch events of the app's Deployments and pods until either watch ends.
func (r *recorder) follow(ctx context.Context, depRV, podRV string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dw, err := retryWatch(ctx, depRV, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		return env.Client.AppsV1().Deployments(r.a.ns).Watch(ctx, o)
	})
	if err != nil {
		return
	}
	defer dw.Stop()
	pw, err := retryWatch(ctx, podRV, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		return env.Client.CoreV1().Pods(r.a.ns).Watch(ctx, o)
	})
	if err != nil {
		return
	}
	defer pw.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-dw.ResultChan():
			if !ok {
				return
			}
			if d, isDep := ev.Object.(*appsv1.Deployment); isDep {
				r.deployment(d)
			}
		case ev, ok := <-pw.ResultChan():
			if !ok {
				return
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod {
				r.pod(ev.Type, p)
			}
		}
	}
}

func retryWatch(ctx context.Context, rv string, w func(context.Context, metav1.ListOptions) (watch.Interface, error)) (*watchtools.RetryWatcher, error) {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			return nil, fmt.Errorf("not listed")
		},
		WatchFuncWithContext: w,
	}
	return watchtools.NewRetryWatcherWithContext(ctx, rv, lw)
}

func (r *recorder) stop() {
	r.cancel()
	<-r.done
}

// resourceVersion reads a resourceVersion as the etcd revision it is on this control plane
// (opaque to clients in general; ordered here, where one etcd serves every object).
func resourceVersion(o metav1.Object) uint64 {
	v, _ := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	return v
}

func (r *recorder) deployment(d *appsv1.Deployment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch d.Name {
	case r.a.name:
		raw := d.Annotations[spec.AnnState]
		if len(r.raws) > 0 && r.raws[len(r.raws)-1] == raw {
			return
		}
		st, err := spec.ReadState(d.Annotations)
		if err != nil {
			r.a.t.Errorf("unreadable state %q: %v", raw, err)
			return
		}
		r.raws, r.states = append(r.raws, raw), append(r.states, st)
		if r.promotedRV == 0 && (st.Phase == spec.PhasePromoting || st.Phase == spec.PhaseSucceeded) {
			r.promotedRV = resourceVersion(d)
		}
	case spec.CanaryName(r.a.name):
		if d.DeletionTimestamp == nil && !slices.Contains(r.canaries, d.UID) {
			r.canaries = append(r.canaries, d.UID)
		}
		if n := *d.Spec.Replicas; len(r.sizes) == 0 || r.sizes[len(r.sizes)-1] != n {
			r.sizes = append(r.sizes, n)
		}
	}
}

func (r *recorder) pod(typ watch.EventType, p *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name, ok := r.stable[p.UID]; ok {
		if typ == watch.Deleted || p.DeletionTimestamp != nil {
			r.touched = append(r.touched, touch{"stable pod " + name + " deleted", resourceVersion(p)})
			delete(r.stable, p.UID)
		}
		return
	}
	if r.seen[p.UID] || p.UID == "" || typ == watch.Deleted || p.Labels[spec.LabelTrack] == spec.ValueCanary {
		return
	}
	r.seen[p.UID] = true
	r.touched = append(r.touched, touch{"new non-canary pod " + p.Name, resourceVersion(p)})
}

// latest is the last state recorded.
func (r *recorder) latest() spec.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 {
		return spec.State{Phase: spec.PhaseIdle}
	}
	return r.states[len(r.states)-1]
}

// waitState waits until the latest recorded state satisfies cond.
func (r *recorder) waitState(timeout time.Duration, what string, cond func(spec.State) bool) spec.State {
	t := r.a.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := r.latest()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state %s: %s\nhistory:\n%s\nsluice log:\n%s",
				timeout, what, key(st), st.Message, r.describe(), env.Cluster.LogTail("sluice", 15))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAfter waits until a state written after raw is recorded and returns it.
func (r *recorder) waitAfter(t *testing.T, raw string, timeout time.Duration) spec.State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		i := slices.Index(r.raws, raw)
		var next *spec.State
		if i >= 0 && i+1 < len(r.raws) {
			next = &r.states[i+1]
		}
		r.mu.Unlock()
		if next != nil {
			return *next
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state written after %s within %s (recorded: %v)\nsluice log:\n%s", raw, timeout, i >= 0, env.Cluster.LogTail("sluice", 15))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// key is what a release's progress is made of: phase, step, weight and promotion sub-step.
func key(st spec.State) string {
	return fmt.Sprintf("%s/%d/%d/%s", st.Phase, st.Step, st.Weight, st.PromoteStep)
}

func (r *recorder) describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, st := range r.states {
		fmt.Fprintf(&b, "  %-28s ready=%-5v failed=%d inconclusive=%d stepAt=%s  %s\n", key(st), st.CanaryReady, st.FailedChecks, st.Inconclusive, st.StepAt.Format("15:04:05.000"), st.Message)
	}
	fmt.Fprintf(&b, "  canaries created: %d; canary sizes: %v; stable pod changes: %v (promoted at rv %d)", len(r.canaries), r.sizes, r.touched, r.promotedRV)
	return b.String()
}

// checkRelease checks the recorded release: its progress keys were exactly want (consecutive
// repeats merged: a step is recorded once however many writes it took), it is one release
// (same revision and start), no step's start moved once recorded (a step done again after a
// restart would move it), failed runs never went down, its canary Deployment was created once,
// and no stable pod changed before the promotion.
func (r *recorder) checkRelease(t *testing.T, want ...string) {
	t.Helper()
	// The caller saw the release's end with a GET (waitPhase); the recorder's watch can
	// deliver that write a moment later on a busy machine.
	if len(want) > 0 {
		end := want[len(want)-1]
		r.waitState(30*time.Second, "the recorder to see the release's end "+end, func(st spec.State) bool { return key(st) == end })
	}
	r.mu.Lock()
	states := slices.Clone(r.states)
	canaries, touched, promotedRV := len(r.canaries), slices.Clone(r.touched), r.promotedRV
	r.mu.Unlock()
	for len(states) > 0 && (states[0].Phase == spec.PhaseIdle || states[0].Phase == "") {
		states = states[1:]
	}
	var got []string
	for i, st := range states {
		if k := key(st); len(got) == 0 || got[len(got)-1] != k {
			got = append(got, k)
		} else if prev := states[i-1]; !prev.StepAt.IsZero() && !st.StepAt.Equal(prev.StepAt) {
			t.Errorf("step %s started again: at %s, then at %s", k, prev.StepAt.Format(time.StampMilli), st.StepAt.Format(time.StampMilli))
		}
		if i > 0 {
			prev := states[i-1]
			if st.Revision != states[0].Revision || !st.StartedAt.Equal(states[0].StartedAt) {
				t.Errorf("the release was restarted: %s started %s, then %s started %s", states[0].Revision, states[0].StartedAt, st.Revision, st.StartedAt)
			}
			if st.FailedChecks < prev.FailedChecks && st.Phase == prev.Phase {
				t.Errorf("failed runs went down from %d to %d at %s", prev.FailedChecks, st.FailedChecks, key(st))
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("release went through\n  %s\nwant\n  %s", strings.Join(got, " → "), strings.Join(want, " → "))
	}
	if canaries != 1 {
		t.Errorf("canary Deployment created %d times, want once", canaries)
	}
	for _, tc := range touched {
		if promotedRV == 0 || tc.rv < promotedRV {
			t.Errorf("%s before the promotion (rv %d, promoted at rv %d)", tc.what, tc.rv, promotedRV)
		}
	}
	t.Logf("history:\n%s", r.describe())
}

// Expected progress of a "20,50" release.
var (
	heldAndSteps = []string{"Progressing/0/0/", "Progressing/0/20/", "Progressing/1/50/"}
	// promotedReplicas: the parent rolls, the canary goes, done.
	promotedReplicas = append(slices.Clone(heldAndSteps), "Promoting/1/50/", "Succeeded/1/0/")
	// promotedIsolated: all traffic to the canary (already at the parent's size, so in the
	// step that decides to promote), the parent rolls, traffic back to the re-pinned stable
	// Service, canary deleted.
	promotedIsolated = append(slices.Clone(heldAndSteps), "Promoting/1/100/shift",
		"Promoting/1/100/rollout", "Promoting/1/0/cleanup", "Succeeded/1/0/")
	// rolledBackAtFirstStep: the first run fails (threshold 1).
	rolledBackAtFirstStep = []string{"Progressing/0/0/", "Progressing/0/20/", "RollingBack/0/20/", "Failed/0/0/"}
	// rolledBackAtSecondStep: the first run passes, the second's fault counts.
	rolledBackAtSecondStep = append(slices.Clone(heldAndSteps), "RollingBack/1/50/", "Failed/1/0/")
)
