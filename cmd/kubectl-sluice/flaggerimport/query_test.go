package flaggerimport

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestConvertQuery: Flagger's template variables in Sluice's terms.
func TestConvertQuery(t *testing.T) {
	for name, tc := range map[string]struct {
		in, want string
		literal  map[string]string
		problem  string
	}{
		"namespace, interval, service stay": {in: `x{ns="{{ namespace }}",svc="{{service}}"}[{{ interval }}]`, want: `x{ns="{{ namespace }}",svc="{{ service }}"}[{{ interval }}]`},
		"target is the canary workload":     {in: `x{destination_workload=~"{{ target }}"}`, want: `x{destination_workload=~"{{ canary }}"}`},
		"pod regex":                         {in: `x{pod=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}`, want: `x{pod=~"{{ canary }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}`},
		"variables stay":                    {in: `histogram_quantile({{ variables.quantile }}, x)`, want: `histogram_quantile({{ variables.quantile }}, x)`},
		"trim markers":                      {in: `x{a="{{- target -}}"}`, want: `x{a="{{ canary }}"}`},
		"canary Service":                    {in: `envoy_cluster_name=~"{{ namespace }}_{{ target }}-canary_[0-9]+"`, want: `envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9]+"`},
		"primary Service":                   {in: `envoy_cluster_name=~"{{ namespace }}_{{ target }}-primary_[0-9]+"`, want: `envoy_cluster_name=~"{{ namespace }}_{{ service }}-stable_[0-9]+"`, problem: "named Flagger's primary"},
		"name, ingress, route inline":       {in: `x{c="{{ name }}",i="{{ ingress }}",r="{{ route }}"}`, literal: map[string]string{"name": "web", "ingress": "web-in", "route": "web-rt"}, want: `x{c="web",i="web-in",r="web-rt"}`},
		"name in a template":                {in: `x{i="{{ ingress }}"}`, want: `x{i="{{ variables.ingress }}"}`, problem: "{{ ingress }} has no Sluice equivalent"},
		"Go template logic":                 {in: `{{ if true }}x{{ end }}`, want: `{{ if true }}x{{ end }}`, problem: `template expression "{{ if true }}"`},
	} {
		t.Run(name, func(t *testing.T) {
			got, problems := convertQuery(tc.in, tc.literal)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			joined := strings.Join(problems, "; ")
			if (tc.problem == "") != (joined == "") || !strings.Contains(joined, tc.problem) {
				t.Errorf("problems %q, want one containing %q", joined, tc.problem)
			}
		})
	}
}

func TestParentPath(t *testing.T) {
	for in, want := range map[string]string{
		"spec":                          "",
		"spec.analysis":                 "spec",
		"spec.analysis.metrics[2]":      "spec.analysis.metrics",
		"spec.analysis.metrics[2].name": "spec.analysis.metrics[2]",
		`metadata.labels["app.kubernetes.io/name"]`: "metadata.labels",
		`a["x[1]"].b`: `a["x[1]"]`,
	} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
}
