package spec_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

func ptr[T any](v T) *T { return &v }

// config is the configuration of a Deployment that sets nothing, changed by mods.
func config(mods ...func(*spec.Config)) spec.Config {
	c := spec.Config{
		Strategy:         spec.StrategyCanary,
		Router:           spec.RouterReplicas,
		Interval:         metav1.Duration{Duration: time.Minute},
		Threshold:        5,
		Steps:            []int{10, 20, 30, 40, 50},
		Iterations:       10,
		Metrics:          spec.DefaultMetrics(),
		ProgressDeadline: metav1.Duration{Duration: 10 * time.Minute},
	}
	for _, m := range mods {
		m(&c)
	}
	return c
}

func TestParse(t *testing.T) {
	tests := map[string]struct {
		ann      map[string]string
		defaults spec.Defaults
		want     spec.Config
	}{
		"nothing set: canary, replicas router, 1m, threshold 5, steps 10..50, default checks": {
			want: config(),
		},
		"nil defaults router falls back to replicas": {
			ann:      map[string]string{"unrelated": "x"},
			defaults: spec.Defaults{},
			want:     config(),
		},
		"router from the controller's defaults": {
			defaults: spec.Defaults{Router: spec.RouterReplicas},
			want:     config(),
		},
		"every flat annotation": {
			ann: map[string]string{
				spec.AnnStrategy:         "canary",
				spec.AnnRouter:           "gatewayapi",
				spec.AnnService:          "web-svc",
				spec.AnnPort:             "http",
				spec.AnnRoute:            "web-route",
				spec.AnnInterval:         "30s",
				spec.AnnThreshold:        "3",
				spec.AnnStepWeight:       "20",
				spec.AnnMaxWeight:        "60",
				spec.AnnIterations:       "7",
				spec.AnnProgressDeadline: "2m",
				spec.AnnSkipAnalysis:     "false",
			},
			want: config(func(c *spec.Config) {
				c.Router, c.Service, c.Port, c.Route = "gatewayapi", "web-svc", "http", "web-route"
				c.Interval.Duration = 30 * time.Second
				c.Threshold = 3
				c.Steps = []int{20, 40, 60}
				c.Iterations = 7
				c.ProgressDeadline.Duration = 2 * time.Minute
			}),
		},
		"numeric port and surrounding blanks in numbers and durations": {
			ann: map[string]string{spec.AnnPort: "8080", spec.AnnThreshold: " 2 ", spec.AnnInterval: " 10s"},
			want: config(func(c *spec.Config) {
				c.Port, c.Threshold, c.Interval.Duration = "8080", 2, 10*time.Second
			}),
		},
		"ab through istio with every kind of match": {
			ann: map[string]string{spec.AnnRouter: "istio", spec.AnnStrategy: "ab", spec.AnnIterations: "3",
				spec.AnnMatch: "- headers: {x-canary: {exact: insider}}\n- cookies: {canary: {exact: always}}\n- queryParams: {beta: {regex: \"^(1|yes)$\"}}"},
			want: config(func(c *spec.Config) {
				c.Router, c.Strategy, c.Iterations = "istio", spec.StrategyAB, 3
				c.Matches = []spec.Match{
					{Headers: map[string]spec.StringMatch{"x-canary": {Exact: "insider"}}},
					{Cookies: map[string]spec.StringMatch{"canary": {Exact: "always"}}},
					{QueryParams: map[string]spec.StringMatch{"beta": {Regex: "^(1|yes)$"}}},
				}
			}),
		},
		"mirror defaults to every request": {
			ann: map[string]string{spec.AnnRouter: "gatewayapi", spec.AnnStrategy: "mirror"},
			want: config(func(c *spec.Config) {
				c.Router, c.Strategy, c.MirrorPercent = "gatewayapi", spec.StrategyMirror, 100
			}),
		},
		"mirror from a Flagger analysis block": {
			ann: map[string]string{spec.AnnRouter: "istio", spec.AnnAnalysis: "mirror: true\nmirrorWeight: 40\niterations: 4"},
			want: config(func(c *spec.Config) {
				c.Router, c.Strategy, c.MirrorPercent, c.Iterations = "istio", spec.StrategyMirror, 40, 4
			}),
		},
		"blue/green with the replicas router": {
			ann:  map[string]string{spec.AnnStrategy: "bluegreen"},
			want: config(func(c *spec.Config) { c.Strategy = spec.StrategyBlueGreen }),
		},
		"route kind prefix": {
			ann: map[string]string{spec.AnnRouter: "linkerd", spec.AnnRoute: "TrafficSplit/web"},
			want: config(func(c *spec.Config) {
				c.Router, c.RouteKind, c.Route = "linkerd", "trafficsplit", "web"
			}),
		},
		"max weight not a multiple of the step is the last step": {
			ann:  map[string]string{spec.AnnStepWeight: "30", spec.AnnMaxWeight: "50"},
			want: config(func(c *spec.Config) { c.Steps = []int{30, 50} }),
		},
		"step equal to max is a single step": {
			ann:  map[string]string{spec.AnnStepWeight: "50"},
			want: config(func(c *spec.Config) { c.Steps = []int{50} }),
		},
		"max weight 100": {
			ann:  map[string]string{spec.AnnStepWeight: "25", spec.AnnMaxWeight: "100"},
			want: config(func(c *spec.Config) { c.Steps = []int{25, 50, 75, 100} }),
		},
		"explicit step weights win over step and max": {
			ann: map[string]string{
				spec.AnnStepWeights: "1, 5,10,25,50",
				spec.AnnStepWeight:  "20",
				spec.AnnMaxWeight:   "80",
			},
			want: config(func(c *spec.Config) { c.Steps = []int{1, 5, 10, 25, 50} }),
		},
		"skip analysis": {
			ann:  map[string]string{spec.AnnSkipAnalysis: "true"},
			want: config(func(c *spec.Config) { c.SkipAnalysis = true }),
		},
		"metrics YAML: builtin with abort range and a custom check": {
			ann: map[string]string{spec.AnnMetrics: `
- name: request-success-rate
  thresholdRange: {min: 99.5}
  abortRange: {min: 80}
- name: error-budget
  query: sum(rate(errors_total{namespace="{{ namespace }}"}[{{ interval }}]))
  thresholdRange:
    max: 1
  interval: 30s
  inconclusiveLimit: 3
  dryRun: true
`},
			want: config(func(c *spec.Config) {
				c.Metrics = []spec.Metric{
					{Name: spec.CheckSuccessRate, ThresholdRange: &spec.Range{Min: ptr(99.5)}, AbortRange: &spec.Range{Min: ptr(80.0)}},
					{
						Name:              "error-budget",
						Query:             `sum(rate(errors_total{namespace="{{ namespace }}"}[{{ interval }}]))`,
						ThresholdRange:    &spec.Range{Max: ptr(1.0)},
						Interval:          "30s",
						InconclusiveLimit: 3,
						DryRun:            true,
					},
				}
			}),
		},
		"metrics with only an abort range": {
			ann: map[string]string{spec.AnnMetrics: "- name: request-duration\n  abortRange: {max: 2000}\n"},
			want: config(func(c *spec.Config) {
				c.Metrics = []spec.Metric{{Name: spec.CheckDuration, AbortRange: &spec.Range{Max: ptr(2000.0)}}}
			}),
		},
		"empty metrics list means the default checks": {
			ann:  map[string]string{spec.AnnMetrics: "[]"},
			want: config(),
		},
		"Flagger-shaped analysis block": {
			ann: map[string]string{spec.AnnAnalysis: `
interval: 30s
threshold: 2
maxWeight: 30
stepWeight: 15
iterations: 4
metrics:
- name: request-success-rate
  thresholdRange:
    min: 95
  interval: 1m
`},
			want: config(func(c *spec.Config) {
				c.Interval.Duration = 30 * time.Second
				c.Threshold, c.Iterations = 2, 4
				c.Steps = []int{15, 30}
				c.Metrics = []spec.Metric{{Name: spec.CheckSuccessRate, ThresholdRange: &spec.Range{Min: ptr(95.0)}, Interval: "1m"}}
			}),
		},
		"analysis block step weights": {
			ann:  map[string]string{spec.AnnAnalysis: "stepWeights: [2, 4, 8]"},
			want: config(func(c *spec.Config) { c.Steps = []int{2, 4, 8} }),
		},
		"flat annotations win over the analysis block": {
			ann: map[string]string{
				spec.AnnAnalysis: `
interval: 30s
threshold: 2
stepWeight: 15
maxWeight: 30
stepWeights: [1, 2]
metrics:
- name: request-success-rate
  thresholdRange: {min: 95}
`,
				spec.AnnInterval:    "2m",
				spec.AnnThreshold:   "9",
				spec.AnnStepWeights: "5,50",
				spec.AnnMetrics:     "- name: request-duration\n  thresholdRange: {max: 250}\n",
			},
			want: config(func(c *spec.Config) {
				c.Interval.Duration = 2 * time.Minute
				c.Threshold = 9
				c.Steps = []int{5, 50}
				c.Metrics = []spec.Metric{{Name: spec.CheckDuration, ThresholdRange: &spec.Range{Max: ptr(250.0)}}}
			}),
		},
		"flat step and max win over the block's": {
			ann: map[string]string{
				spec.AnnAnalysis:   "stepWeight: 15\nmaxWeight: 30",
				spec.AnnStepWeight: "20",
				spec.AnnMaxWeight:  "40",
			},
			want: config(func(c *spec.Config) { c.Steps = []int{20, 40} }),
		},
		"block mirror false is fine": {
			ann:  map[string]string{spec.AnnAnalysis: "mirror: false"},
			want: config(),
		},
		"session affinity: a day by default": {
			ann: map[string]string{spec.AnnRouter: "istio", spec.AnnSessionAffinity: "canary-session"},
			want: config(func(c *spec.Config) {
				c.Router = "istio"
				c.SessionAffinity = &spec.SessionAffinity{CookieName: "canary-session", MaxAge: 86400}
			}),
		},
		"session affinity with a max age": {
			ann: map[string]string{spec.AnnRouter: "gatewayapi", spec.AnnSessionAffinity: "s", spec.AnnSessionAffinityMaxAge: "90m"},
			want: config(func(c *spec.Config) {
				c.Router = "gatewayapi"
				c.SessionAffinity = &spec.SessionAffinity{CookieName: "s", MaxAge: 5400}
			}),
		},
		"session affinity from Flagger's block": {
			ann: map[string]string{spec.AnnRouter: "istio", spec.AnnAnalysis: "sessionAffinity: {cookieName: flagger-cookie, maxAge: 21600}"},
			want: config(func(c *spec.Config) {
				c.Router = "istio"
				c.SessionAffinity = &spec.SessionAffinity{CookieName: "flagger-cookie", MaxAge: 21600}
			}),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, errs := spec.Parse(tc.ann, withCatalog(tc.defaults))
			if len(errs) > 0 {
				t.Fatalf("Parse() errors: %s", spec.FormatErrors(errs))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := map[string]struct {
		ann      map[string]string
		defaults spec.Defaults
		want     string // FormatErrors output: what kubectl apply prints
	}{
		"max weight out of range": {
			ann:  map[string]string{spec.AnnMaxWeight: "150"},
			want: `sluice.dev/max-weight: must be 1..100, got "150"`,
		},
		"misspelled key": {
			ann:  map[string]string{"sluice.dev/treshold": "3"},
			want: `sluice.dev/treshold: not an annotation Sluice knows; did you mean sluice.dev/threshold?`,
		},
		"misspelled key with a dash lost": {
			ann:  map[string]string{"sluice.dev/stepweights": "5,10", "sluice.dev/progresdeadline": "5m"},
			want: `sluice.dev/progresdeadline: not an annotation Sluice knows; did you mean sluice.dev/progress-deadline?; sluice.dev/stepweights: not an annotation Sluice knows; did you mean sluice.dev/step-weights?`,
		},
		"unknown key far from any": {
			ann:  map[string]string{"sluice.dev/canary-replicas-override": "3"},
			want: `sluice.dev/canary-replicas-override: not an annotation Sluice knows`,
		},
		"opt-in label written as an annotation": {
			ann:  map[string]string{spec.LabelEnabled: "true"},
			want: `sluice.dev/enabled: is a label, not an annotation: set it under metadata.labels`,
		},
		"step weight not a number": {
			ann:  map[string]string{spec.AnnStepWeight: "ten"},
			want: `sluice.dev/step-weight: must be 1..100, got "ten"`,
		},
		"step weight zero": {
			ann:  map[string]string{spec.AnnStepWeight: "0"},
			want: `sluice.dev/step-weight: must be 1..100, got "0"`,
		},
		"threshold zero": {
			ann:  map[string]string{spec.AnnThreshold: "0"},
			want: `sluice.dev/threshold: must be 1..1000, got "0"`,
		},
		"iterations negative": {
			ann:  map[string]string{spec.AnnIterations: "-1"},
			want: `sluice.dev/iterations: must be 1..10000, got "-1"`,
		},
		"interval not a duration": {
			ann:  map[string]string{spec.AnnInterval: "fast"},
			want: `sluice.dev/interval: must be a duration such as 30s or 1m, got "fast"`,
		},
		"interval below the minimum": {
			ann:  map[string]string{spec.AnnInterval: "1s"},
			want: `sluice.dev/interval: must be at least 5s, got "1s"`,
		},
		"progress deadline below the minimum": {
			ann:  map[string]string{spec.AnnProgressDeadline: "5s"},
			want: `sluice.dev/progress-deadline: must be at least 10s, got "5s"`,
		},
		"progress deadline not a duration": {
			ann:  map[string]string{spec.AnnProgressDeadline: "10"},
			want: `sluice.dev/progress-deadline: must be a duration such as 30s or 1m, got "10"`,
		},
		"strategy unknown": {
			ann:  map[string]string{spec.AnnStrategy: "rolling"},
			want: `sluice.dev/strategy: must be one of canary, bluegreen, ab, mirror, got "rolling"`,
		},
		"strategy the router cannot do": {
			ann:  map[string]string{spec.AnnStrategy: "mirror"},
			want: `sluice.dev/strategy: the replicas router cannot do mirror releases (it can do canary, bluegreen), got "mirror"`,
		},
		"mirror through linkerd": {
			ann:  map[string]string{spec.AnnRouter: "linkerd", spec.AnnStrategy: "mirror"},
			want: `sluice.dev/strategy: the linkerd (httproute) router cannot do mirror releases (it can do canary, bluegreen, ab), got "mirror"`,
		},
		"ab through a TrafficSplit": {
			ann:  map[string]string{spec.AnnRouter: "linkerd", spec.AnnRoute: "trafficsplit/web", spec.AnnStrategy: "ab", spec.AnnMatch: "- headers: {x-canary: {exact: insider}}"},
			want: `sluice.dev/strategy: the linkerd (trafficsplit) router cannot do ab releases (it can do canary, bluegreen), got "ab"`,
		},
		"ab without matches": {
			ann:  map[string]string{spec.AnnRouter: "istio", spec.AnnStrategy: "ab"},
			want: `sluice.dev/match: required: strategy ab needs at least one match`,
		},
		"matches without ab": {
			ann:  map[string]string{spec.AnnRouter: "istio", spec.AnnMatch: "- headers: {x-canary: {exact: insider}}"},
			want: `sluice.dev/match: matches apply to strategy ab only (strategy is canary)`,
		},
		"mirror percent without mirror": {
			ann:  map[string]string{spec.AnnRouter: "istio", spec.AnnMirrorPercent: "20"},
			want: `sluice.dev/mirror-percent: applies to strategy mirror only (strategy is canary)`,
		},
		"session affinity on a router that cannot keep sessions": {
			ann:  map[string]string{spec.AnnRouter: "contour", spec.AnnSessionAffinity: "s"},
			want: `sluice.dev/session-affinity: the contour router cannot keep sessions on the canary (session affinity works with gatewayapi (httproute), istio), got "s"`,
		},
		"session affinity on the replicas router": {
			ann:  map[string]string{spec.AnnSessionAffinity: "s"},
			want: `sluice.dev/session-affinity: the replicas router cannot keep sessions on the canary (session affinity works with gatewayapi (httproute), istio), got "s"`,
		},
		"session affinity with another strategy": {
			ann:  map[string]string{spec.AnnRouter: "istio", spec.AnnStrategy: "bluegreen", spec.AnnSessionAffinity: "s"},
			want: `sluice.dev/session-affinity: session affinity applies to strategy canary only (strategy is bluegreen), got "s"`,
		},
		"session affinity cookie name": {
			ann:  map[string]string{spec.AnnRouter: "istio", spec.AnnSessionAffinity: "a b;c"},
			want: `sluice.dev/session-affinity: must be a cookie name (letters, digits and !#$%&'*+-.^_` + "`" + `|~), got "a b;c"`,
		},
		"session affinity max age without a cookie": {
			ann:  map[string]string{spec.AnnRouter: "istio", spec.AnnSessionAffinityMaxAge: "1h"},
			want: `sluice.dev/session-affinity-max-age: needs sluice.dev/session-affinity (the cookie's name), got "1h"`,
		},
		"mirror percent out of range": {
			ann:  map[string]string{spec.AnnRouter: "istio", spec.AnnStrategy: "mirror", spec.AnnMirrorPercent: "0"},
			want: `sluice.dev/mirror-percent: must be 1..100, got "0"`,
		},
		"nginx matches one header only": {
			ann: map[string]string{spec.AnnRouter: "nginx", spec.AnnStrategy: "ab",
				spec.AnnMatch: "- headers: {x-a: {exact: a}, x-b: {exact: b}}"},
			want: `sluice.dev/match: the nginx router can route by one header and/or one cookie only`,
		},
		"nginx cookie must be always": {
			ann: map[string]string{spec.AnnRouter: "nginx", spec.AnnStrategy: "ab",
				spec.AnnMatch: "- cookies: {canary: {exact: \"on\"}}"},
			want: `sluice.dev/match[0].cookies.canary: ingress-nginx routes a cookie to the canary when its value is "always"; use exact: always, got "on"`,
		},
		"grpcroute cannot match query parameters": {
			ann: map[string]string{spec.AnnRouter: "gatewayapi", spec.AnnRoute: "grpcroute/api", spec.AnnStrategy: "ab",
				spec.AnnMatch: "- queryParams: {canary: {exact: \"1\"}}"},
			want: `sluice.dev/match[0].queryParams.canary: the gatewayapi (grpcroute) router cannot match queryParams, got "exact"`,
		},
		"contour matches headers exactly": {
			ann: map[string]string{spec.AnnRouter: "contour", spec.AnnStrategy: "ab",
				spec.AnnMatch: "- headers: {x-canary: {regex: \"^in.*\"}}"},
			want: `sluice.dev/match[0].headers.x-canary: the contour router can match headers by exact only, got "regex"`,
		},
		"match with two comparisons": {
			ann: map[string]string{spec.AnnRouter: "istio", spec.AnnStrategy: "ab",
				spec.AnnMatch: "- headers: {x-canary: {exact: a, prefix: b}}"},
			want: `sluice.dev/match[0].headers.x-canary: give exactly one of exact, prefix, regex`,
		},
		"match with a bad regex": {
			ann: map[string]string{spec.AnnRouter: "istio", spec.AnnStrategy: "ab",
				spec.AnnMatch: "- headers: {x-canary: {regex: \"(\"}}"},
			want: `sluice.dev/match[0].headers.x-canary.regex: not a valid regular expression, got "("`,
		},
		"empty match": {
			ann:  map[string]string{spec.AnnRouter: "istio", spec.AnnStrategy: "ab", spec.AnnMatch: "- {}"},
			want: `sluice.dev/match[0]: required: a match needs headers, cookies or queryParams`,
		},
		"route of a kind the router does not manage": {
			ann:  map[string]string{spec.AnnRouter: "istio", spec.AnnRoute: "httproute/web"},
			want: `sluice.dev/route: the istio router manages virtualservice objects, got "httproute/web"`,
		},
		"route with the replicas router": {
			ann:  map[string]string{spec.AnnRoute: "web"},
			want: `sluice.dev/route: the replicas router manages no routing object, got "web"`,
		},
		"router unknown": {
			ann:  map[string]string{spec.AnnRouter: "haproxy"},
			want: `sluice.dev/router: must be one of replicas, gatewayapi, istio, linkerd, nginx, contour, appmesh, got "haproxy"`,
		},
		"unknown router from the controller's defaults": {
			defaults: spec.Defaults{Router: "haproxy"},
			want:     `sluice.dev/router: must be one of replicas, gatewayapi, istio, linkerd, nginx, contour, appmesh, got "haproxy"`,
		},
		"service not a DNS name": {
			ann:  map[string]string{spec.AnnService: "Web_1"},
			want: `sluice.dev/service: must be a DNS-1035 name (lower-case letters, digits, '-'), got "Web_1"`,
		},
		"route starting with a digit": {
			ann:  map[string]string{spec.AnnRoute: "1web"},
			want: `sluice.dev/route: must be a DNS-1035 name (lower-case letters, digits, '-'), optionally prefixed by a kind as in httproute/my-route, got "1web"`,
		},
		"service empty": {
			ann:  map[string]string{spec.AnnService: ""},
			want: `sluice.dev/service: must be a DNS-1035 name (lower-case letters, digits, '-')`,
		},
		"port zero": {
			ann:  map[string]string{spec.AnnPort: "0"},
			want: `sluice.dev/port: must be a port number 1..65535 or a port name, got "0"`,
		},
		"port too high": {
			ann:  map[string]string{spec.AnnPort: "65536"},
			want: `sluice.dev/port: must be a port number 1..65535 or a port name, got "65536"`,
		},
		"port name longer than 15": {
			ann:  map[string]string{spec.AnnPort: "http-metrics-extra"},
			want: `sluice.dev/port: must be a port number 1..65535 or a port name, got "http-metrics-extra"`,
		},
		"step weights with a word": {
			ann:  map[string]string{spec.AnnStepWeights: "1,5,x"},
			want: `sluice.dev/step-weights: must be a comma-separated list of weights such as 1,5,10,25,50, got "1,5,x"`,
		},
		"step weights out of range": {
			ann:  map[string]string{spec.AnnStepWeights: "0,50"},
			want: `sluice.dev/step-weights: each weight must be 1..100, got 0, got "0,50"`,
		},
		"step weights not increasing": {
			ann:  map[string]string{spec.AnnStepWeights: "10,10,20"},
			want: `sluice.dev/step-weights: weights must increase strictly, got "10,10,20"`,
		},
		"step weight above max weight": {
			ann:  map[string]string{spec.AnnStepWeight: "30", spec.AnnMaxWeight: "20"},
			want: `sluice.dev/step-weight: must not exceed sluice.dev/max-weight (20), got "30"`,
		},
		"max weight below the default step names max weight too": {
			ann:  map[string]string{spec.AnnMaxWeight: "5"},
			want: `sluice.dev/step-weight: must not exceed sluice.dev/max-weight (5), got "10"`,
		},
		"skip analysis not a bool": {
			ann:  map[string]string{spec.AnnSkipAnalysis: "yes"},
			want: `sluice.dev/skip-analysis: must be "true" or "false", got "yes"`,
		},
		"webhook without a url names the entry": {
			ann:  map[string]string{spec.AnnWebhooks: "- name: smoke\n- name: gate\n  type: confirm-rollout\n  url: ftp://x/"},
			want: `sluice.dev/webhooks[0].url: required: every webhook needs a url; sluice.dev/webhooks[1].url: must be an http or https URL, got "ftp://x/"`,
		},
		"webhooks not a YAML list": {
			ann:  map[string]string{spec.AnnWebhooks: "name: x"},
			want: `sluice.dev/webhooks: not a valid YAML list of webhooks: json: cannot unmarshal object into Go value of type []spec.Hook`,
		},
		"alert with an unknown severity names the entry": {
			ann:  map[string]string{spec.AnnAlerts: "- name: on-call\n  severity: critical\n  providerRef: {name: slack}"},
			want: `sluice.dev/alerts[0].severity: must be info, warn or error (empty means info), got "critical"`,
		},
		"metrics not YAML": {
			ann:  map[string]string{spec.AnnMetrics: "- name: [x"},
			want: `sluice.dev/metrics: not a valid YAML list of checks: yaml: line 1: did not find expected ',' or ']'`,
		},
		"metrics not a list": {
			ann:  map[string]string{spec.AnnMetrics: "name: request-success-rate"},
			want: `sluice.dev/metrics: not a valid YAML list of checks: json: cannot unmarshal object into Go value of type []spec.Metric`,
		},
		"metrics with an unknown field": {
			ann:  map[string]string{spec.AnnMetrics: "- name: request-duration\n  tresholdRange: {max: 500}\n"},
			want: `sluice.dev/metrics: not a valid YAML list of checks: json: unknown field "tresholdRange"`,
		},
		"metric without a name": {
			ann:  map[string]string{spec.AnnMetrics: "- thresholdRange: {min: 1}"},
			want: `sluice.dev/metrics[0].name: required: every check needs a name`,
		},
		"metric names duplicated": {
			ann: map[string]string{spec.AnnMetrics: "- name: request-duration\n  thresholdRange: {max: 500}\n" +
				"- name: request-duration\n  thresholdRange: {max: 400}\n"},
			want: `sluice.dev/metrics[request-duration]: duplicate check name`,
		},
		"compareTo without maxDelta": {
			ann:  map[string]string{spec.AnnMetrics: "- name: request-success-rate\n  thresholdRange: {min: 99}\n  compareTo: stable\n"},
			want: `sluice.dev/metrics[request-success-rate].maxDelta: required: compareTo: stable needs a maxDelta of 0 or more`,
		},
		"compareTo something else": {
			ann:  map[string]string{spec.AnnMetrics: "- name: request-success-rate\n  thresholdRange: {min: 99}\n  compareTo: primary\n  maxDelta: 1\n"},
			want: `sluice.dev/metrics[request-success-rate].compareTo: must be "stable", got "primary"`,
		},
		"maxDelta without compareTo": {
			ann:  map[string]string{spec.AnnMetrics: "- name: request-success-rate\n  thresholdRange: {min: 99}\n  maxDelta: 1\n"},
			want: `sluice.dev/metrics[request-success-rate].maxDelta: needs compareTo: stable, got "1"`,
		},
		"minRequests on a custom check": {
			ann:  map[string]string{spec.AnnMetrics: "- name: errors\n  query: up\n  thresholdRange: {max: 1}\n  minRequests: 10\n"},
			want: `sluice.dev/metrics[errors].minRequests: applies to the builtin checks only, got "10"`,
		},
		"query and templateRef": {
			ann:  map[string]string{spec.AnnMetrics: "- name: errors\n  query: up\n  templateRef: {name: t}\n  thresholdRange: {max: 1}\n"},
			want: `sluice.dev/metrics[errors].templateRef: give either query or templateRef, not both, got "t"`,
		},
		"custom metric without a query": {
			ann: map[string]string{spec.AnnMetrics: "- name: errors\n  thresholdRange: {max: 1}\n"},
			want: `sluice.dev/metrics[errors].query: required: a custom check needs a query or a templateRef ` +
				`(builtins are request-success-rate and request-duration)`,
		},
		"metric without any range": {
			ann:  map[string]string{spec.AnnMetrics: "- name: request-duration\n"},
			want: `sluice.dev/metrics[request-duration].thresholdRange: required: give min and/or max`,
		},
		"metric with an empty range checks nothing": {
			ann:  map[string]string{spec.AnnMetrics: "- name: request-duration\n  thresholdRange: {}\n"},
			want: `sluice.dev/metrics[request-duration].thresholdRange: required: give min and/or max`,
		},
		"metric ranges upside down, reported in a fixed order": {
			ann: map[string]string{spec.AnnMetrics: "- name: q\n  query: up\n" +
				"  thresholdRange: {min: 5, max: 1}\n  abortRange: {min: 9, max: 2}\n"},
			want: `sluice.dev/metrics[q].thresholdRange: min must not exceed max, got "[5, 1]"; ` +
				`sluice.dev/metrics[q].abortRange: min must not exceed max, got "[9, 2]"`,
		},
		"metric interval not positive": {
			ann:  map[string]string{spec.AnnMetrics: "- name: request-duration\n  thresholdRange: {max: 500}\n  interval: 0s\n"},
			want: `sluice.dev/metrics[request-duration].interval: must be a positive duration such as 1m, got "0s"`,
		},
		"metric inconclusive limit negative": {
			ann:  map[string]string{spec.AnnMetrics: "- name: request-duration\n  thresholdRange: {max: 500}\n  inconclusiveLimit: -1\n"},
			want: `sluice.dev/metrics[request-duration].inconclusiveLimit: must be 0 (the default, 10) or more, got "-1"`,
		},
		"analysis block not YAML": {
			ann:  map[string]string{spec.AnnAnalysis: "interval: [30s"},
			want: `sluice.dev/analysis: not a valid analysis block: yaml: line 1: did not find expected ',' or ']'`,
		},
		"analysis block with an unknown field": {
			ann:  map[string]string{spec.AnnAnalysis: "canaryReadyTreshold: 50"},
			want: `sluice.dev/analysis: not a valid analysis block: json: unknown field "canaryReadyTreshold"`,
		},
		"analysis block interval too short": {
			ann:  map[string]string{spec.AnnAnalysis: "interval: 1s"},
			want: `sluice.dev/analysis interval: must be at least 5s, got "1s"`,
		},
		"analysis block step weights not increasing": {
			ann:  map[string]string{spec.AnnAnalysis: "stepWeights: [5, 1]"},
			want: `sluice.dev/analysis stepWeights: weights must increase strictly, got "[5 1]"`,
		},
		"analysis block numbers out of range": {
			ann: map[string]string{spec.AnnAnalysis: "threshold: -3\nstepWeight: 0\nmaxWeight: 500\niterations: 0"},
			want: `sluice.dev/analysis threshold: must be 1..1000, got "-3"; ` +
				`sluice.dev/analysis stepWeight: must be 1..100, got "0"; ` +
				`sluice.dev/analysis maxWeight: must be 1..100, got "500"; ` +
				`sluice.dev/analysis iterations: must be 1..10000, got "0"`,
		},
		"analysis block step above its max": {
			ann:  map[string]string{spec.AnnAnalysis: "stepWeight: 60\nmaxWeight: 40"},
			want: `sluice.dev/analysis stepWeight: must not exceed sluice.dev/analysis maxWeight (40), got "60"`,
		},
		"analysis block metric errors name the block": {
			ann:  map[string]string{spec.AnnAnalysis: "metrics:\n- name: errors\n  thresholdRange: {max: 1}\n"},
			want: `sluice.dev/analysis metrics[errors].query: required: a custom check needs a query or a templateRef (builtins are request-success-rate and request-duration)`,
		},
		"analysis block webhooks and alerts are validated, naming the entry": {
			ann: map[string]string{spec.AnnAnalysis: "webhooks: [{}]\nalerts: [{}]\nmirror: true"},
			want: `sluice.dev/analysis webhooks[0].name: required: every webhook needs a name; ` +
				`sluice.dev/analysis webhooks[0].url: required: every webhook needs a url; ` +
				`sluice.dev/analysis alerts[0].name: required: every alert needs a name; ` +
				`sluice.dev/analysis alerts[0].providerRef.name: required: the AlertProvider to post to; ` +
				`sluice.dev/analysis mirror: the replicas router cannot do mirror releases (it can do canary, bluegreen), got "mirror"`,
		},
		"every problem is reported, in a fixed order": {
			ann: map[string]string{
				spec.AnnInterval:  "soon",
				spec.AnnThreshold: "many",
				spec.AnnMaxWeight: "150",
				spec.AnnStrategy:  "ab",
			},
			want: `sluice.dev/interval: must be a duration such as 30s or 1m, got "soon"; ` +
				`sluice.dev/threshold: must be 1..1000, got "many"; ` +
				`sluice.dev/max-weight: must be 1..100, got "150"; ` +
				`sluice.dev/strategy: the replicas router cannot do ab releases (it can do canary, bluegreen), got "ab"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, errs := parseWithin(t, tc.ann, tc.defaults)
			if len(errs) == 0 {
				t.Fatalf("Parse() = %+v, want errors", got)
			}
			if diff := cmp.Diff(spec.Config{}, got); diff != "" {
				t.Errorf("Parse() returned a config along with errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, spec.FormatErrors(errs)); diff != "" {
				t.Errorf("FormatErrors() mismatch (-want +got):\n%s", diff)
			}
			for _, e := range errs {
				if !strings.HasPrefix(e.Field, "sluice.dev/") {
					t.Errorf("error %q does not name a sluice.dev/ annotation", e.Error())
				}
			}
		})
	}
}

// withCatalog gives d the routers cmd/sluice registers (their descriptions live in the router
// packages, which import spec).
func withCatalog(d spec.Defaults) spec.Defaults {
	d.Routers = catalogtest.Catalog()
	return d
}

// parseWithin fails the test instead of hanging when Parse does not return (a step weight of 0
// once looped forever).
func parseWithin(t *testing.T, ann map[string]string, d spec.Defaults) (spec.Config, field.ErrorList) {
	t.Helper()
	type result struct {
		c    spec.Config
		errs field.ErrorList
	}
	done := make(chan result, 1)
	go func() {
		c, errs := spec.Parse(ann, withCatalog(d))
		done <- result{c, errs}
	}()
	select {
	case r := <-done:
		return r.c, r.errs
	case <-time.After(10 * time.Second):
		t.Fatalf("Parse(%v) did not return within 10s", ann)
		return spec.Config{}, nil
	}
}

// One huge annotation must not make a huge denial: ten lines at most, then a count, each value
// and line cut short.
func TestFormatErrorsBounded(t *testing.T) {
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, "- name: check-%d\n  query: up\n", i)
	}
	_, errs := spec.Parse(map[string]string{
		spec.AnnMetrics:   b.String(),
		spec.AnnMaxWeight: strings.Repeat("9", 100000),
	}, catalogtest.Defaults())
	if len(errs) < 20000 {
		t.Fatalf("Parse found %d errors, want one per check at least", len(errs))
	}
	got := spec.FormatErrors(errs)
	if len(got) > 5000 {
		t.Errorf("FormatErrors of %d errors is %d bytes, want under 5000", len(errs), len(got))
	}
	if want := fmt.Sprintf("and %d more error(s)", len(errs)-10); !strings.HasSuffix(got, want) {
		t.Errorf("FormatErrors does not end with %q: ...%s", want, got[max(0, len(got)-200):])
	}
	if !strings.Contains(got, `sluice.dev/max-weight: must be 1..100, got "9999`) || !strings.Contains(got, "… (100000 bytes)") {
		t.Errorf("the long value is not cut with its length: %s", got)
	}
}

func TestCheckControl(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		ok         bool
	}{
		{spec.AnnPromote, "0123456789", true},
		{spec.AnnPromote, "abcdef0123", true},
		{spec.AnnPromote, "true", false},
		{spec.AnnAbort, "", false},
		{spec.AnnPause, "ABCDEF0123", false},
		{spec.AnnRetry, "0123456789a", false},
		{spec.AnnRetry, "012345678", false},
	} {
		err := spec.CheckControl(tc.key, tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("CheckControl(%s, %q) = %v, want ok=%v", tc.key, tc.value, err, tc.ok)
		}
		if err != nil && !strings.Contains(spec.FormatErrors(field.ErrorList{err}), "kubectl sluice") {
			t.Errorf("CheckControl(%s, %q) does not say how to write it: %v", tc.key, tc.value, err)
		}
	}
}

func TestFormatErrorsEmpty(t *testing.T) {
	if got := spec.FormatErrors(nil); got != "" {
		t.Errorf("FormatErrors(nil) = %q, want empty", got)
	}
}

func TestRangeContains(t *testing.T) {
	tests := map[string]struct {
		r    *spec.Range
		v    float64
		want bool
	}{
		"nil range contains everything": {r: nil, v: -1e9, want: true},
		"min inclusive":                 {r: &spec.Range{Min: ptr(99.0)}, v: 99, want: true},
		"below min":                     {r: &spec.Range{Min: ptr(99.0)}, v: 98.9, want: false},
		"max inclusive":                 {r: &spec.Range{Max: ptr(500.0)}, v: 500, want: true},
		"above max":                     {r: &spec.Range{Max: ptr(500.0)}, v: 500.1, want: false},
		"inside both":                   {r: &spec.Range{Min: ptr(1.0), Max: ptr(2.0)}, v: 1.5, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.r.Contains(tc.v); got != tc.want {
				t.Errorf("%s.Contains(%v) = %v, want %v", tc.r, tc.v, got, tc.want)
			}
		})
	}
}

func TestRangeString(t *testing.T) {
	tests := map[string]struct {
		r    *spec.Range
		want string
	}{
		"nil":      {r: nil, want: "any"},
		"min only": {r: &spec.Range{Min: ptr(99.5)}, want: "[99.5, +inf]"},
		"max only": {r: &spec.Range{Max: ptr(500.0)}, want: "[-inf, 500]"},
		"both":     {r: &spec.Range{Min: ptr(1.0), Max: ptr(2.0)}, want: "[1, 2]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.r.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}
