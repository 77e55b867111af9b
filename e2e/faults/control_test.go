package faults

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// 429s from the API server: API Priority and Fairness gives sluice's identity a priority level
// with no concurrency and no queue (Reject) mid-release. The API server rejects its requests
// with 429 (counted by apiserver_flowcontrol_rejected_requests_total); sluice keeps running,
// and once the limit is lifted the release ends promoted with no step skipped or repeated.
func TestThrottledBy429(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	a := newApp(t, "web", fastAnnotations(spec.AnnMetrics, passing))
	a.deploy("demo:v1")
	rec := a.record()
	a.kubectl("set", "image", "deployment/web", "app=demo:v2")
	rec.waitState(2*time.Minute, "the canary ready at weight 20", func(st spec.State) bool {
		return st.Phase == spec.PhaseProgressing && st.CanaryReady
	})

	ctx := t.Context()
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
	if _, err := fc.PriorityLevelConfigurations().Create(ctx, plc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lift := func() {
		_ = fc.FlowSchemas().Delete(context.Background(), throttled, metav1.DeleteOptions{})
		_ = fc.PriorityLevelConfigurations().Delete(context.Background(), throttled, metav1.DeleteOptions{})
	}
	defer lift()
	if _, err := fc.FlowSchemas().Create(ctx, fs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	throttledAt := rec.latest()

	// Throttled for two intervals at least, and until the API server has rejected sluice.
	until := time.Now().Add(10 * time.Second)
	deadline := time.Now().Add(time.Minute)
	rejected := 0.0
	for time.Now().Before(until) || rejected == 0 {
		var err error
		if rejected, err = rejectedRequests(ctx); err != nil {
			t.Logf("read API server metrics: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server rejected no request of sluice's in a minute; sluice log:\n%s", env.Cluster.LogTail("sluice", 10))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("API server rejected %v requests of sluice's; state went from %s to %s while throttled", rejected, key(throttledAt), key(rec.latest()))
	if !env.Cluster.Running("sluice") {
		t.Fatalf("sluice exited while throttled:\n%s", env.Cluster.LogTail("sluice", 20))
	}
	lift()

	a.waitPhase(3*time.Minute, spec.PhaseSucceeded)
	if !env.Cluster.Running("sluice") {
		t.Errorf("sluice exited:\n%s", env.Cluster.LogTail("sluice", 20))
	}
	rec.checkRelease(t, promotedReplicas...)
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
