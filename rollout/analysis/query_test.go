package analysis_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/analysis"
	"github.com/sluice-dev/sluice/rollout/spec"
)

func vars() analysis.Vars {
	return analysis.Vars{
		Namespace: "shop", Target: "web", Service: "web-svc", Canary: "web-canary", Stable: "web",
		Interval: 90 * time.Second, Variables: map[string]string{"region": "eu-west-1", "empty": ""},
	}
}

func TestRender(t *testing.T) {
	tests := map[string]struct {
		q       string
		v       analysis.Vars
		want    string
		wantErr string
	}{
		"every variable": {
			q:    `{{ namespace }}|{{ target }}|{{ service }}|{{ canary }}|{{ stable }}|{{ interval }}|{{ variables.region }}`,
			v:    vars(),
			want: `shop|web|web-svc|web-canary|web|90s|eu-west-1`,
		},
		"spacing inside the braces does not matter": {
			q: `{{namespace}} {{   canary   }}`, v: vars(), want: `shop web-canary`,
		},
		"a variable used twice": {
			q: `a{{ target }}b{{ target }}`, v: vars(), want: `awebbweb`,
		},
		"empty user variable is substituted": {
			q: `x{{ variables.empty }}y`, v: vars(), want: `xy`,
		},
		"no references": {
			q: `sum(up)`, v: vars(), want: `sum(up)`,
		},
		"PromQL braces are left alone": {
			q:    `sum(rate(http_requests_total{namespace="{{ namespace }}",code=~"5.."}[{{ interval }}]))`,
			v:    vars(),
			want: `sum(rate(http_requests_total{namespace="shop",code=~"5.."}[90s]))`,
		},
		"sub-second interval renders as 1s": {
			q: `{{ interval }}`, v: analysis.Vars{Interval: 200 * time.Millisecond}, want: `1s`,
		},
		"interval in whole seconds": {
			q: `{{ interval }}`, v: analysis.Vars{Interval: 2*time.Minute + 1500*time.Millisecond}, want: `121s`,
		},
		"unknown variable": {
			q: `{{ namespace }} {{ pod }}`, v: vars(), wantErr: `query uses unknown template variable(s) pod`,
		},
		"unknown user variable": {
			q: `{{ variables.zone }}`, v: vars(), wantErr: `query uses unknown template variable(s) variables.zone`,
		},
		"user variable without variables": {
			q: `{{ variables.region }}`, v: analysis.Vars{}, wantErr: `query uses unknown template variable(s) variables.region`,
		},
		"every unknown variable is named": {
			q: `{{ a }} {{ namespace }} {{ b.c }}`, v: vars(), wantErr: `query uses unknown template variable(s) a, b.c`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := analysis.Render(tc.q, tc.v)
			checkErr(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Render() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQueryFor(t *testing.T) {
	successRate := spec.Metric{Name: spec.CheckSuccessRate, ThresholdRange: &spec.Range{Min: ptr(99.0)}}
	duration := spec.Metric{Name: spec.CheckDuration, ThresholdRange: &spec.Range{Max: ptr(500.0)}}
	tests := map[string]struct {
		router   string
		m        spec.Metric
		interval time.Duration
		want     string
		wantErr  string
	}{
		"builtin success rate for the replicas router": {
			router: spec.RouterReplicas, m: successRate, interval: 30 * time.Second,
			want: `(sum(rate(http_requests_total{namespace="shop",pod=~"web-canary-[0-9a-zA-Z]+-[0-9a-zA-Z]+",code!~"5.."}[30s])) or vector(0))` +
				` / sum(rate(http_requests_total{namespace="shop",pod=~"web-canary-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[30s])) * 100`,
		},
		"builtin duration for the replicas router": {
			router: spec.RouterReplicas, m: duration, interval: time.Minute,
			want: `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="shop",pod=~"web-canary-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[60s]))) * 1000`,
		},
		"check interval overrides the release interval": {
			router: spec.RouterReplicas, m: spec.Metric{Name: "q", Query: "x[{{ interval }}]", Interval: "2m"}, interval: 30 * time.Second,
			want: `x[120s]`,
		},
		"custom query renders variables": {
			router: spec.RouterReplicas,
			m:      spec.Metric{Name: "errors", Query: `sum(errors{ns="{{ namespace }}",svc="{{ service }}",region="{{ variables.region }}"})`},
			want:   `sum(errors{ns="shop",svc="web-svc",region="eu-west-1"})`,
		},
		"custom query needs no builtin for its router": {
			router: spec.RouterIstio, m: spec.Metric{Name: "q", Query: "up"}, want: "up",
		},
		"unknown router": {
			router: "haproxy", m: duration, interval: time.Minute,
			wantErr: `check request-duration: no builtin query for router "haproxy"`,
		},
		"unknown builtin": {
			router: spec.RouterReplicas, m: spec.Metric{Name: "request-count"}, interval: time.Minute,
			wantErr: `check request-count: no builtin query for router "replicas"`,
		},
		"bad check interval": {
			router: spec.RouterReplicas, m: spec.Metric{Name: "q", Query: "x", Interval: "soon"},
			wantErr: `check q: interval "soon": time: invalid duration "soon"`,
		},
		"unknown variable in a custom query": {
			router: spec.RouterReplicas, m: spec.Metric{Name: "q", Query: "{{ cluster }}"},
			wantErr: `query uses unknown template variable(s) cluster`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := vars()
			v.Interval = 0 // QueryFor sets it
			got, err := analysis.QueryFor(catalogtest.Router(tc.router), tc.m, tc.interval, v)
			checkErr(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("QueryFor() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want %q", want)
	case want != "" && err.Error() != want:
		t.Fatalf("error = %q, want %q", err.Error(), want)
	}
}
