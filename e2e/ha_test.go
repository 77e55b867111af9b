package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// The short lease the HA tests run with, shorter than the defaults (15s/10s/2s); the Lease
// object must say 10 s, which shows the flags reach the leader election.
const (
	haLease = 10 * time.Second
	haRetry = time.Second
)

var haFlags = []string{
	"--leader-election-lease-duration=10s", "--leader-election-renew-deadline=7s", "--leader-election-retry-period=1s",
}

// takeoverLimit bounds a take-over after the leader dies: a candidate counts the lease time from
// when it saw the last renewal, and tries at jittered intervals of retry × [1, 2.2] (client-go's
// JitterFactor 1.2), so it may see the last renewal up to one such interval late and take the
// expired lease one interval after expiry; one second more for a loaded machine.
const takeoverLimit = haLease + 2*(haRetry*22/10) + time.Second

// Acceptance 4 (issue 10): two sluice replicas with leader election. Both serve the webhook;
// only the leader runs the worker. The leader is killed with SIGKILL in the middle of a
// release; the other replica takes the lease within the lease time and finishes the release,
// promoted, with no step repeated or skipped (every version of the state annotation is
// recorded through a watch), while admission calls through the API server keep succeeding.
//
// The replicas are local processes behind a loopback load balancer standing in for the
// sluice-webhook Service (see loadBalancer); it drops the connections every few seconds
// between two probe updates, so the API server's calls reach both replicas, not only the one
// its first connection went to. They serve the stack's certificate files (files mode).
//
// Not parallel: the stack's sluice is taken away for the test.
func TestHALeaderFailover(t *testing.T) {
	rs := takeOverSluice(t)
	ctx := t.Context()
	lb := startLoadBalancer(t)
	pointWebhook(t, lb.URL(), currentCABundle(t))
	replicas := []*stack.Replica{rs.start("sluice-ha-a", haFlags...), rs.start("sluice-ha-b", haFlags...)}
	lb.setBackends(replicas...)
	for _, r := range replicas {
		if err := env.WaitReady(ctx, r, 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The stack's sluice held the lease when it was killed: one replica gets it once it expires.
	leader, follower := waitLeader(t, replicas, 2*haLease+10*time.Second)
	t.Logf("leader %s, follower %s", leader.Name, follower.Name)

	a := newApp(t, "ha", fastAnnotations(spec.AnnStepWeights, "10,20,30,40"))
	a.deploy("demo:v1")
	probe := startProbeLoop(t, lb, a.ns)
	history := recordStates(t, a.ns, a.name)

	a.apply("demo:v2")
	a.waitFor(2*time.Minute, "weight 20", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return st.Phase == spec.PhaseProgressing && st.Weight >= 20, fmt.Sprintf("phase=%s weight=%d: %s", st.Phase, st.Weight, st.Message)
	})
	// Before the kill: the worker ran on the leader only, the webhook was reached on both.
	if n := reconciles(t, leader); n == 0 {
		t.Errorf("the leader %s has not reconciled anything", leader.Name)
	}
	if n := reconciles(t, follower); n != 0 {
		t.Errorf("the follower %s reconciled %v times: the worker runs outside the leader", follower.Name, n)
	}
	for _, r := range replicas {
		if lb.connections(r) == 0 {
			t.Errorf("no admission call reached %s", r.Name)
		}
	}

	killed := a.state()
	killedAt := time.Now()
	rs.kill(leader)
	t.Logf("killed the leader %s (SIGKILL) at %s step %d weight %d", leader.Name, killed.Phase, killed.Step, killed.Weight)
	poll(t, 2*haLease, 200*time.Millisecond, follower.Name+" to take the lease", func() (bool, string) {
		v, err := metric(ctx, follower.MetricsURL, "leader_election_master_status", `name="sluice.dev"`)
		return err == nil && v == 1, fmt.Sprintf("leader status %v (%v)", v, err)
	})
	takeover := time.Since(killedAt)
	t.Logf("%s took over %.1fs after the kill (lease %s, retry %s)", follower.Name, takeover.Seconds(), haLease, haRetry)
	if takeover > takeoverLimit {
		t.Errorf("take-over took %s, more than the lease time and the candidate's retries (%s)", takeover, takeoverLimit)
	}
	lease, err := env.Client.CoordinationV1().Leases(stack.Namespace).Get(ctx, "sluice.dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := lease.Spec.LeaseDurationSeconds; d == nil || time.Duration(*d)*time.Second != haLease {
		t.Errorf("Lease duration %v s, want %s (--leader-election-lease-duration)", d, haLease)
	}

	final := a.waitPhase(3*time.Minute, spec.PhaseSucceeded)
	if final.Revision != killed.Revision || !final.StartedAt.Equal(killed.StartedAt) {
		t.Errorf("the release was restarted: was %s, ended %s", mustJSON(killed), mustJSON(final))
	}
	probe.stop()

	want := []stateStep{
		{spec.PhaseProgressing, 0, 0}, // held by the webhook
		{spec.PhaseProgressing, 0, 10}, {spec.PhaseProgressing, 1, 20}, {spec.PhaseProgressing, 2, 30}, {spec.PhaseProgressing, 3, 40},
		{spec.PhasePromoting, 3, 40}, {spec.PhaseSucceeded, 3, 0},
	}
	if got := history.steps(killed.Revision); !slices.Equal(got, want) {
		t.Errorf("release steps (phase, step, weight):\n got %v\nwant %v", got, want)
	}
	ok, failed := probe.count()
	t.Logf("admission probes through the API server: %d ok, %d failed", ok, failed)
	if failed != 0 {
		t.Errorf("%d admission calls failed, want 0: %v", failed, probe.errors())
	}
	if ok < 50 {
		t.Errorf("only %d admission probes", ok)
	}
}

func currentCABundle(t *testing.T) []byte {
	t.Helper()
	cfg, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), webhookConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Webhooks[0].ClientConfig.CABundle
}

// waitLeader waits until exactly one replica reports holding the lease (controller-runtime's
// leader_election_master_status) and returns it and another (nil if there is none).
func waitLeader(t *testing.T, replicas []*stack.Replica, timeout time.Duration) (leader, follower *stack.Replica) {
	t.Helper()
	poll(t, timeout, 500*time.Millisecond, "one leader", func() (bool, string) {
		var leaders []*stack.Replica
		for _, r := range replicas {
			if v, err := metric(t.Context(), r.MetricsURL, "leader_election_master_status", `name="sluice.dev"`); err == nil && v == 1 {
				leaders = append(leaders, r)
			}
		}
		if len(leaders) != 1 {
			return false, fmt.Sprintf("%d leaders", len(leaders))
		}
		leader = leaders[0]
		for _, r := range replicas {
			if r != leader {
				follower = r
			}
		}
		return true, ""
	})
	return leader, follower
}

// reconciles is how many reconciles the replica's rollout worker ran.
func reconciles(t *testing.T, r *stack.Replica) float64 {
	t.Helper()
	v, err := metric(t.Context(), r.MetricsURL, "controller_runtime_reconcile_total", `controller="rollout"`)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// stateStep is where a release stands, as the state annotation says.
type stateStep struct {
	Phase  spec.Phase
	Step   int
	Weight int
}

// stateHistory is every version of a Deployment's state annotation, from a watch.
type stateHistory struct {
	mu     sync.Mutex
	states []spec.State
}

// recordStates watches the Deployment and records every state annotation it carries, until the
// test ends. A watch sees every version of the object (a poll could miss a short-lived one).
func recordStates(t *testing.T, ns, name string) *stateHistory {
	h := &stateHistory{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		api := env.Client.AppsV1().Deployments(ns)
		rv := ""
		for ctx.Err() == nil {
			w, err := api.Watch(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: rv,
			})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				d, ok := ev.Object.(*appsv1.Deployment)
				if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
					continue
				}
				rv = d.ResourceVersion
				if st, err := spec.ReadState(d.Annotations); err == nil {
					h.mu.Lock()
					h.states = append(h.states, st)
					h.mu.Unlock()
				}
			}
			w.Stop()
		}
	}()
	return h
}

// steps are the (phase, step, weight) the release of revision went through, each once in a
// row.
func (h *stateHistory) steps(revision string) []stateStep {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []stateStep
	for _, st := range h.states {
		if st.Revision != revision {
			continue
		}
		s := stateStep{st.Phase, st.Step, st.Weight}
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// probeLoop writes an annotation on an opted-in Deployment of its own every 250 ms: an UPDATE
// the API server sends to the webhook (the template does not change, so it is allowed as
// sent). Every 3 s, between two writes, the load balancer closes its connections.
type probeLoop struct {
	imageLoop
}

func startProbeLoop(t *testing.T, lb *loadBalancer, ns string) *probeLoop {
	t.Helper()
	d := demoapp.Deployment("probe", ns, "demo:v1", 1)
	d.Labels[spec.LabelEnabled] = spec.ValueEnabled
	b, err := yaml.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/probe.yaml"
	writeFile(t, path, b)
	if _, stderr, err := env.Cluster.Kubectl(t.Context(), "apply", "-f", path); err != nil {
		t.Fatalf("create the probe Deployment: %v: %s", err, stderr)
	}
	cs := quietClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	l := &probeLoop{imageLoop{cancel: cancel, done: make(chan struct{})}}
	t.Cleanup(l.stop)
	go func() {
		defer close(l.done)
		lastRecycle := time.Now()
		for i := 0; ctx.Err() == nil; i++ {
			if time.Since(lastRecycle) > 3*time.Second {
				lb.recycle()
				lastRecycle = time.Now()
				time.Sleep(200 * time.Millisecond) // let the API server see the closed connection
			}
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"e2e.sluice.dev/probe":"%d"}}}`, i)
			_, err := cs.AppsV1().Deployments(ns).Patch(ctx, "probe", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			if ctx.Err() != nil {
				return
			}
			l.record(err, "")
			time.Sleep(250 * time.Millisecond)
		}
	}()
	return l
}

// Graceful shutdown (issue 10, HA): SIGTERM reaches the leader while a step's analysis is in
// flight. The step runs to its end — its queries answered, its state written, no check
// counted failed for the shutdown — then the process exits and releases the Lease, so a
// replica started afterwards takes over at once and finishes the release with no step
// repeated or skipped.
//
// The leader's Prometheus is the real one behind a proxy that holds every query 3 s and says
// when one arrives, so the signal is sent while a step is certainly in progress. A second,
// webhook-only replica keeps admission served meanwhile (behind the test's load balancer, as
// in TestHALeaderFailover). Not parallel: the stack's sluice is taken away for the test.
func TestGracefulShutdownFinishesTheStep(t *testing.T) {
	rs := takeOverSluice(t)
	ctx := t.Context()
	lb := startLoadBalancer(t)
	pointWebhook(t, lb.URL(), currentCABundle(t))
	slow := startSlowProxy(t, env.PrometheusURL, 3*time.Second)
	withSlowProm := append(slices.Clone(haFlags), "--prometheus-address="+slow.URL)
	leader := rs.start("sluice-graceful-a", withSlowProm...)
	webhookOnly := rs.start("sluice-graceful-w", "--disable-reconciler")
	lb.setBackends(leader, webhookOnly)
	for _, r := range []*stack.Replica{leader, webhookOnly} {
		if err := env.WaitReady(ctx, r, 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitLeader(t, []*stack.Replica{leader}, 2*haLease+10*time.Second)

	a := newApp(t, "graceful", fastAnnotations(spec.AnnStepWeights, "10,20,30,40"))
	a.deploy("demo:v1")
	history := recordStates(t, a.ns, a.name)
	a.apply("demo:v2")
	a.waitFor(2*time.Minute, "weight 20", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return st.Phase == spec.PhaseProgressing && st.Weight >= 20, fmt.Sprintf("phase=%s weight=%d: %s", st.Phase, st.Weight, st.Message)
	})

	arrived := slow.arm()
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatal("no analysis query within a minute")
	}
	before := a.state()
	if err := syscall.Kill(leader.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	poll(t, 30*time.Second, 100*time.Millisecond, leader.Name+" to exit", func() (bool, string) {
		return syscall.Kill(leader.PID, 0) != nil, "still running"
	})
	t.Logf("%s exited %.1fs after SIGTERM", leader.Name, time.Since(termAt).Seconds())

	// Nothing else runs the worker: a state written after the signal is the step finished.
	after := a.state()
	if !after.LastRunAt.After(before.LastRunAt) {
		t.Errorf("the step in progress at SIGTERM was not finished: state before %s, after %s", mustJSON(before), mustJSON(after))
	}
	if after.FailedChecks != 0 {
		t.Errorf("the shutdown was counted as a failed check: %s", mustJSON(after))
	}
	lease, err := env.Client.CoordinationV1().Leases(stack.Namespace).Get(ctx, "sluice.dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("the Lease is still held by %q after a graceful exit", *h)
	}

	next := rs.start("sluice-graceful-b", haFlags...)
	startAt := time.Now()
	poll(t, haLease, 200*time.Millisecond, next.Name+" to take the released lease", func() (bool, string) {
		v, err := metric(ctx, next.MetricsURL, "leader_election_master_status", `name="sluice.dev"`)
		return err == nil && v == 1, fmt.Sprintf("leader status %v (%v)", v, err)
	})
	t.Logf("%s leads %.1fs after it started", next.Name, time.Since(startAt).Seconds())
	final := a.waitPhase(3*time.Minute, spec.PhaseSucceeded)
	want := []stateStep{
		{spec.PhaseProgressing, 0, 0},
		{spec.PhaseProgressing, 0, 10}, {spec.PhaseProgressing, 1, 20}, {spec.PhaseProgressing, 2, 30}, {spec.PhaseProgressing, 3, 40},
		{spec.PhasePromoting, 3, 40}, {spec.PhaseSucceeded, 3, 0},
	}
	if got := history.steps(final.Revision); !slices.Equal(got, want) {
		t.Errorf("release steps (phase, step, weight):\n got %v\nwant %v", got, want)
	}
}

// slowProxy forwards to a Prometheus, holding every query for delay; once armed, it says when
// the next query arrives.
type slowProxy struct {
	URL   string
	mu    sync.Mutex
	armed chan struct{}
}

func startSlowProxy(t *testing.T, target string, delay time.Duration) *slowProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		if p.armed != nil {
			close(p.armed)
			p.armed = nil
		}
		p.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *slowProxy) arm() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = make(chan struct{})
	return p.armed
}
