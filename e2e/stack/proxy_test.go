package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/rollout/spec"
)

func TestParseStateWrite(t *testing.T) {
	from := spec.State{Phase: spec.PhaseProgressing, Step: 0, Weight: 20, CanaryReady: true}
	to := spec.State{Phase: spec.PhaseProgressing, Step: 1, Weight: 50, CanaryReady: true}
	patch := func(ops ...map[string]any) []byte {
		b, err := json.Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	state := "/metadata/annotations/sluice.dev~1state"
	tests := map[string]struct {
		body     []byte
		ok       bool
		from, to spec.State
	}{
		"a step": {
			body: patch(map[string]any{"op": "test", "path": state, "value": from.Encode()},
				map[string]any{"op": "add", "path": state, "value": to.Encode()},
				map[string]any{"op": "add", "path": "/spec/paused", "value": true}),
			ok: true, from: from, to: to,
		},
		"the first state (tests the resourceVersion)": {
			body: patch(map[string]any{"op": "test", "path": "/metadata/resourceVersion", "value": "12"},
				map[string]any{"op": "add", "path": state, "value": to.Encode()}),
			ok: true, from: spec.State{Phase: spec.PhaseIdle}, to: to,
		},
		"only spec.paused": {
			body: patch(map[string]any{"op": "test", "path": state, "value": from.Encode()},
				map[string]any{"op": "add", "path": "/spec/paused", "value": false}),
		},
		"another annotation": {
			body: patch(map[string]any{"op": "add", "path": "/metadata/annotations/sluice.dev~1promote", "value": "x"}),
		},
		"a merge patch": {body: []byte(`{"metadata":{"annotations":{"sluice.dev/state":"{}"}}}`)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sw, ok := ParseStateWrite(tc.body)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && (sw.From.Encode() != tc.from.Encode() || sw.To.Encode() != tc.to.Encode()) {
				t.Errorf("got %s -> %s, want %s -> %s", sw.From.Encode(), sw.To.Encode(), tc.from.Encode(), tc.to.Encode())
			}
		})
	}
}

// The Prometheus proxy answers each namespace's queries in its own mode, through the client
// sluice uses. The upstream here stands in for Prometheus: the proxy's pass-through is what is
// tested, not Prometheus.
func TestPrometheusProxyModes(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.URL.Path != "/api/v1/query" || !strings.Contains(r.Form.Get("query"), "namespace=") {
			http.Error(w, "unexpected "+r.URL.Path+" "+r.Form.Get("query"), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"99.5"]}]}}`, time.Now().Unix())
	}))
	defer upstream.Close()
	p, err := StartPrometheusProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	if err := p.SetUpstream(upstream.URL); err != nil {
		t.Fatal(err)
	}
	p.SlowBy = 3 * time.Second
	c, err := promapi.NewClient(promapi.Config{Address: p.URL})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(c)
	query := func(ns string) (float64, error) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		v, _, _, err := api.Query(ctx, `sum(rate(http_requests_total{namespace="`+ns+`"}[5s]))`, time.Now())
		if err != nil {
			return 0, err
		}
		vec, ok := v.(model.Vector)
		if !ok || len(vec) != 1 {
			return 0, fmt.Errorf("result %v", v)
		}
		return float64(vec[0].Value), nil
	}

	p.SetMode("bad", PromError)
	p.SetMode("nan", PromNaN)
	p.SetMode("slow", PromSlow)
	if v, err := query("good"); err != nil || v != 99.5 {
		t.Errorf("pass: %v, %v", v, err)
	}
	if _, err := query("bad"); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("5xx: err %v", err)
	}
	if v, err := query("nan"); err != nil || !math.IsNaN(v) {
		t.Errorf("NaN: %v, %v", v, err)
	}
	if _, err := query("slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow: err %v, want the client's deadline", err)
	}
	p.SetMode("bad", PromPass)
	if v, err := query("bad"); err != nil || v != 99.5 {
		t.Errorf("back to pass: %v, %v", v, err)
	}
	for ns, m := range map[string]PromMode{"good": PromPass, "bad": PromError, "nan": PromNaN, "slow": PromSlow} {
		if n := p.Answered(ns, m); n != 1 {
			t.Errorf("Answered(%s, %s) = %d, want 1", ns, m, n)
		}
	}
}
