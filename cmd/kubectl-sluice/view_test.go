package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// canaryPlan is a linear canary of 5 steps every 5 s, threshold 2.
func canaryPlan() *spec.Config {
	return &spec.Config{Strategy: spec.StrategyCanary, Router: "replicas", Steps: []int{10, 20, 30, 40, 50},
		Threshold: 2, Interval: metav1.Duration{Duration: 5 * time.Second}}
}

func inFlight() Release {
	return Release{Namespace: "shop", Name: "web", Template: "bbbbbbbbbb", State: spec.State{
		Phase: spec.PhaseProgressing, Revision: "bbbbbbbbbb", Stable: "aaaaaaaaaa", Image: "app=demo:v2",
		Step: 2, Weight: 30, FailedChecks: 1, CanaryReady: true, StartedAt: t0.Add(-90 * time.Second),
		Checks: []spec.CheckResult{
			{Name: "request-success-rate", Value: ptr(99.81234), Verdict: spec.VerdictPass, Reason: "99.8123 within [99, +inf)"},
			{Name: "request-duration", Verdict: spec.VerdictInconclusive, Reason: "no data;\nquery: x"},
		},
		Message: "analysis passed; weight 30%", Plan: canaryPlan(),
	}}
}

func TestWriteList(t *testing.T) {
	idle := Release{Namespace: "default", Name: "api", Template: "cccccccccc", State: spec.State{Phase: spec.PhaseIdle}}
	failed := Release{Namespace: "default", Name: "cart-long-name", Template: "dddddddddd", State: spec.State{
		Phase: spec.PhaseFailed, Revision: "dddddddddd", Image: "app=demo:v2-bad", FailedChecks: 2, Step: 0, Weight: 0,
		StartedAt: t0.Add(-3 * time.Hour), Message: "rolled back: 2 failed analysis runs\nreached the threshold of 2", Plan: canaryPlan(),
	}}
	for name, tc := range map[string]struct {
		rs   []Release
		all  bool
		want string
	}{
		"one namespace": {
			rs: []Release{idle, failed, inFlight()},
			want: `NAME             PHASE         WEIGHT   PROGRESS   FAILED   REVISION     IMAGE             AGE      MESSAGE
api              Idle          0%       <none>     <none>   <none>       <none>            <none>   <none>
cart-long-name   Failed        0%       1/5        2/2      dddddddddd   app=demo:v2-bad   3h       rolled back: 2 failed analysis runs reached the threshold of 2
web              Progressing   30%      3/5        1/2      bbbbbbbbbb   app=demo:v2       90s      analysis passed; weight 30%
`,
		},
		"all namespaces": {
			rs:  []Release{idle, inFlight()},
			all: true,
			want: `NAMESPACE   NAME   PHASE         WEIGHT   PROGRESS   FAILED   REVISION     IMAGE         AGE      MESSAGE
default     api    Idle          0%       <none>     <none>   <none>       <none>        <none>   <none>
shop        web    Progressing   30%      3/5        1/2      bbbbbbbbbb   app=demo:v2   90s      analysis passed; weight 30%
`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeList(&b, tc.rs, tc.all, t0); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("table (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteStatus(t *testing.T) {
	var b bytes.Buffer
	if err := writeStatus(&b, inFlight(), t0); err != nil {
		t.Fatal(err)
	}
	want := `Name:           web
Namespace:      shop
Phase:          Progressing
Revision:       bbbbbbbbbb (app=demo:v2)
Stable:         aaaaaaaaaa
Release:        canary through replicas
Weight:         30% (step 3/5: 10,20,30,40,50, every 5s)
Failed checks:  1 of 2
Inconclusive:   0
Started:        2026-12-01T09:58:30Z (90s ago)
Message:        analysis passed; weight 30%
Checks:
  NAME                   VALUE     VERDICT        REASON
  request-success-rate   99.81     pass           99.8123 within [99, +inf)
  request-duration       no data   inconclusive   no data; query: x
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

// While the Deployment rolls, status shows its progress from the Deployment itself: Sluice's
// state message does not carry the counts (it would be rewritten at every pod replaced).
func TestWriteStatusRollout(t *testing.T) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: map[string]string{
			spec.AnnState: spec.State{Phase: spec.PhasePromoting, Revision: "bbbbbbbbbb", Message: "promoting: rolling out the Deployment"}.Encode(),
		}},
		Spec:   appsv1.DeploymentSpec{Replicas: ptr(int32(3))},
		Status: appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 2, AvailableReplicas: 3},
	}
	var b bytes.Buffer
	if err := writeStatus(&b, releaseOf(d), t0); err != nil {
		t.Fatal(err)
	}
	if want := "Message:    promoting: rolling out the Deployment\nRollout:    2/3 updated, 3 available\n"; !strings.Contains(b.String(), want) {
		t.Errorf("status has no\n%s\ngot:\n%s", want, b.String())
	}
}

// A Waiting release says which gate it waits at, who closed it and since when.
func TestWriteStatusWaiting(t *testing.T) {
	r := inFlight()
	r.State.Phase = spec.PhaseWaiting
	r.State.Step, r.State.Weight = 4, 50
	r.State.Checks = nil
	r.State.Message = "waiting at confirm-promotion"
	r.State.Gate = &spec.Gate{Type: spec.HookConfirmPromotion, Hook: "approval", Reason: `HTTP 403 "Forbidden"`,
		Since: t0.Add(-4*time.Minute - 3*time.Second), CheckedAt: t0.Add(-20 * time.Second)}
	var b bytes.Buffer
	if err := writeStatus(&b, r, t0); err != nil {
		t.Fatal(err)
	}
	want := `Name:           web
Namespace:      shop
Phase:          Waiting
Revision:       bbbbbbbbbb (app=demo:v2)
Stable:         aaaaaaaaaa
Release:        canary through replicas
Weight:         50% (step 5/5: 10,20,30,40,50, every 5s)
Failed checks:  1 of 2
Inconclusive:   0
Started:        2026-12-01T09:58:30Z (90s ago)
Gate:           waiting at confirm-promotion (hook approval: HTTP 403 "Forbidden") since 09:55:57, 4m3s ago; asked 20s ago
Message:        waiting at confirm-promotion
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	// Not Waiting (a gate left in the state is history): no gate line.
	r.State.Phase = spec.PhaseProgressing
	b.Reset()
	if err := writeStatus(&b, r, t0); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "Gate:") {
		t.Errorf("a gate line while Progressing:\n%s", b.String())
	}
}

func TestGateLine(t *testing.T) {
	for name, tc := range map[string]struct {
		g    spec.Gate
		now  time.Time
		want string
	}{
		"a hook said no": {
			g:    spec.Gate{Type: spec.HookConfirmRollout, Hook: "change-window", Reason: "HTTP 409\n\"closed until 14:00\"", Since: t0.Add(-time.Hour)},
			now:  t0,
			want: `waiting at confirm-rollout (hook change-window: HTTP 409 "closed until 14:00") since 09:00:00, 60m ago`,
		},
		"halted": {
			g:    spec.Gate{Type: spec.HookConfirmTrafficIncrease, Since: t0.Add(-30 * time.Second), CheckedAt: t0},
			now:  t0,
			want: "waiting at confirm-traffic-increase (closed by sluice.dev/halt) since 09:59:30, 30s ago",
		},
		"muted, since yesterday, in another time zone": {
			g:    spec.Gate{Type: spec.HookConfirmPromotion, Hook: "qa", MuteAlert: true, Since: t0.Add(-20 * time.Hour)},
			now:  t0.In(time.FixedZone("CET", 3600)),
			want: "waiting at confirm-promotion (hook qa) since 2026-11-30 15:00:00, 20h ago; not alerted (muteAlert)",
		},
	} {
		t.Run(name, func(t *testing.T) {
			if got := gateLine(tc.g, tc.now); got != tc.want {
				t.Errorf("gateLine\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestReleaseJSON(t *testing.T) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: map[string]string{
			spec.AnnState: inFlight().State.Encode(),
		}},
		Spec: appsv1.DeploymentSpec{Paused: true, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "demo:v2"}},
		}}},
	}
	r := releaseOf(d)
	var b bytes.Buffer
	if err := writeStructured(&b, "json", ReleaseList{Items: []Release{r}}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Items []struct {
			Namespace, Name, TemplateRevision string
			Paused                            bool
			State                             struct {
				Phase  string
				Weight int
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, b.String())
	}
	if len(got.Items) != 1 || got.Items[0].Name != "web" || got.Items[0].Namespace != "shop" || !got.Items[0].Paused ||
		got.Items[0].TemplateRevision != spec.TemplateHash(&d.Spec.Template) || got.Items[0].State.Phase != "Progressing" || got.Items[0].State.Weight != 30 {
		t.Errorf("-o json = %s", b.String())
	}

	b.Reset()
	if err := writeStructured(&b, "yaml", r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: web\n", "namespace: shop\n", "  phase: Progressing\n", "  weight: 30\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("-o yaml has no %q:\n%s", want, b.String())
		}
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		o    options
		want string
	}{
		"list":             {o: options{verb: "list"}},
		"list -A -o yaml":  {o: options{verb: "list", allNamespaces: true, output: "yaml"}},
		"watch --timeout":  {o: options{verb: "watch", name: "web", timeout: time.Minute}},
		"no verb":          {o: options{}, want: "no verb given"},
		"no name":          {o: options{verb: "watch"}, want: "watch needs a Deployment name"},
		"unknown verb":     {o: options{verb: "rollback", name: "web"}, want: `unknown verb "rollback"`},
		"bad output":       {o: options{verb: "status", name: "web", output: "wide"}, want: "-o wide: must be json or yaml"},
		"-A not for watch": {o: options{verb: "watch", name: "web", allNamespaces: true}, want: "-A is for list only"},
		"negative timeout": {o: options{verb: "watch", name: "web", timeout: -time.Second}, want: "--timeout must not be negative"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.o.validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRunUsageErrorsExit2(t *testing.T) {
	for name, args := range map[string][]string{
		"no verb":      {},
		"unknown verb": {"frobnicate", "web"},
		"bad flag":     {"--nope", "list"},
		"extra args":   {"status", "a", "b"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(args, nil, &out, &errOut); code != exitError {
				t.Errorf("run(%q) = %d, want %d; stderr %s", args, code, exitError, errOut.String())
			}
		})
	}
}

// The plugin has no router catalog: it names the routing object as the plan records it, with
// its kind when sluice.dev/route gave one.
func TestDescribePlan(t *testing.T) {
	for want, p := range map[string]*spec.Config{
		"canary through replicas":                                      {Strategy: spec.StrategyCanary, Router: spec.RouterReplicas},
		"ab through istio (route shop)":                                {Strategy: spec.StrategyAB, Router: spec.RouterIstio, Route: "shop"},
		"canary through linkerd (trafficsplit web)":                    {Strategy: spec.StrategyCanary, Router: spec.RouterLinkerd, RouteKind: "trafficsplit", Route: "web"},
		"mirror through gatewayapi (route named after the Deployment)": {Strategy: spec.StrategyMirror, Router: spec.RouterGatewayAPI},
		"canary through istio (route web), sessions kept by cookie s": {Strategy: spec.StrategyCanary, Router: spec.RouterIstio, Route: "web",
			SessionAffinity: &spec.SessionAffinity{CookieName: "s"}},
	} {
		if got := describePlan(p); got != want {
			t.Errorf("describePlan(%+v) = %q, want %q", p, got, want)
		}
	}
}
