package spec

import (
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// Hooks are the release's webhooks (`sluice.dev/webhooks` or the analysis block's), Flagger's
	// types and semantics.
	Hooks []Hook `json:"hooks,omitempty"`
	// Alerts are where the release's alerts go (`sluice.dev/alerts` or the analysis block's).
	Alerts []Alert `json:"alerts,omitempty"`
	// StepWeightPromotion, when set, moves the traffic back from the canary to the re-pinned
	// stable Service at the end of an isolated promotion in steps of this many percent, one per
	// interval (Flagger's analysis field); unset, all of it at once.
	StepWeightPromotion int `json:"stepWeightPromotion,omitempty"`
	// PrimaryReadyThreshold is the percent of the parent's pods that must be available for its
	// promotion to count as rolled out, CanaryReadyThreshold the percent of the canary's for it
	// to count as ready (Flagger's fields); 0 means 100.
	PrimaryReadyThreshold int `json:"primaryReadyThreshold,omitempty"`
	CanaryReadyThreshold  int `json:"canaryReadyThreshold,omitempty"`
}

// ReadyCount is how many of want pods must be available for a Deployment to count as ready
// with threshold percent (0: all of them): Flagger's rounding down, but at least one.
func ReadyCount(want int32, threshold int) int32 {
	if threshold <= 0 || threshold >= 100 {
		return want
	}
	return max(want*int32(threshold)/100, min(want, 1))
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
	// Threshold is Flagger's deprecated maximum of a reading: read as thresholdRange.max when no
	// thresholdRange is given (and then dropped), ignored with a warning when one is.
	Threshold *float64 `json:"threshold,omitempty"`
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

// ServiceFor is the user's Service in front of deployment: sluice.dev/service, else the
// Deployment's own name.
func (c *Config) ServiceFor(deployment string) string {
	if c != nil && c.Service != "" {
		return c.Service
	}
	return deployment
}
