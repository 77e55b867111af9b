package flaggerimport

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// metrics converts analysis.metrics into sluice.dev/metrics. Flagger's builtin checks keep
// their names (Sluice has the same two, in the same units); an inline query has its template
// variables converted; a templateRef stays a templateRef.
func (c *canary) metrics(ms node) {
	if !ms.exists() {
		node{d: c.d, path: ms.path}.report("absent: Flagger runs no metric checks then; Sluice runs its default checks (success rate >= 99 %%, p99 <= 500 ms)")
		return
	}
	var out []spec.Metric
	for _, m := range ms.items() {
		metric := spec.Metric{Name: m.key("name").str()}
		m.key("name").to(spec.AnnMetrics)
		if iv := m.key("interval"); iv.exists() {
			metric.Interval = iv.str()
			iv.to(spec.AnnMetrics)
		}
		if tr := m.key("thresholdRange"); tr.exists() {
			metric.ThresholdRange = &spec.Range{}
			if v, ok := number(tr.key("min")); ok {
				metric.ThresholdRange.Min = &v
				tr.key("min").to(spec.AnnMetrics)
			}
			if v, ok := number(tr.key("max")); ok {
				metric.ThresholdRange.Max = &v
				tr.key("max").to(spec.AnnMetrics)
			}
		}
		if th := m.key("threshold"); th.exists() {
			// Flagger's deprecated single threshold: a minimum for the success rate, a maximum
			// for everything else.
			v, ok := number(th)
			switch {
			case !ok:
				th.report("not a number")
			case metric.ThresholdRange != nil:
				th.report("Flagger ignores threshold when thresholdRange is set, and so does Sluice")
			case metric.Name == spec.CheckSuccessRate:
				metric.ThresholdRange = &spec.Range{Min: &v}
				th.to(spec.AnnMetrics + " thresholdRange.min")
			default:
				metric.ThresholdRange = &spec.Range{Max: &v}
				th.to(spec.AnnMetrics + " thresholdRange.max")
			}
		}
		if q := m.key("query"); q.exists() {
			metric.Query = c.inlineQuery(q)
		}
		if ref := m.key("templateRef"); ref.exists() {
			metric.TemplateRef = &spec.TemplateRef{Name: ref.key("name").str()}
			ref.key("name").to(spec.AnnMetrics)
			if ns := ref.key("namespace"); ns.exists() {
				if ns.str() != c.ns {
					metric.TemplateRef.Namespace = ns.str()
				}
				ns.to(spec.AnnMetrics)
			}
			ref.key("apiVersion").to("(MetricTemplate)")
			ref.key("kind").to("(MetricTemplate)")
		}
		if tv := m.key("templateVariables"); tv.exists() {
			metric.TemplateVariables = tv.strMap()
			tv.to(spec.AnnMetrics)
		}
		c.origin[spec.AnnMetrics+"["+metric.Name+"]"] = m.path
		out = append(out, metric)
	}
	b, _ := yaml.Marshal(out)
	c.ann[spec.AnnMetrics] = string(b)
	c.origin[spec.AnnMetrics] = ms.path
}

func number(n node) (float64, bool) {
	switch v := n.v.(type) {
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return f, err == nil
	}
	return 0, false
}

// inlineQuery converts an inline query of this Canary: the variables that name the Canary's
// own objects become their values.
func (c *canary) inlineQuery(q node) string {
	route := c.target
	if r := c.d.top().key("spec").key("routeRef").key("name").str(); r != "" {
		route = r
	}
	ingress := c.target
	if i := c.d.top().key("spec").key("ingressRef").key("name").str(); i != "" {
		ingress = i
	}
	out, problems := convertQuery(q.str(), map[string]string{"name": c.name, "ingress": ingress, "route": route})
	if len(problems) > 0 {
		q.report("%s", strings.Join(problems, "; "))
	} else {
		q.to(spec.AnnMetrics)
	}
	return out
}

var templateExpr = regexp.MustCompile(`{{-?\s*(.*?)\s*-?}}`)

// convertQuery rewrites Flagger's template variables (Go text/template functions) into
// Sluice's {{ variables }}. Flagger's target is the workload under test, which in Flagger runs
// under the Deployment's own name and in Sluice is the canary copy: {{ target }} becomes
// {{ canary }}, and the Services Flagger names <svc>-canary and <svc>-primary become Sluice's
// <svc>-canary and <svc>-stable. literal gives values for name, ingress and route (an inline
// query of one Canary); without them (a MetricTemplate shared by Canaries) they become
// variables the checks must set. problems says what could not be converted.
func convertQuery(q string, literal map[string]string) (string, []string) {
	var problems []string
	out := templateExpr.ReplaceAllStringFunc(q, func(expr string) string {
		inner := strings.TrimSpace(templateExpr.FindStringSubmatch(expr)[1])
		switch {
		case inner == "namespace" || inner == "interval" || inner == "service":
			return "{{ " + inner + " }}"
		case inner == "target":
			return "{{ canary }}"
		case strings.HasPrefix(inner, "variables.") && plainKey.MatchString(strings.TrimPrefix(inner, "variables.")):
			return "{{ " + inner + " }}"
		case inner == "name" || inner == "ingress" || inner == "route":
			if v, ok := literal[inner]; ok {
				return v
			}
			problems = append(problems, fmt.Sprintf("{{ %s }} has no Sluice equivalent: converted to {{ variables.%s }}, which every check using this template must set in templateVariables", inner, inner))
			return "{{ variables." + inner + " }}"
		}
		problems = append(problems, fmt.Sprintf("template expression %q has no Sluice equivalent (Sluice substitutes {{ name }} variables, it runs no Go templates); kept as written", expr))
		return expr
	})
	// Flagger's Services after the substitution above: <target>-canary is the canary Service
	// (Sluice's is <svc>-canary, the same name when the Service is named after the
	// Deployment), <target>-primary the primary one (Sluice: <svc>-stable).
	for _, r := range []struct{ from, to string }{
		{"{{ canary }}-canary", "{{ service }}-canary"},
		{"{{ service }}-primary", "{{ service }}-stable"},
		{"{{ canary }}-primary", "{{ service }}-stable"},
	} {
		if strings.Contains(out, r.from) {
			out = strings.ReplaceAll(out, r.from, r.to)
			if strings.HasSuffix(r.from, "-primary") {
				problems = append(problems, fmt.Sprintf("named Flagger's primary (%s): converted to Sluice's stable Service %s; the stable pods are the Deployment's own, {{ stable }}, if the query selects workloads", strings.Replace(r.from, "{{ canary }}", "{{ target }}", 1), r.to))
			}
		}
	}
	return out, problems
}
