package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// gracefulTimeout is sluice's --graceful-stop-timeout (its default).
const gracefulTimeout = 10 * time.Second

// SIGTERM mid-step: sluice is stopped while it records a step (held in that write by the API
// proxy, which lets the write through a moment after the signal if sluice still sends it). The
// step is either recorded whole or not at all, sluice exits 0 within its graceful timeout, and
// started again it finishes the release with no step repeated or skipped.
func TestSIGTERMMidStep(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	a := newApp(t, "web", fastAnnotations(spec.AnnMetrics, passing))
	a.deploy("demo:v1")
	rec := a.record()
	hold := apiProxy.HoldStateWrite(func(w stack.StateWrite) bool {
		return w.Namespace == a.ns && w.Name == a.name && point(w.From) == "Progressing-step0-w20" && point(w.To) != point(w.From)
	})
	defer apiProxy.Disarm(hold)
	a.kubectl("set", "image", "deployment/web", "app=demo:v2")
	var w stack.StateWrite
	select {
	case w = <-hold.C:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the step from weight 20 was never recorded; history:\n%s", rec.describe())
	}

	func() {
		down.Lock()
		defer down.Unlock()
		go func() {
			time.Sleep(500 * time.Millisecond)
			hold.Forward()
		}()
		took, exit, err := env.StopSluice(syscall.SIGTERM, gracefulTimeout+5*time.Second)
		t.Logf("sluice exited (%v) %s after SIGTERM", exit, took.Round(time.Millisecond))
		if err != nil {
			t.Errorf("stop sluice: %v", err)
		}
		if exit != nil {
			t.Errorf("sluice exited with %v after SIGTERM, want status 0\n%s", exit, env.Cluster.LogTail("sluice", 20))
		}
		if took > gracefulTimeout+time.Second {
			t.Errorf("sluice took %s to exit after SIGTERM, more than its graceful timeout of %s", took, gracefulTimeout)
		}
		stored := readState(t, a)
		switch stored.Encode() {
		case w.From.Encode():
			t.Logf("the step was abandoned: state still %s", key(stored))
		case w.To.Encode():
			t.Logf("the step was finished: state %s", key(stored))
		default:
			t.Errorf("half a step: sluice was writing %s over %s, the state is now %s", key(w.To), key(w.From), key(stored))
		}
		restartSluice(t)
	}()

	a.waitPhase(3*time.Minute, spec.PhaseSucceeded)
	rec.checkRelease(t, promotedReplicas...)
}

// kube-apiserver restarted mid-release (killed and started again on the same port, etcd
// keeping everything): sluice reconnects and the release ends promoted, no step repeated.
func TestAPIServerRestartMidRelease(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	apiUp.Lock()
	defer apiUp.Unlock()
	a := newApp(t, "web", fastAnnotations(spec.AnnMetrics, passing))
	a.deploy("demo:v1")
	rec := a.record()
	a.kubectl("set", "image", "deployment/web", "app=demo:v2")
	rec.waitState(2*time.Minute, "the canary ready at weight 20", func(st spec.State) bool {
		return st.Phase == spec.PhaseProgressing && st.CanaryReady
	})
	down.Lock()
	start := time.Now()
	err := env.Cluster.RestartAPIServer(context.Background())
	down.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver restarted in %s", time.Since(start).Round(time.Millisecond))
	a.waitPhase(3*time.Minute, spec.PhaseSucceeded)
	if !env.Cluster.Running("sluice") {
		t.Errorf("sluice exited:\n%s", env.Cluster.LogTail("sluice", 20))
	}
	rec.checkRelease(t, promotedReplicas...)
}

// throttled is the FlowSchema and PriorityLevelConfiguration that make the API server answer
// 429 to sluice: no seats of its own, none borrowed, no queue.
const throttled = "faults-sluice"

// 429s from the API server: API Priority and Fairness puts sluice's identity in a priority level
// with no seats and no queue (Reject) mid-release. Such a level still runs one request when it
// runs none (so that a request wider than the limit is not starved), so the test keeps one
// request of sluice's identity executing — a create whose body it does not send — and the API
// server then rejects every request of sluice's with 429 (counted by
// apiserver_flowcontrol_rejected_requests_total). sluice keeps running, and once the limit is
// lifted the release ends promoted with no step skipped or repeated.
//
// The API server applies a new FlowSchema asynchronously (seconds on a busy machine), so sluice
// is stopped at its first analysis step's state write (the API proxy holds it) until a request
// made as sluice's user is answered 429; only then does that write go on, to be rejected.
func TestThrottledBy429(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	a := newApp(t, "web", fastAnnotations(spec.AnnMetrics, passing))
	a.deploy("demo:v1")
	rec := a.record()
	hold := apiProxy.HoldStateWrite(func(w stack.StateWrite) bool {
		return w.Namespace == a.ns && w.Name == a.name && w.From.CanaryReady && w.To.Step > w.From.Step
	})
	defer func() { apiProxy.Disarm(hold); hold.Forward() }()
	a.kubectl("set", "image", "deployment/web", "app=demo:v2")
	var held stack.StateWrite
	select {
	case held = <-hold.C:
	case <-time.After(2 * time.Minute):
		t.Fatalf("sluice made no first-step state write in 2m; state %s", key(rec.latest()))
	}

	ctx := t.Context()
	base, lift := throttle(t)
	defer lift()
	throttledAt := rec.latest()
	hold.Forward()

	// Throttled for two intervals at least, and until the API server has rejected sluice; within
	// the API server's 60 s request timeout, which would end the held request.
	until := time.Now().Add(10 * time.Second)
	deadline := time.Now().Add(45 * time.Second)
	rejected := base
	for time.Now().Before(until) || rejected <= base {
		var err error
		if rejected, err = rejectedRequests(ctx); err != nil {
			t.Logf("read API server metrics: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server rejected no request of sluice's in 45s; sluice log:\n%s", env.Cluster.LogTail("sluice", 10))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("API server rejected %v requests of sluice's (write held at %s); state went from %s to %s while throttled",
		rejected-base, key(held.From), key(throttledAt), key(rec.latest()))
	if !env.Cluster.Running("sluice") {
		t.Fatalf("sluice exited while throttled:\n%s", env.Cluster.LogTail("sluice", 20))
	}
	if now := rec.latest(); key(now) != key(throttledAt) {
		t.Errorf("the release state went from %s to %s while the API server rejected every request of sluice's", key(throttledAt), key(now))
	}
	lift()

	a.waitPhase(3*time.Minute, spec.PhaseSucceeded)
	if !env.Cluster.Running("sluice") {
		t.Errorf("sluice exited:\n%s", env.Cluster.LogTail("sluice", 20))
	}
	rec.checkRelease(t, promotedReplicas...)
}

// throttle makes the API server reject every request of sluice's user: it creates the
// FlowSchema and priority level, and keeps one request of that user executing (see
// TestThrottledBy429) until a request made as the user is answered 429. It returns the priority
// level's rejected count then (the probe's own rejections included), and what lifts it all (safe
// to call twice).
func throttle(t *testing.T) (base float64, lift func()) {
	t.Helper()
	fc := env.Client.FlowcontrolV1()
	zero := int32(0)
	plc := &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: throttled},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: &zero, LendablePercent: &zero, BorrowingLimitPercent: &zero,
				LimitResponse: flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeReject},
			},
		},
	}
	fs := &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: throttled},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: throttled},
			MatchingPrecedence:         500,
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: stack.Identity}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
					Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"},
					Namespaces: []string{"*"}, ClusterScope: true,
				}},
				NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
			}},
		},
	}
	cfg := env.Cluster.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: stack.Identity}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var release func()
	var once sync.Once
	lift = func() {
		once.Do(func() {
			if release != nil {
				release()
			}
			_ = fc.FlowSchemas().Delete(context.Background(), throttled, metav1.DeleteOptions{})
			_ = fc.PriorityLevelConfigurations().Delete(context.Background(), throttled, metav1.DeleteOptions{})
		})
	}
	if _, err := fc.PriorityLevelConfigurations().Create(t.Context(), plc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.FlowSchemas().Create(t.Context(), fs, metav1.CreateOptions{}); err != nil {
		lift()
		t.Fatal(err)
	}
	// Until the API server applies the FlowSchema the held request runs in another priority
	// level, so it is made again at each try.
	start := time.Now()
	for {
		release = occupy(t, hc, cfg.Host)
		time.Sleep(300 * time.Millisecond)
		// No retry: client-go would wait out the 429's Retry-After and ask again.
		err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/namespaces/default").MaxRetries(0).Do(t.Context()).Error()
		if apierrors.IsTooManyRequests(err) {
			break
		}
		release()
		release = nil
		if time.Since(start) > time.Minute {
			lift()
			t.Fatalf("a request as %s still not throttled a minute after the FlowSchema was created (last answer: %v)", stack.Identity, err)
		}
	}
	t.Logf("the API server throttles %s %s after the FlowSchema was created", stack.Identity, time.Since(start).Round(time.Millisecond))
	if base, err = rejectedRequests(t.Context()); err != nil {
		lift()
		t.Fatal(err)
	}
	return base, lift
}

// occupy starts a request that stays executing in the API server until release is called: an
// Event create whose body is not sent. release sends a body that is not JSON (so nothing is
// created) and waits for the answer.
func occupy(t *testing.T, hc *http.Client, host string) (release func()) {
	t.Helper()
	body, send := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, host+"/api/v1/namespaces/default/events", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}()
	return func() {
		_, _ = send.Write([]byte("released"))
		_ = send.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Logf("the request held in the API server did not end 10s after its body was sent")
		}
	}
}

var rejectedLine = regexp.MustCompile(`^apiserver_flowcontrol_rejected_requests_total\{([^}]*)\} (\S+)$`)

// rejectedRequests sums the API server's apiserver_flowcontrol_rejected_requests_total of the
// throttled priority level.
func rejectedRequests(ctx context.Context) (float64, error) {
	body, err := env.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return 0, fmt.Errorf("%w: %s", err, body)
		}
		return 0, err
	}
	sum := 0.0
	for line := range strings.Lines(string(body)) {
		m := rejectedLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || !strings.Contains(m[1], `priority_level="`+throttled+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}
