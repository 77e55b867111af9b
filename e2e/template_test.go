package e2e

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

const templates = `apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: quiet}
spec:
  provider: {type: prometheus}
  query: sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ canary }}-.*",path="{{ variables.path }}"}[{{ interval }}]))
---
apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata: {name: always-ok}
spec:
  provider: {type: prometheus}
  query: vector(100)
`

// A check through a MetricTemplate: one with no traffic waits (inconclusive) rather than
// failing; a good one promotes; broken references fail the check with a precise reason; the
// API server refuses a template with an unknown provider.
func TestMetricTemplates(t *testing.T) {
	t.Parallel()
	quiet := newApp(t, "quiet", map[string]string{
		spec.AnnInterval: "5s", spec.AnnThreshold: "1",
		spec.AnnMetrics: "- name: checkout-rate\n  templateRef: {name: quiet}\n  templateVariables: {path: /checkout}\n  thresholdRange: {min: 1}\n" +
			"- name: ok\n  templateRef: {name: always-ok}\n  thresholdRange: {min: 99}\n",
	})
	writeFile(t, quiet.manifests+"/templates.yaml", []byte(templates))
	quiet.kubectl("apply", "-f", quiet.manifests+"/templates.yaml")
	quiet.deploy("demo:v1")
	quiet.apply("demo:v2")
	d := quiet.waitFor(60*time.Second, "two inconclusive runs", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return st.Inconclusive >= 2 || st.Phase != spec.PhaseProgressing, st.Message
	})
	if st := stateOf(t, d); st.Phase != spec.PhaseProgressing || st.FailedChecks != 0 || !strings.Contains(st.Message, "checkout-rate") {
		t.Fatalf("a template check without data should wait: %s", mustJSON(st))
	}

	// A missing variable and a missing template are failed checks that say why.
	broken := newApp(t, "broken", map[string]string{
		spec.AnnInterval: "5s", spec.AnnThreshold: "2",
		spec.AnnMetrics: "- name: no-var\n  templateRef: {name: quiet}\n  thresholdRange: {min: 1}\n" +
			"- name: no-template\n  templateRef: {name: nowhere}\n  thresholdRange: {min: 1}\n",
	})
	writeFile(t, broken.manifests+"/templates.yaml", []byte(templates))
	broken.kubectl("apply", "-f", broken.manifests+"/templates.yaml")
	broken.deploy("demo:v1")
	broken.apply("demo:v2")
	st := broken.waitPhase(60*time.Second, spec.PhaseFailed)
	reasons := map[string]string{}
	for _, c := range st.Checks {
		reasons[c.Name] = c.Reason
	}
	if !strings.Contains(reasons["no-var"], "unknown template variable(s) variables.path") {
		t.Errorf("no-var reason = %q", reasons["no-var"])
	}
	if !strings.Contains(reasons["no-template"], "MetricTemplate "+broken.ns+"/nowhere") || !strings.Contains(reasons["no-template"], "not found") {
		t.Errorf("no-template reason = %q", reasons["no-template"])
	}

	// The CRD refuses a provider Sluice does not know.
	writeFile(t, broken.manifests+"/bad-template.yaml", []byte("apiVersion: sluice.dev/v1beta1\nkind: MetricTemplate\nmetadata: {name: bad}\nspec:\n  provider: {type: graphana}\n  query: up\n"))
	if _, stderr, err := broken.tryKubectl("apply", "-f", broken.manifests+"/bad-template.yaml"); err == nil || !strings.Contains(stderr, "spec.provider.type") {
		t.Errorf("a template with provider graphana was accepted: %v %s", err, stderr)
	}

	// Once traffic on /checkout is not required, the good template alone promotes.
	quiet.ann[spec.AnnMetrics] = "- name: ok\n  templateRef: {name: always-ok}\n  thresholdRange: {min: 99}\n"
	quiet.ann[spec.AnnStepWeights] = "50"
	quiet.apply("demo:v3")
	quiet.waitPhase(60*time.Second, spec.PhaseSucceeded)
}
