package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// genericAlert is the generic provider's message (providers/alerts/generic.go).
type genericAlert struct {
	Source, Severity, Message, Namespace, Deployment, Revision, Image, Phase, Check, Value string
	Weight                                                                                 int
}

// alertSink records the generic alerts it receives, checking the wire format.
type alertSink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	alerts []genericAlert
	auth   []string
}

func newAlertSink(t *testing.T) *alertSink {
	s := &alertSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil || r.Method != http.MethodPost {
			t.Errorf("alert: %s %q is not JSON: %v", r.Method, body, err)
			return
		}
		for _, k := range []string{"source", "severity", "message", "namespace", "deployment", "revision", "image", "phase", "weight", "check", "value"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("generic alert %s lacks %q", body, k)
			}
		}
		var a genericAlert
		_ = json.Unmarshal(body, &a)
		s.mu.Lock()
		s.alerts = append(s.alerts, a)
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *alertSink) received() []genericAlert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.alerts)
}

// waitAlert waits for an alert about deployment in ns whose message contains text.
func (s *alertSink) waitAlert(t *testing.T, timeout time.Duration, ns, text string) genericAlert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, a := range s.received() {
			if a.Namespace == ns && strings.Contains(a.Message, text) {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert about %s containing %q after %s; got %+v", ns, text, timeout, s.received())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// applyYAML applies a manifest in the app's namespace.
func (a *app) applyYAML(manifest string) {
	a.t.Helper()
	path := fmt.Sprintf("%s/extra-%d.yaml", a.manifests, time.Now().UnixNano())
	writeFile(a.t, path, []byte(manifest))
	a.kubectl("apply", "-f", path)
}

// Acceptance 4 (issue 11), end to end: alerts reach an AlertProvider whose address comes from a
// Secret, with the release's facts (Deployment, namespace, revision, image, phase, weight, the
// failing check and its value) and severity filtering; an alert endpoint that never answers
// leaves a release's outcome and timing as they are without alerts.
func TestAlerts(t *testing.T) {
	t.Parallel()
	sink := newAlertSink(t)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // answers nothing until the test ends
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	}))
	t.Cleanup(hang.Close)

	provider := func(a *app, name, address string) {
		a.applyYAML(fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s-address}\nstringData:\n  address: %s\n  token: s3cr3t-token\n---\n"+
			"apiVersion: sluice.dev/v1beta1\nkind: AlertProvider\nmetadata: {name: %s}\nspec:\n  type: generic\n  secretRef: {name: %s-address}\n", name, address, name, name))
	}

	t.Run("good release then failing release", func(t *testing.T) {
		t.Parallel()
		a := newApp(t, "web", fastAnnotations(spec.AnnAlerts, "- name: everything\n  providerRef: {name: sink}\n- name: errors-only\n  severity: error\n  providerRef: {name: errors}"))
		provider(a, "sink", sink.srv.URL+"/all")
		errs := newAlertSink(t)
		provider(a, "errors", errs.srv.URL)
		a.deploy("demo:v1")
		a.kubectl("set", "image", "deployment/web", "app=demo:v2")
		st := a.waitPhase(90*time.Second, spec.PhaseSucceeded)
		got := sink.waitAlert(t, 15*time.Second, a.ns, "promoted")
		if got.Severity != "info" || got.Deployment != "web" || got.Revision != st.Revision || !strings.Contains(got.Image, "demo:v2") || got.Phase != string(spec.PhaseSucceeded) {
			t.Errorf("promotion alert %+v, want info about web, revision %s, image demo:v2, phase Succeeded", got, st.Revision)
		}
		sink.mu.Lock()
		auth := sink.auth[0]
		sink.mu.Unlock()
		if auth != "Bearer s3cr3t-token" {
			t.Errorf("generic alert Authorization %q, want the Secret's token", auth)
		}
		if n := len(errs.received()); n != 0 {
			t.Errorf("the error-only target received %d alerts about a good release: %+v", n, errs.received())
		}

		a.apply("demo:v2-broken")
		a.waitPhase(90*time.Second, spec.PhaseFailed)
		rb := errs.waitAlert(t, 15*time.Second, a.ns, "rolling back")
		if rb.Severity != "error" || rb.Check != spec.CheckSuccessRate || rb.Value == "" {
			t.Errorf("rollback alert %+v, want severity error naming the failing check %s and its value", rb, spec.CheckSuccessRate)
		}
		failed := sink.waitAlert(t, 15*time.Second, a.ns, "analysis failed")
		if failed.Severity != "warn" || failed.Check != spec.CheckSuccessRate {
			t.Errorf("failed-check alert %+v, want warn naming %s", failed, spec.CheckSuccessRate)
		}
		for _, e := range errs.received() {
			if e.Severity != "error" {
				t.Errorf("the error-only target received %+v", e)
			}
		}
	})

	t.Run("an alert endpoint that never answers changes nothing", func(t *testing.T) {
		t.Parallel()
		took := map[string]time.Duration{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, name := range []string{"silent", "hanging"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ann := fastAnnotations()
				if name == "hanging" {
					ann[spec.AnnAlerts] = "- name: nobody\n  providerRef: {name: hang}"
				}
				a := newApp(t, name, ann)
				if name == "hanging" {
					provider(a, "hang", hang.URL)
				}
				a.deploy("demo:v1")
				a.kubectl("set", "image", "deployment/"+name, "app=demo:v2")
				st := a.waitPhase(2*time.Minute, spec.PhaseSucceeded)
				mu.Lock()
				took[name] = st.FinishedAt.Sub(st.StartedAt)
				mu.Unlock()
			}()
		}
		wg.Wait()
		// Each post to the hanging endpoint takes its 5 s timeout: posted in the release's path,
		// the ~8 alerts of a release would add 40 s.
		if d := took["hanging"] - took["silent"]; d > 8*time.Second {
			t.Errorf("a release alerting a hanging endpoint took %s, one without alerts %s", took["hanging"], took["silent"])
		}
	})
}
