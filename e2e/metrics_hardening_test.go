package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// headerLog records the credential-bearing headers of the requests a server gets.
type headerLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *headerLog) record(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, fmt.Sprintf("%s %s Authorization=%q X-Scope-OrgID=%q", r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("X-Scope-OrgID")))
}

func (l *headerLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// MetricTemplates pointed by their author at a server that redirects (to a proxy in front of
// the real Prometheus, where a client that follows redirects would get a good answer) fail
// their check saying so, and the credentials of the template's Secret and its custom header
// never reach the second host; a template whose address carries user:pass@ fails with a precise
// reason, and one in another namespace is refused at admission. None of the credentials appear
// in the state annotation, the Deployment's Events or sluice's log.
func TestMetricTemplateCredentialsStayPut(t *testing.T) {
	t.Parallel()
	const (
		token       = "e2e-bearer-t0ken-9f3c"
		basicUser   = "e2e-basic-user-71ad"
		basicPass   = "e2e-basic-pass-c0de"
		addressUser = "e2e-addr-user-5e11"
		addressPass = "e2e-addr-pass-b0b0"
		tenant      = "e2e-tenant-2a7f"
	)

	// The second host: a recording proxy to the real Prometheus.
	prom, err := url.Parse(env.PrometheusURL)
	if err != nil {
		t.Fatal(err)
	}
	var second, first headerLog
	proxy := httputil.NewSingleHostReverseProxy(prom)
	secondSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		second.record(r)
		proxy.ServeHTTP(w, r)
	}))
	defer secondSrv.Close()
	// The configured host redirects every query there, keeping method and body (307).
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.record(r)
		http.Redirect(w, r, secondSrv.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	// Sanity: the second host does answer queries, so following the redirect would "work".
	if resp, err := http.Get(secondSrv.URL + "/api/v1/query?query=vector(100)"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the proxy to Prometheus does not answer: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	preflight := len(second.lines())

	// Two releases, so that each CheckFailed Event's message stays under the 1 KiB an Event
	// note may carry: one whose templates are redirected, one whose templates are refused.
	a := newApp(t, "redirected", fastAnnotations(spec.AnnStepWeights, "50", spec.AnnMetrics,
		"- name: bearer\n  templateRef: {name: bearer}\n  thresholdRange: {min: 99}\n"+
			"- name: basic\n  templateRef: {name: basic}\n  thresholdRange: {min: 99}\n"))
	b := newApp(t, "misaddressed", fastAnnotations(spec.AnnStepWeights, "50"))
	b.ann[spec.AnnMetrics] = "- name: userinfo\n  templateRef: {name: userinfo}\n  thresholdRange: {min: 99}\n"
	for name, data := range map[string]map[string]string{
		"bearer": {"token": token},
		"basic":  {"username": basicUser, "password": basicPass},
	} {
		if _, err := env.Client.CoreV1().Secrets(a.ns).Create(t.Context(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data,
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	userinfo := strings.Replace(redirector.URL, "http://", "http://"+addressUser+":"+addressPass+"@", 1)
	writeFile(t, a.manifests+"/templates.yaml", []byte(fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: bearer}
spec:
  provider: {type: prometheus, address: %[1]q, secretRef: {name: bearer}, headers: {X-Scope-OrgID: %[2]s}}
  query: vector(100)
---
apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: basic}
spec:
  provider: {type: prometheus, address: %[1]q, secretRef: {name: basic}}
  query: vector(100)
`, redirector.URL, tenant)))
	a.kubectl("apply", "-f", a.manifests+"/templates.yaml")
	writeFile(t, b.manifests+"/templates.yaml", []byte(fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: userinfo}
spec:
  provider: {type: prometheus, address: %q}
  query: vector(100)
`, userinfo)))
	b.kubectl("apply", "-f", b.manifests+"/templates.yaml")

	a.deploy("demo:v1")
	b.deploy("demo:v1")
	// A template in another namespace would run with that namespace's Secrets: refused at
	// admission unless the controller allows it.
	elsewhere := `{"metadata":{"annotations":{"` + spec.AnnMetrics + `":"- name: elsewhere\n  templateRef: {name: always-ok, namespace: ` + b.ns + `-x}\n  thresholdRange: {min: 99}\n"}}}`
	if _, stderr, err := b.tryKubectl("patch", "deployment/"+b.name, "--type=merge", "-p", elsewhere); err == nil ||
		!strings.Contains(stderr, "--allow-cross-namespace-templates") {
		t.Errorf("a cross-namespace templateRef was not refused naming the flag (err %v): %s", err, stderr)
	}
	a.apply("demo:v2")
	b.apply("demo:v2")
	reasons := map[string]string{}
	for _, x := range []*app{a, b} {
		d := x.waitFor(90*time.Second, "the release to end", func(d *appsv1.Deployment) (bool, string) {
			st := stateOf(t, d)
			return st.Phase == spec.PhaseFailed || st.Phase == spec.PhaseSucceeded, fmt.Sprintf("phase=%s: %s", st.Phase, st.Message)
		})
		st := stateOf(t, d)
		if st.Phase != spec.PhaseFailed {
			t.Errorf("release of %s ended %s, want Failed: %s", x.name, st.Phase, mustJSON(st.Checks))
		}
		for _, c := range st.Checks {
			reasons[c.Name] = c.Reason
			if c.Verdict != spec.VerdictError {
				t.Errorf("check %s = %s (%s), want a failed check (error)", c.Name, c.Verdict, c.Reason)
			}
		}
	}
	for name, want := range map[string][]string{
		"bearer":   {"HTTP 307 redirect", "not followed", secondSrv.URL},
		"basic":    {"HTTP 307 redirect", "not followed", secondSrv.URL},
		"userinfo": {"must not carry user info", "xxxxx@127.0.0.1"},
	} {
		for _, s := range want {
			if !strings.Contains(reasons[name], s) {
				t.Errorf("reason of %s = %q, want it to mention %q", name, reasons[name], s)
			}
		}
	}

	// The configured host got the credentials; the second host got nothing.
	got := strings.Join(first.lines(), "\n")
	if !strings.Contains(got, `"Bearer `+token+`"`) || !strings.Contains(got, tenant) || !strings.Contains(got, `Authorization="Basic `) {
		t.Errorf("the configured host did not get the template's credentials and header:\n%s", got)
	}
	if leaked := second.lines()[preflight:]; len(leaked) > 0 {
		t.Errorf("the redirect target got %d requests:\n%s", len(leaked), strings.Join(leaked, "\n"))
	}

	// Nothing sluice wrote or printed carries a credential.
	var states, messages []string
	for _, x := range []*app{a, b} {
		states = append(states, x.get().Annotations[spec.AnnState])
		events, err := env.Client.CoreV1().Events(x.ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Items {
			messages = append(messages, e.Reason+": "+e.Message)
		}
	}
	log, err := os.ReadFile(filepath.Join(env.Cluster.Dir, "logs", "sluice.log"))
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"state annotation": strings.Join(states, "\n"),
		"events":           strings.Join(messages, "\n"),
		"sluice log":       string(log),
	}
	// The outputs do carry the reasons (so the search below is not vacuous); sluice logs each
	// release's steps (at -v=0 without the check reasons).
	for _, where := range []string{"state annotation", "events"} {
		for _, s := range []string{"not followed", "xxxxx@127.0.0.1"} {
			if !strings.Contains(outputs[where], s) {
				t.Errorf("%s does not carry the check reasons (%q):\n%s", where, s, outputs[where])
			}
		}
	}
	for _, x := range []*app{a, b} {
		if !strings.Contains(outputs["sluice log"], `"namespace":"`+x.ns+`","name":"`+x.name+`"`) {
			t.Errorf("sluice log says nothing of the release of %s/%s", x.ns, x.name)
		}
	}
	for where, text := range outputs {
		for _, secret := range []string{token, basicUser, basicPass, addressUser, addressPass, "pass@"} {
			if i := strings.Index(text, secret); i >= 0 {
				t.Errorf("%s carries %q: …%s…", where, secret, text[max(0, i-200):min(len(text), i+100)])
			}
		}
	}
}
