package flaggerimport

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// canary converts one Canary.
type canary struct {
	d     *doc
	opts  Options
	users []map[string]any

	ns, name string
	// target is the Deployment; svc the Service in front of it (Flagger's apex Service).
	target, svc string
	port        int
	// provider is Flagger's, router Sluice's.
	provider, router, routeKind string

	ann map[string]string
	// origin maps an annotation (or "annotation[check name]") to the input path it came from,
	// so a refusal by Sluice's parser is reported against the field the user wrote.
	origin map[string]string
	// deployment is the user's manifest of the target, when one was given.
	deployment map[string]any
	objects    []Object
}

func (c *canary) set(ann, value string, from node) {
	c.ann[ann] = value
	c.origin[ann] = from.path
	from.to(ann)
}

func (c *canary) convert() []Object {
	c.ann, c.origin = map[string]string{}, map[string]string{}
	top := c.d.top()
	top.key("apiVersion").to("(Canary)")
	top.key("kind").to("(Canary)")
	top.key("status").to("(status: not configuration)")
	c.metadata(top.key("metadata"))

	s := top.key("spec")
	if !c.targetRef(s.key("targetRef")) {
		s.report("not converted: Sluice releases Deployments only, configured on the Deployment itself")
		return nil
	}
	c.chooseRouter(s.key("provider"), s)
	c.service(s.key("service"), s)
	analysis := s.key("analysis")
	if !analysis.exists() {
		analysis = s.key("canaryAnalysis")
	}
	c.analysis(analysis)
	c.rest(s)
	c.validate()
	return append([]Object{c.deploymentObject()}, c.objects...)
}

func (c *canary) metadata(m node) {
	c.name, c.ns = m.key("name").str(), m.key("namespace").str()
	m.key("name").to("(the Canary's name: Sluice has no Canary object)")
	m.key("namespace").to("metadata.namespace of every object written")
	for _, k := range []string{"labels", "annotations"} {
		if f := m.key(k); len(f.keys()) > 0 {
			f.report("the Canary's own %s: Sluice has no Canary object to carry them", k)
		} else {
			f.to("(empty)")
		}
	}
	for _, k := range m.keys() {
		switch k {
		case "name", "namespace", "labels", "annotations":
		default:
			m.key(k).to("(set by the API server, not configuration)")
		}
	}
}

// targetRef reads the Deployment the Canary releases; false when it is not a Deployment.
func (c *canary) targetRef(t node) bool {
	kind := t.key("kind").str()
	if kind != "" && kind != "Deployment" {
		t.key("kind").report("%s: Sluice releases Deployments only", kind)
		return false
	}
	c.target = t.key("name").str()
	if c.target == "" {
		t.key("name").report("missing: the Canary names no Deployment")
		return false
	}
	t.key("kind").to("(Deployment)")
	t.key("apiVersion").to("(apps/v1)")
	t.key("name").to("the Deployment " + c.target)
	for _, u := range c.users {
		meta, _ := u["metadata"].(map[string]any)
		if meta["name"] == c.target && (meta["namespace"] == nil || c.ns == "" || meta["namespace"] == c.ns) {
			c.deployment = u
			break
		}
	}
	return true
}

// Routers Flagger's providers become.
func (c *canary) chooseRouter(p, s node) {
	c.provider = p.str()
	switch {
	case c.provider != "":
	case len(s.key("service").key("gatewayRefs").items()) > 0 && c.opts.MeshProvider == "":
		// Only Flagger's Gateway API router reads gatewayRefs (and requires them).
		c.provider = "gatewayapi:v1"
		node{d: c.d, path: p.path}.report("absent: converted for Flagger's gatewayapi provider, the only one that reads spec.service.gatewayRefs (kubectl sluice import --mesh-provider sets another)")
	case s.key("ingressRef").exists() && c.opts.MeshProvider == "":
		c.provider = "nginx"
		node{d: c.d, path: p.path}.report("absent: converted for Flagger's nginx provider, which reads spec.ingressRef (kubectl sluice import --mesh-provider sets another)")
	default:
		c.provider = c.opts.MeshProvider
		if c.provider == "" {
			c.provider = "istio"
		}
		node{d: c.d, path: p.path}.report("absent: converted for Flagger's -mesh-provider, %s here (kubectl sluice import --mesh-provider)", c.provider)
	}
	if p.exists() {
		p.to(spec.AnnRouter)
	}
	switch pr := c.provider; {
	case pr == "istio":
		c.router = spec.RouterIstio
	case pr == "linkerd" || strings.HasPrefix(pr, "smi"):
		c.router, c.routeKind = spec.RouterLinkerd, "trafficsplit"
	case pr == "osm":
		c.router, c.routeKind = spec.RouterLinkerd, "trafficsplit"
		p.report("osm: Sluice has no Open Service Mesh router; converted for the linkerd router's SMI TrafficSplit, which OSM also reads, but the builtin checks read Linkerd's series: use custom checks")
	case strings.HasPrefix(pr, "gatewayapi"):
		c.router = spec.RouterGatewayAPI
	case pr == "nginx":
		c.router = spec.RouterNginx
	case pr == "contour":
		c.router = spec.RouterContour
	case strings.HasPrefix(pr, "appmesh"):
		c.router = spec.RouterAppMesh
	case pr == "kubernetes":
		c.router = spec.RouterReplicas
	default:
		c.router = spec.RouterReplicas
		where := p
		if !p.exists() {
			where = node{d: c.d, path: "spec.provider"}
		}
		where.report("%s: Sluice has no such router; converted for the replicas router (the canary is a share of the Service's pods, so traffic is split by pod count, not by the proxy)", pr)
	}
	c.ann[spec.AnnRouter] = c.router
	c.origin[spec.AnnRouter] = "spec.provider"
}

// rest: the top-level fields of spec beside targetRef, provider, service and analysis.
func (c *canary) rest(s node) {
	if pd := s.key("progressDeadlineSeconds"); pd.exists() {
		if n, ok := pd.int(); ok {
			c.set(spec.AnnProgressDeadline, strconv.Itoa(n)+"s", pd)
		} else {
			pd.report("not a number of seconds")
		}
	}
	if sk := s.key("skipAnalysis"); sk.exists() {
		if sk.bool() {
			c.set(spec.AnnSkipAnalysis, "true", sk)
		} else {
			sk.to("(false: the default)")
		}
	}
	if r := s.key("revertOnDeletion"); r.exists() {
		r.to("(built in: Sluice never takes the Deployment over; removing the label leaves it serving its own pods)")
	}
	if su := s.key("suspend"); su.exists() {
		if su.bool() {
			su.report("true: Sluice has no switch that stops releases and lets changes wait; remove the %s label to opt out, or set %s for a release without analysis", spec.LabelEnabled, spec.AnnSkipAnalysis)
		} else {
			su.to("(false: the default)")
		}
	}
	if ms := s.key("metricsServer"); ms.exists() {
		ms.report("Sluice's builtin checks query the controller's --prometheus-address; for another Prometheus write the check as a MetricTemplate with provider.address %s", ms.str())
	}
	if a := s.key("autoscalerRef"); a.exists() {
		a.key("apiVersion").to("(built in)")
		a.key("kind").to("(built in)")
		a.key("name").to("(built in: the autoscaler keeps scaling the Deployment; Sluice sizes the canary from it)")
		for _, k := range []string{"primaryScalerQueries", "primaryScalerReplicas"} {
			if f := a.key(k); f.exists() {
				f.report("Sluice makes no copy of the autoscaler for a primary: the user's autoscaler scales the Deployment itself")
			}
		}
	}
	for _, k := range []string{"routeRef", "upstreamRef"} {
		if f := s.key(k); f.exists() {
			f.report("used by Flagger's %s provider only, which Sluice has no router for", c.provider)
		}
	}
	if in := s.key("ingressRef"); in.exists() && c.router != spec.RouterNginx {
		in.report("used by Flagger's nginx and skipper providers only")
	}
}

// analysis converts spec.analysis into annotations.
func (c *canary) analysis(a node) {
	if !a.exists() {
		node{d: c.d, path: "spec.analysis"}.report("absent: Flagger then promotes every change without analysis; Sluice analyses with its defaults unless the Deployment sets %s: \"true\"", spec.AnnSkipAnalysis)
		return
	}
	if v := a.key("interval"); v.exists() {
		c.set(spec.AnnInterval, v.str(), v)
	}
	if v := a.key("threshold"); v.exists() {
		c.set(spec.AnnThreshold, v.str(), v)
	} else {
		// Flagger's default is 1 failed run, Sluice's 5.
		c.ann[spec.AnnThreshold] = "1"
	}
	iterations := a.key("iterations")
	if iterations.exists() {
		c.set(spec.AnnIterations, iterations.str(), iterations)
	}
	match, mirror := a.key("match"), a.key("mirror")
	it, _ := iterations.int()
	strategy := spec.StrategyCanary
	switch {
	case len(match.items()) > 0 && it > 0:
		strategy = spec.StrategyAB
		c.origin[spec.AnnStrategy] = match.path
	case mirror.bool() && it > 0:
		strategy = spec.StrategyMirror
		c.origin[spec.AnnStrategy] = mirror.path
	case it > 0:
		strategy = spec.StrategyBlueGreen
		c.origin[spec.AnnStrategy] = iterations.path
	}
	if strategy != spec.StrategyCanary {
		c.ann[spec.AnnStrategy] = string(strategy)
	}
	switch {
	case !mirror.exists():
	case mirror.bool() && strategy != spec.StrategyMirror:
		mirror.report("true without iterations (a mirror step before the weights): Sluice mirrors only in a release of strategy mirror")
	case mirror.bool():
		mirror.to(spec.AnnStrategy + ": mirror")
	default:
		mirror.to("(false: the default)")
	}
	if mw := a.key("mirrorWeight"); mw.exists() {
		if strategy == spec.StrategyMirror {
			c.set(spec.AnnMirrorPercent, mw.str(), mw)
		} else {
			mw.report("applies to mirroring only (the strategy is %s)", strategy)
		}
	}
	if match.exists() {
		c.matches(match, strategy)
	}
	if strategy == spec.StrategyCanary {
		c.weights(a)
	} else {
		for _, k := range []string{"stepWeight", "stepWeights", "maxWeight", "stepWeightPromotion"} {
			if f := a.key(k); f.exists() {
				f.report("applies to weighted (canary) releases only; this one is %s", strategy)
			}
		}
	}
	if sa := a.key("sessionAffinity"); sa.exists() {
		if name := sa.key("cookieName"); name.exists() {
			c.set(spec.AnnSessionAffinity, name.str(), name)
		}
		if age := sa.key("maxAge"); age.exists() {
			if n, ok := age.int(); ok {
				c.set(spec.AnnSessionAffinityMaxAge, strconv.Itoa(n)+"s", age)
			} else {
				age.report("not a number of seconds")
			}
		}
	}
	c.tuning(a)
	c.metrics(a.key("metrics"))
	c.hooks(a.key("webhooks"))
	c.alerts(a.key("alerts"))
}

// weights: stepWeight/maxWeight or stepWeights. Flagger's maxWeight defaults to 100, Sluice's
// to 50: the default is written out.
func (c *canary) weights(a node) {
	sw, sws, mw := a.key("stepWeight"), a.key("stepWeights"), a.key("maxWeight")
	if len(sws.items()) > 0 {
		var ws []string
		for _, w := range sws.items() {
			ws = append(ws, w.str())
		}
		c.set(spec.AnnStepWeights, strings.Join(ws, ","), sws)
		if sw.exists() {
			sw.report("Flagger ignores stepWeight when stepWeights is set, and so does Sluice")
		}
		if mw.exists() {
			mw.report("Flagger ignores maxWeight when stepWeights is set, and so does Sluice")
		}
		return
	}
	if sw.exists() {
		c.set(spec.AnnStepWeight, sw.str(), sw)
	}
	if mw.exists() {
		c.set(spec.AnnMaxWeight, mw.str(), mw)
	} else if sw.exists() {
		c.ann[spec.AnnMaxWeight] = "100"
	}
	if sws.exists() {
		sws.to("(empty)")
	}
}

// tuning: Flagger's analysis fields that have no flat annotation. They are offered to Sluice
// in a sluice.dev/analysis block; validate keeps those it accepts and reports the others.
func (c *canary) tuning(a node) {
	block := map[string]any{}
	for _, k := range []string{"stepWeightPromotion", "primaryReadyThreshold", "canaryReadyThreshold"} {
		f := a.key(k)
		if !f.exists() || (k == "stepWeightPromotion" && c.ann[spec.AnnStrategy] != "") {
			continue
		}
		block[k] = f.v
		f.to(spec.AnnAnalysis + " " + k)
		c.origin[spec.AnnAnalysis+" "+k] = f.path
	}
	if len(block) > 0 {
		b, _ := yaml.Marshal(block)
		c.ann[spec.AnnAnalysis] = string(b)
	}
}

// hooks: Flagger's webhooks are Sluice's, field for field.
func (c *canary) hooks(w node) {
	if !w.exists() {
		return
	}
	var hs []spec.Hook
	for _, h := range w.items() {
		hook := spec.Hook{Name: h.key("name").str(), Type: spec.HookType(h.key("type").str()), URL: h.key("url").str(),
			Timeout: h.key("timeout").str(), MuteAlert: h.key("muteAlert").bool(), Metadata: h.key("metadata").strMap()}
		if r, ok := h.key("retries").int(); ok {
			hook.Retries = r
		}
		for _, k := range []string{"name", "type", "url", "timeout", "muteAlert", "metadata", "retries"} {
			if h.key(k).exists() {
				h.key(k).to(spec.AnnWebhooks)
			}
		}
		hs = append(hs, hook)
	}
	b, _ := yaml.Marshal(hs)
	c.ann[spec.AnnWebhooks] = string(b)
	c.origin[spec.AnnWebhooks] = w.path
}

// alerts: Flagger's alerts are Sluice's, field for field.
func (c *canary) alerts(w node) {
	if !w.exists() {
		return
	}
	var as []spec.Alert
	for _, a := range w.items() {
		ref := a.key("providerRef")
		ns := ref.key("namespace").str()
		if ns == c.ns {
			ns = ""
		}
		as = append(as, spec.Alert{Name: a.key("name").str(), Severity: spec.AlertSeverity(a.key("severity").str()),
			ProviderRef: spec.AlertProviderRef{Name: ref.key("name").str(), Namespace: ns}})
		for _, k := range []string{"name", "severity"} {
			if a.key(k).exists() {
				a.key(k).to(spec.AnnAlerts)
			}
		}
		for _, k := range []string{"name", "namespace"} {
			if ref.key(k).exists() {
				ref.key(k).to(spec.AnnAlerts)
			}
		}
	}
	b, _ := yaml.Marshal(as)
	c.ann[spec.AnnAlerts] = string(b)
	c.origin[spec.AnnAlerts] = w.path
}

// validate runs Sluice's admission parsers over the annotations and reports what they refuse
// against the input fields those came from. The tuning block is the exception: what Sluice does
// not accept of it is left out (reported), since a release runs the same without it.
func (c *canary) validate() {
	defaults := spec.Defaults{Router: spec.RouterReplicas, Routers: c.opts.Routers}
	if _, errs := spec.Parse(c.ann, defaults); len(errs) > 0 {
		var block, kept field.ErrorList
		for _, e := range errs {
			if e.Field == spec.AnnAnalysis || strings.HasPrefix(e.Field, spec.AnnAnalysis+" ") {
				block = append(block, e)
			} else {
				kept = append(kept, e)
			}
		}
		if len(block) > 0 {
			// The tuning fields Sluice does not take: left out, each reported.
			delete(c.ann, spec.AnnAnalysis)
			for _, k := range slices.Sorted(maps.Keys(c.origin)) {
				if strings.HasPrefix(k, spec.AnnAnalysis+" ") {
					node{d: c.d, path: c.origin[k]}.report("no equivalent in this version of Sluice; left out (%s)", spec.FormatErrors(block))
				}
			}
		}
		for _, e := range kept {
			c.refused(e)
		}
	}
	c.crossNamespaceTemplates()
	if raw, ok := c.ann[spec.AnnWebhooks]; ok {
		if _, errs := spec.ParseHooks(spec.AnnWebhooks, raw); len(errs) > 0 {
			for _, e := range errs {
				c.refused(e)
			}
		}
	}
	if raw, ok := c.ann[spec.AnnAlerts]; ok {
		if as, errs := spec.ParseAlerts(spec.AnnAlerts, raw); len(errs) > 0 {
			for _, e := range errs {
				c.refused(e)
			}
		} else if c.ns != "" {
			for _, e := range spec.CrossNamespaceAlerts(spec.AnnAlerts, as, c.ns) {
				c.refused(e)
			}
		}
	}
}

// crossNamespaceTemplates refuses, as admission does without --allow-cross-namespace-templates,
// a templateRef to another namespace than the Deployment's.
func (c *canary) crossNamespaceTemplates() {
	var ms []spec.Metric
	if c.ns == "" || yaml.Unmarshal([]byte(c.ann[spec.AnnMetrics]), &ms) != nil {
		return
	}
	for _, m := range ms {
		if r := m.TemplateRef; r != nil && r.Namespace != "" && r.Namespace != c.ns {
			c.refused(field.Forbidden(field.NewPath(fmt.Sprintf("%s[%s].templateRef.namespace", spec.AnnMetrics, m.Name)),
				fmt.Sprintf("MetricTemplate %s/%s is in another namespace than the Deployment (%s); the controller allows that only with --allow-cross-namespace-templates", r.Namespace, r.Name, c.ns)))
		}
	}
}

// refused reports a parser error against the input field its annotation came from: the
// longest origin key that prefixes the error's field ("sluice.dev/metrics[latency]" before
// "sluice.dev/metrics").
func (c *canary) refused(e *field.Error) {
	keys := slices.Sorted(maps.Keys(c.origin))
	best := ""
	for _, k := range keys {
		if strings.HasPrefix(e.Field, k) && len(k) > len(best) {
			best = k
		}
	}
	path := "spec"
	if best != "" {
		path = c.origin[best]
	}
	node{d: c.d, path: path}.report("Sluice would refuse this at kubectl apply: %s", spec.FormatErrors(field.ErrorList{e}))
}

// deploymentObject is the user's Deployment with Sluice's label and annotations merged in, or,
// without one, a patch of only those.
func (c *canary) deploymentObject() Object {
	if c.deployment != nil {
		obj := deepCopy(c.deployment)
		meta := ensureMap(obj, "metadata")
		if c.ns != "" && meta["namespace"] == nil {
			meta["namespace"] = c.ns
		}
		labels := ensureMap(meta, "labels")
		labels[spec.LabelEnabled] = spec.ValueEnabled
		ann := ensureMap(meta, "annotations")
		for k, v := range c.ann {
			ann[k] = v
		}
		return Object{Comment: fmt.Sprintf("Deployment %s: your manifest with Sluice's label and annotations (from Canary %s)", c.target, c.qualified()), Object: obj}
	}
	meta := map[string]any{"name": c.target, "labels": map[string]any{spec.LabelEnabled: spec.ValueEnabled}}
	if c.ns != "" {
		meta["namespace"] = c.ns
	}
	ann := map[string]any{}
	for k, v := range c.ann {
		ann[k] = v
	}
	meta["annotations"] = ann
	return Object{
		Comment: fmt.Sprintf("Deployment %s: Sluice's label and annotations (from Canary %s), to apply onto your Deployment:\n"+
			"  kubectl apply --server-side --field-manager=sluice-import -f FILE\n"+
			"or pass --deployment with your manifest to have it written whole.", c.target, c.qualified()),
		Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta},
	}
}

func (c *canary) qualified() string {
	if c.ns == "" {
		return c.name
	}
	return c.ns + "/" + c.name
}

// meta is the metadata of an object written for this Canary.
func (c *canary) meta(name string, labels, annotations map[string]string) map[string]any {
	m := map[string]any{"name": name}
	if c.ns != "" {
		m["namespace"] = c.ns
	}
	if len(labels) > 0 {
		m["labels"] = toAny(labels)
	}
	if len(annotations) > 0 {
		m["annotations"] = toAny(annotations)
	}
	return m
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func ensureMap(m map[string]any, k string) map[string]any {
	if v, ok := m[k].(map[string]any); ok {
		return v
	}
	v := map[string]any{}
	m[k] = v
	return v
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := yaml.Marshal(m)
	var out map[string]any
	_ = yaml.Unmarshal(b, &out)
	return out
}
