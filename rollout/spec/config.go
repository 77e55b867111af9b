package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Strategy is how a release exposes the canary.
type Strategy string

// Strategies of SPEC §2.
const (
	StrategyCanary    Strategy = "canary"
	StrategyBlueGreen Strategy = "bluegreen"
	StrategyAB        Strategy = "ab"
	StrategyMirror    Strategy = "mirror"
)

// Routers of SPEC §2.
const (
	RouterReplicas   = "replicas"
	RouterGatewayAPI = "gatewayapi"
	RouterIstio      = "istio"
	RouterLinkerd    = "linkerd"
	RouterNginx      = "nginx"
	RouterContour    = "contour"
	RouterAppMesh    = "appmesh"
)

// Builtin check names.
const (
	CheckSuccessRate = "request-success-rate"
	CheckDuration    = "request-duration"
)

// Limits.
const (
	MinInterval = 5 * time.Second
	// DefaultInconclusiveLimit is how many consecutive inconclusive runs (no data) a check
	// without an inconclusiveLimit allows before the release rolls back.
	DefaultInconclusiveLimit = 10
)

// Config is a Deployment's release configuration, parsed from its annotations. It is frozen
// into the release state when a release starts, so it serialises to JSON.
type Config struct {
	Strategy Strategy `json:"strategy"`
	Router   string   `json:"router"`
	Service  string   `json:"service"`
	Port     string   `json:"port,omitempty"`
	Route    string   `json:"route"`
	// RouteKind is the kind of the routing object, lower case ("httproute", "virtualservice" …);
	// empty means the router's default kind.
	RouteKind string `json:"routeKind,omitempty"`
	// Matches send matching requests to the canary (strategy ab).
	Matches []Match `json:"matches,omitempty"`
	// MirrorPercent is the share of live requests copied to the canary (strategy mirror).
	MirrorPercent int `json:"mirrorPercent,omitempty"`
	// SessionAffinity keeps a user whom the weights sent to the canary on it (strategy canary).
	SessionAffinity  *SessionAffinity `json:"sessionAffinity,omitempty"`
	Interval         metav1.Duration  `json:"interval"`
	Threshold        int              `json:"threshold"`
	Steps            []int            `json:"steps"`
	Iterations       int              `json:"iterations"`
	Metrics          []Metric         `json:"metrics"`
	ProgressDeadline metav1.Duration  `json:"progressDeadline"`
	SkipAnalysis     bool             `json:"skipAnalysis,omitempty"`
}

// Metric is one analysis check, shaped like Flagger's `analysis.metrics` entries plus Sluice's
// extensions.
type Metric struct {
	Name string `json:"name"`
	// Query is an inline provider query; empty for the builtin checks.
	Query string `json:"query,omitempty"`
	// TemplateRef takes the query and its provider from a MetricTemplate.
	TemplateRef *TemplateRef `json:"templateRef,omitempty"`
	// TemplateVariables fill {{ variables.NAME }} in the query.
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`
	// ThresholdRange is the passing range of a reading.
	ThresholdRange *Range `json:"thresholdRange,omitempty"`
	// AbortRange: a single reading outside it rolls the release back at once.
	AbortRange *Range `json:"abortRange,omitempty"`
	// Interval is the query window, default the release interval.
	Interval string `json:"interval,omitempty"`
	// InconclusiveLimit turns that many consecutive "no data" runs into a rollback; 0 means
	// DefaultInconclusiveLimit: no release waits for data forever.
	InconclusiveLimit int `json:"inconclusiveLimit,omitempty"`
	// DryRun records the result but never fails or aborts the release.
	DryRun bool `json:"dryRun,omitempty"`
	// CompareTo "stable" runs the same query against the stable pods too and judges the
	// difference: the canary may be worse than stable by at most MaxDelta ("worse" is below for
	// a thresholdRange with a min, above for one with only a max).
	CompareTo string   `json:"compareTo,omitempty"`
	MaxDelta  *float64 `json:"maxDelta,omitempty"`
	// MinRequests makes a builtin check inconclusive while the canary served fewer requests in
	// the window.
	MinRequests int `json:"minRequests,omitempty"`
	// Consecutive counts only consecutive failed runs towards the threshold: a passing run
	// resets the count.
	Consecutive bool `json:"consecutive,omitempty"`
}

// CompareStable is the only CompareTo target.
const CompareStable = "stable"

// Range bounds a reading; a nil bound is open.
type Range struct {
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// Contains reports whether v lies within the range.
func (r *Range) Contains(v float64) bool {
	if r == nil {
		return true
	}
	if r.Min != nil && v < *r.Min {
		return false
	}
	if r.Max != nil && v > *r.Max {
		return false
	}
	return true
}

// bounded reports whether the range has at least one bound; an empty range checks nothing.
func (r *Range) bounded() bool { return r != nil && (r.Min != nil || r.Max != nil) }

func (r *Range) String() string {
	if r == nil {
		return "any"
	}
	lo, hi := "-inf", "+inf"
	if r.Min != nil {
		lo = strconv.FormatFloat(*r.Min, 'g', -1, 64)
	}
	if r.Max != nil {
		hi = strconv.FormatFloat(*r.Max, 'g', -1, 64)
	}
	return "[" + lo + ", " + hi + "]"
}

// Defaults are the values used where a Deployment sets nothing, and the catalog a
// configuration is checked against; the router default comes from the controller's flag.
type Defaults struct {
	Router string
	// Routers are the routers the controller offers (cmd/sluice registers them); a Deployment
	// naming another one is refused.
	Routers Routers
}

// analysisBlock is the Flagger-shaped `sluice.dev/analysis` annotation.
type analysisBlock struct {
	Interval    string   `json:"interval,omitempty"`
	Threshold   *int     `json:"threshold,omitempty"`
	MaxWeight   *int     `json:"maxWeight,omitempty"`
	StepWeight  *int     `json:"stepWeight,omitempty"`
	StepWeights []int    `json:"stepWeights,omitempty"`
	Iterations  *int     `json:"iterations,omitempty"`
	Match       []Match  `json:"match,omitempty"`
	Metrics     []Metric `json:"metrics,omitempty"`
	Webhooks    []any    `json:"webhooks,omitempty"`
	Alerts      []any    `json:"alerts,omitempty"`
	Mirror      *bool    `json:"mirror,omitempty"`
	// MirrorWeight is the percent of requests mirrored (Flagger's field).
	MirrorWeight *int `json:"mirrorWeight,omitempty"`
	// SessionAffinity is Flagger's field: cookieName and maxAge in seconds.
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
}

// SessionAffinity is cookie session affinity, shaped like Flagger's: responses from the canary
// set cookie CookieName (valid for MaxAge seconds), and requests carrying it go to the canary.
type SessionAffinity struct {
	CookieName string `json:"cookieName"`
	MaxAge     int    `json:"maxAge,omitempty"`
}

// DefaultSessionMaxAge is the session cookie's lifetime when none is given (Flagger's: a day).
const DefaultSessionMaxAge = 24 * 60 * 60

// DefaultMetrics are the checks a Deployment gets when it configures none: success rate of at
// least 99 % and p99 latency of at most 500 ms.
func DefaultMetrics() []Metric {
	return []Metric{
		{Name: CheckSuccessRate, ThresholdRange: &Range{Min: ptr(99.0)}},
		{Name: CheckDuration, ThresholdRange: &Range{Max: ptr(500.0)}},
	}
}

func ptr[T any](v T) *T { return &v }

// Parse reads and validates the configuration annotations. Every problem is reported, each
// naming its annotation; a Config is returned only when there is none.
func Parse(ann map[string]string, d Defaults) (Config, field.ErrorList) {
	p := parser{ann: ann, errs: unknownKeys(ann)}
	router := d.Router
	if router == "" {
		router = RouterReplicas
	}
	c := Config{
		Strategy:         StrategyCanary,
		Router:           router,
		Interval:         metav1.Duration{Duration: time.Minute},
		Threshold:        5,
		Iterations:       10,
		ProgressDeadline: metav1.Duration{Duration: 10 * time.Minute},
	}
	stepWeight, maxWeight := 10, 50
	// stepKey, maxKey and metricsKey name where a value came from, so an error names the
	// annotation the user actually wrote.
	stepKey, maxKey, metricsKey, matchKey, strategyKey := AnnStepWeight, AnnMaxWeight, AnnMetrics, AnnMatch, AnnStrategy
	affinityKey := AnnSessionAffinity
	var stepWeights []int

	// The Flagger-shaped block first; flat annotations win where both are set.
	var block analysisBlock
	if raw, ok := ann[AnnAnalysis]; ok {
		if err := yaml.UnmarshalStrict([]byte(raw), &block); err != nil {
			p.invalid(AnnAnalysis, "", "not a valid analysis block: "+cleanYAMLError(err))
		} else {
			if block.Interval != "" {
				c.Interval.Duration = p.duration(AnnAnalysis+" interval", block.Interval, MinInterval)
			}
			// The block's numbers obey the same bounds as their flat annotations.
			if block.StepWeight != nil {
				stepKey = AnnAnalysis + " stepWeight"
			}
			if block.MaxWeight != nil {
				maxKey = AnnAnalysis + " maxWeight"
			}
			p.bounded(AnnAnalysis+" threshold", block.Threshold, 1, 1000, &c.Threshold)
			p.bounded(stepKey, block.StepWeight, 1, 100, &stepWeight)
			p.bounded(maxKey, block.MaxWeight, 1, 100, &maxWeight)
			p.bounded(AnnAnalysis+" iterations", block.Iterations, 1, 10000, &c.Iterations)
			stepWeights = block.StepWeights
			c.Metrics = block.Metrics
			if len(block.Metrics) > 0 {
				metricsKey = AnnAnalysis + " metrics"
			}
			if len(block.Match) > 0 {
				c.Matches, matchKey = block.Match, AnnAnalysis+" match"
			}
			if len(block.Webhooks) > 0 {
				p.unsupported(AnnAnalysis+" webhooks", "webhooks")
			}
			if len(block.Alerts) > 0 {
				p.unsupported(AnnAnalysis+" alerts", "alerts")
			}
			if block.Mirror != nil && *block.Mirror {
				c.Strategy, strategyKey = StrategyMirror, AnnAnalysis+" mirror"
			}
			if block.MirrorWeight != nil {
				p.bounded(AnnAnalysis+" mirrorWeight", block.MirrorWeight, 1, 100, &c.MirrorPercent)
			}
			if block.SessionAffinity != nil {
				c.SessionAffinity, affinityKey = block.SessionAffinity, AnnAnalysis+" sessionAffinity"
			}
		}
	}

	if v, ok := ann[AnnStrategy]; ok {
		switch s := Strategy(v); s {
		case StrategyCanary, StrategyBlueGreen, StrategyAB, StrategyMirror:
			c.Strategy, strategyKey = s, AnnStrategy
		default:
			p.invalid(AnnStrategy, v, "must be one of canary, bluegreen, ab, mirror")
		}
	}
	if v, ok := ann[AnnRouter]; ok {
		c.Router = v
	}
	info, routerKnown := d.Routers.Lookup(c.Router)
	if !routerKnown {
		p.invalid(AnnRouter, c.Router, d.Routers.unknown())
	}
	c.Service = p.name(AnnService)
	if v, ok := ann[AnnRoute]; ok {
		c.RouteKind, c.Route = p.route(v, info, routerKnown)
	}
	if v, ok := ann[AnnMirrorPercent]; ok {
		p.int(AnnMirrorPercent, 1, 100, &c.MirrorPercent)
		_ = v
	}
	if v, ok := ann[AnnSessionAffinity]; ok {
		c.SessionAffinity, affinityKey = &SessionAffinity{CookieName: v}, AnnSessionAffinity
	}
	if v, ok := ann[AnnSessionAffinityMaxAge]; ok {
		d := p.duration(AnnSessionAffinityMaxAge, v, time.Second)
		if c.SessionAffinity == nil {
			p.invalid(AnnSessionAffinityMaxAge, v, "needs "+AnnSessionAffinity+" (the cookie's name)")
		} else {
			c.SessionAffinity.MaxAge = int(d / time.Second)
		}
	}
	if v, ok := ann[AnnPort]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			if n < 1 || n > 65535 {
				p.invalid(AnnPort, v, "must be a port number 1..65535 or a port name")
			}
		} else if !validName(v) || len(v) > 15 {
			p.invalid(AnnPort, v, "must be a port number 1..65535 or a port name")
		}
		c.Port = v
	}
	if v, ok := ann[AnnInterval]; ok {
		c.Interval.Duration = p.duration(AnnInterval, v, MinInterval)
	}
	if v, ok := ann[AnnProgressDeadline]; ok {
		c.ProgressDeadline.Duration = p.duration(AnnProgressDeadline, v, 10*time.Second)
	}
	p.int(AnnThreshold, 1, 1000, &c.Threshold)
	if _, ok := ann[AnnStepWeight]; ok {
		stepKey = AnnStepWeight
	}
	if _, ok := ann[AnnMaxWeight]; ok {
		maxKey = AnnMaxWeight
	}
	p.int(AnnStepWeight, 1, 100, &stepWeight)
	p.int(AnnMaxWeight, 1, 100, &maxWeight)
	p.int(AnnIterations, 1, 10000, &c.Iterations)
	if v, ok := ann[AnnStepWeights]; ok {
		stepWeights = p.weights(AnnStepWeights, v)
	} else if len(stepWeights) > 0 {
		stepWeights = p.checkWeights(AnnAnalysis+" stepWeights", fmt.Sprint(stepWeights), stepWeights)
	}
	if v, ok := ann[AnnMatch]; ok {
		var ms []Match
		if err := yaml.UnmarshalStrict([]byte(v), &ms); err != nil {
			p.invalid(AnnMatch, "", "not a valid YAML list of matches: "+cleanYAMLError(err))
		} else {
			c.Matches, matchKey = ms, AnnMatch
		}
	}
	if _, ok := ann[AnnWebhooks]; ok {
		p.unsupported(AnnWebhooks, "webhooks")
	}
	if _, ok := ann[AnnAlerts]; ok {
		p.unsupported(AnnAlerts, "alerts")
	}
	if v, ok := ann[AnnMetrics]; ok {
		var ms []Metric
		if err := yaml.UnmarshalStrict([]byte(v), &ms); err != nil {
			p.invalid(AnnMetrics, "", "not a valid YAML list of checks: "+cleanYAMLError(err))
		} else {
			c.Metrics = ms
			metricsKey = AnnMetrics
		}
	}
	if v, ok := ann[AnnSkipAnalysis]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.invalid(AnnSkipAnalysis, v, `must be "true" or "false"`)
		}
		c.SkipAnalysis = b
	}

	// Steps: explicit ones win over step/max.
	if len(stepWeights) > 0 {
		c.Steps = stepWeights
	} else if stepWeight > maxWeight {
		p.invalid(stepKey, strconv.Itoa(stepWeight), fmt.Sprintf("must not exceed %s (%d)", maxKey, maxWeight))
	} else {
		for w := stepWeight; w <= maxWeight; w += stepWeight {
			c.Steps = append(c.Steps, w)
		}
		if c.Steps[len(c.Steps)-1] != maxWeight {
			c.Steps = append(c.Steps, maxWeight)
		}
	}
	if len(c.Metrics) == 0 {
		c.Metrics = DefaultMetrics()
	}
	p.metrics(metricsKey, c.Metrics)
	p.matches(matchKey, c.Matches)
	p.sessionAffinity(affinityKey, c.SessionAffinity)
	if routerKnown {
		p.capabilities(&c, info, strategyKey, matchKey)
		p.stickyCapability(&c, info, d.Routers, affinityKey)
	}
	if c.Strategy == StrategyMirror && c.MirrorPercent == 0 {
		c.MirrorPercent = 100
	}
	if len(p.errs) > 0 {
		return Config{}, p.errs
	}
	return c, nil
}

type parser struct {
	ann  map[string]string
	errs field.ErrorList
}

func (p *parser) invalid(key, value, detail string) {
	p.errs = append(p.errs, field.Invalid(field.NewPath(key), value, detail))
}

func (p *parser) unsupported(key, what string) {
	p.errs = append(p.errs, field.Forbidden(field.NewPath(key), what+" are not available in this version of Sluice"))
}

func (p *parser) int(key string, lo, hi int, dst *int) {
	v, ok := p.ann[key]
	if !ok {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		p.invalid(key, v, fmt.Sprintf("must be %d..%d", lo, hi))
		return
	}
	*dst = n
}

// bounded takes an optional number from the analysis block, with the bounds of its flat
// annotation.
func (p *parser) bounded(key string, v *int, lo, hi int, dst *int) {
	if v == nil {
		return
	}
	if *v < lo || *v > hi {
		p.invalid(key, strconv.Itoa(*v), fmt.Sprintf("must be %d..%d", lo, hi))
		return
	}
	*dst = *v
}

func (p *parser) duration(key, v string, lo time.Duration) time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		p.invalid(key, v, "must be a duration such as 30s or 1m")
		return 0
	}
	if d < lo {
		p.invalid(key, v, "must be at least "+lo.String())
		return 0
	}
	return d
}

func (p *parser) name(key string) string {
	v, ok := p.ann[key]
	if !ok {
		return ""
	}
	if !validName(v) {
		p.invalid(key, v, "must be a DNS-1035 name (lower-case letters, digits, '-')")
	}
	return v
}

func (p *parser) weights(key, v string) []int {
	var ws []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			p.invalid(key, v, "must be a comma-separated list of weights such as 1,5,10,25,50")
			return nil
		}
		ws = append(ws, n)
	}
	return p.checkWeights(key, v, ws)
}

func (p *parser) checkWeights(key, v string, ws []int) []int {
	for i, w := range ws {
		if w < 1 || w > 100 {
			p.invalid(key, v, fmt.Sprintf("each weight must be 1..100, got %d", w))
			return nil
		}
		if i > 0 && w <= ws[i-1] {
			p.invalid(key, v, "weights must increase strictly")
			return nil
		}
	}
	return ws
}

func (p *parser) metrics(key string, ms []Metric) {
	seen := map[string]bool{}
	for i, m := range ms {
		where := fmt.Sprintf("%s[%d]", key, i)
		if m.Name == "" {
			p.errs = append(p.errs, field.Required(field.NewPath(where+".name"), "every check needs a name"))
			continue
		}
		where = fmt.Sprintf("%s[%s]", key, m.Name)
		if seen[m.Name] {
			p.errs = append(p.errs, field.Duplicate(field.NewPath(where), m.Name))
		}
		seen[m.Name] = true
		builtin := m.Name == CheckSuccessRate || m.Name == CheckDuration
		switch {
		case m.TemplateRef != nil && strings.TrimSpace(m.Query) != "":
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+".templateRef"), m.TemplateRef.Name, "give either query or templateRef, not both"))
		case m.TemplateRef != nil:
			if !validName(m.TemplateRef.Name) && !validSubdomain(m.TemplateRef.Name) {
				p.errs = append(p.errs, field.Invalid(field.NewPath(where+".templateRef.name"), m.TemplateRef.Name, "must name a MetricTemplate"))
			}
			if ns := m.TemplateRef.Namespace; ns != "" && !validName(ns) {
				p.errs = append(p.errs, field.Invalid(field.NewPath(where+".templateRef.namespace"), ns, "must be a namespace name"))
			}
		case !builtin && strings.TrimSpace(m.Query) == "":
			p.errs = append(p.errs, field.Required(field.NewPath(where+".query"),
				"a custom check needs a query or a templateRef (builtins are "+CheckSuccessRate+" and "+CheckDuration+")"))
		}
		if !m.ThresholdRange.bounded() && !m.AbortRange.bounded() {
			p.errs = append(p.errs, field.Required(field.NewPath(where+".thresholdRange"), "give min and/or max"))
		}
		// A slice, not a map: errors come out in the same order every time.
		for _, nr := range []struct {
			name string
			r    *Range
		}{{"thresholdRange", m.ThresholdRange}, {"abortRange", m.AbortRange}} {
			if r := nr.r; r != nil && r.Min != nil && r.Max != nil && *r.Min > *r.Max {
				p.errs = append(p.errs, field.Invalid(field.NewPath(where+"."+nr.name), r.String(), "min must not exceed max"))
			}
		}
		if m.Interval != "" {
			if d, err := time.ParseDuration(m.Interval); err != nil || d <= 0 {
				p.errs = append(p.errs, field.Invalid(field.NewPath(where+".interval"), m.Interval, "must be a positive duration such as 1m"))
			}
		}
		if m.InconclusiveLimit < 0 {
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+".inconclusiveLimit"), strconv.Itoa(m.InconclusiveLimit), fmt.Sprintf("must be 0 (the default, %d) or more", DefaultInconclusiveLimit)))
		}
		switch {
		case m.CompareTo != "" && m.CompareTo != CompareStable:
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+".compareTo"), m.CompareTo, `must be "stable"`))
		case m.CompareTo == CompareStable && (m.MaxDelta == nil || *m.MaxDelta < 0):
			p.errs = append(p.errs, field.Required(field.NewPath(where+".maxDelta"), "compareTo: stable needs a maxDelta of 0 or more"))
		case m.CompareTo == "" && m.MaxDelta != nil:
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+".maxDelta"), strconv.FormatFloat(*m.MaxDelta, 'g', -1, 64), "needs compareTo: stable"))
		}
		if m.MinRequests < 0 {
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+".minRequests"), strconv.Itoa(m.MinRequests), "must be 0 or more"))
		}
		if m.MinRequests > 0 && m.Name != CheckSuccessRate && m.Name != CheckDuration {
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+".minRequests"), strconv.Itoa(m.MinRequests), "applies to the builtin checks only"))
		}
	}
}

// validSubdomain reports whether s is a DNS-1123 subdomain (the names of most objects).
func validSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validName reports whether s is a DNS-1035 label.
func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		case r == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	s = strings.TrimPrefix(s, "error unmarshaling JSON: while decoding JSON: ")
	return s
}

// Bounds of what FormatErrors renders, so one huge annotation cannot make a multi-MB denial.
const (
	maxErrorLines = 10
	maxValueLen   = 64
	maxLineLen    = 400
)

// FormatErrors renders validation errors the way users see them at admission, one per line:
// `sluice.dev/max-weight: must be 1..100, got "150"`. At most maxErrorLines are listed (then a
// count of the rest), and a bad value is cut at maxValueLen bytes.
func FormatErrors(errs field.ErrorList) string {
	lines := make([]string, 0, min(len(errs), maxErrorLines)+1)
	for i, e := range errs {
		if i == maxErrorLines {
			lines = append(lines, fmt.Sprintf("and %d more error(s)", len(errs)-maxErrorLines))
			break
		}
		switch e.Type {
		case field.ErrorTypeInvalid:
			if s, ok := e.BadValue.(string); ok && s != "" {
				lines = append(lines, fmt.Sprintf("%s: %s, got %q", e.Field, e.Detail, truncate(s)))
				continue
			}
			lines = append(lines, fmt.Sprintf("%s: %s", e.Field, e.Detail))
		case field.ErrorTypeRequired:
			lines = append(lines, fmt.Sprintf("%s: required: %s", e.Field, e.Detail))
		case field.ErrorTypeDuplicate:
			lines = append(lines, fmt.Sprintf("%s: duplicate check name", e.Field))
		default:
			lines = append(lines, fmt.Sprintf("%s: %s", e.Field, e.Detail))
		}
	}
	for i, l := range lines {
		lines[i] = cut(l, maxLineLen)
	}
	return strings.Join(lines, "; ")
}

// truncate cuts s at maxValueLen bytes (on a rune boundary), saying how long it was.
func truncate(s string) string { return cut(s, maxValueLen) }

// cut shortens s to at most n bytes (on a rune boundary), saying how long it was.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:i], len(s))
}
