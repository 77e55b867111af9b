package flaggerimport

import (
	"regexp"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// metricProviders are the MetricTemplate provider types Sluice has.
var metricProviders = []string{"prometheus", "datadog", "cloudwatch", "newrelic", "graphite", "influxdb", "dynatrace", "stackdriver"}

// mql recognises Cloud Monitoring's MQL, which Flagger's stackdriver provider takes.
var mql = regexp.MustCompile(`(?m)^\s*fetch\s|\|\s*metric\s`)

// converted is the metadata of a converted object: name, namespace, labels and annotations
// carried over; the rest is the API server's.
func converted(d *doc, kind string) map[string]any {
	top := d.top()
	top.key("apiVersion").to("apiVersion " + spec.GroupVersion.String())
	top.key("kind").to(kind)
	top.key("status").to("(status: not configuration)")
	m := top.key("metadata")
	out := map[string]any{}
	for _, k := range m.keys() {
		switch k {
		case "name", "namespace", "labels", "annotations":
			out[k] = m.key(k).v
			m.key(k).to("metadata." + k)
		default:
			m.key(k).to("(set by the API server, not configuration)")
		}
	}
	return out
}

// metricTemplate converts a Flagger MetricTemplate: the same shape in sluice.dev, with the
// query's template variables converted.
func metricTemplate(d *doc) []Object {
	meta := converted(d, "MetricTemplate")
	s := d.top().key("spec")
	p := s.key("provider")
	provider := map[string]any{}
	typ := p.key("type").str()
	if typ == "" {
		typ = "prometheus"
	}
	provider["type"] = typ
	if slices.Contains(metricProviders, typ) {
		p.key("type").to("spec.provider.type")
	} else {
		p.key("type").report("%s: Sluice has no such metric provider (it has %s); the template is written but its checks will fail", typ, strings.Join(metricProviders, ", "))
	}
	for _, k := range p.keys() {
		f := p.key(k)
		switch k {
		case "type":
		case "address", "region", "insecureSkipVerify":
			provider[k] = f.v
			f.to("spec.provider." + k)
		case "secretRef":
			provider[k] = map[string]any{"name": f.key("name").v}
			f.key("name").to("spec.provider.secretRef.name")
		default:
			f.report("Sluice's MetricTemplate has no such provider field")
		}
	}
	q := s.key("query")
	query, problems := convertQuery(q.str(), nil)
	if typ == "stackdriver" && mql.MatchString(q.str()) {
		problems = append(problems, "MQL: Sluice's stackdriver provider queries Cloud Monitoring in PromQL (Google has deprecated MQL); rewrite the query")
	}
	if len(problems) > 0 {
		q.report("%s", strings.Join(problems, "; "))
	} else {
		q.to("spec.query")
	}
	return []Object{{
		Comment: "MetricTemplate from Flagger's " + d.source,
		Object: map[string]any{"apiVersion": spec.GroupVersion.String(), "kind": "MetricTemplate", "metadata": meta,
			"spec": map[string]any{"provider": provider, "query": query}},
	}}
}

// alertProvider converts a Flagger AlertProvider: the same shape in sluice.dev, without proxy.
func alertProvider(d *doc) []Object {
	meta := converted(d, "AlertProvider")
	s := d.top().key("spec")
	out := map[string]any{}
	typ := s.key("type").str()
	for _, k := range s.keys() {
		f := s.key(k)
		switch k {
		case "type":
			out[k] = f.v
			if slices.Contains(spec.AlertProviderTypes, typ) {
				f.to("spec.type")
			} else {
				f.report("%s: Sluice posts to %s", typ, strings.Join(spec.AlertProviderTypes, ", "))
			}
		case "channel", "username":
			out[k] = f.v
			f.to("spec." + k)
		case "address":
			out[k] = f.v
			if typ == spec.AlertMSTeams && strings.Contains(f.str(), ".office.com/webhook") {
				f.report("an Office 365 connector URL: Microsoft retired those connectors; Sluice posts to a Teams Workflows webhook, create one and use its URL")
			} else {
				f.to("spec.address")
			}
		case "secretRef":
			out[k] = map[string]any{"name": f.key("name").v}
			f.key("name").to("spec.secretRef.name")
		case "proxy":
			f.report("Sluice posts through the controller's HTTPS_PROXY environment, not per provider")
		default:
			f.report("Sluice's AlertProvider has no such field")
		}
	}
	return []Object{{
		Comment: "AlertProvider from Flagger's " + d.source,
		Object:  map[string]any{"apiVersion": spec.GroupVersion.String(), "kind": "AlertProvider", "metadata": meta, "spec": out},
	}}
}
