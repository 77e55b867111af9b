package meshmetrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/prometheus"
	"github.com/sluice-dev/sluice/rollout"
	"github.com/sluice-dev/sluice/rollout/analysis"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// window is the checks' query window ({{ interval }}).
const window = 10 * time.Second

// scenario is one router's data plane serving the apps of one namespace.
type scenario struct {
	name, router, namespace string
	targets                 func(namespace string, apps []app) []target
	// bucketsMS is the latency histogram's layout in ms.
	bucketsMS []float64
	// noData: the data plane's metrics cannot tell the canary from stable, so every builtin
	// finds no series.
	noData bool
}

func msBuckets(seconds []float64) []float64 {
	ms := make([]float64, len(seconds))
	for i, s := range seconds {
		ms[i] = s * 1000
	}
	return ms
}

// apps: web's canary is healthy, api's fails, cart's answers nothing but 5xx; every stable is
// healthy (and faster than any canary, so a stable reading is never mistaken for a canary one).
var apps = []app{
	{name: "web", service: "web-svc", canary: healthyCanary, stable: stableTraffic},
	{name: "api", service: "api-svc", canary: failingCanary, stable: stableTraffic},
	{name: "cart", service: "cart-svc", canary: brokenCanary, stable: stableTraffic},
}

var scenarios = []scenario{
	{name: "replicas", router: spec.RouterReplicas, namespace: "shop-replicas", targets: replicasTargets, bucketsMS: msBuckets(secondsBuckets)},
	{name: "istio", router: spec.RouterIstio, namespace: "shop-istio", targets: istioTargets("loadtester", "test"), bucketsMS: envoyBuckets},
	{name: "linkerd", router: spec.RouterLinkerd, namespace: "shop-linkerd", targets: linkerdTargets, bucketsMS: linkerdBuckets},
	{name: "nginx", router: spec.RouterNginx, namespace: "shop-nginx", targets: nginxTargets, bucketsMS: msBuckets(secondsBuckets)},
	{name: "contour", router: spec.RouterContour, namespace: "shop-contour", targets: contourTargets, bucketsMS: envoyBuckets},
	{name: "appmesh", router: spec.RouterAppMesh, namespace: "shop-appmesh", targets: appMeshTargets, bucketsMS: envoyBuckets},
	{name: "gatewayapi/contour", router: spec.RouterGatewayAPI, namespace: "shop-gw-contour", targets: contourTargets, bucketsMS: envoyBuckets},
	{name: "gatewayapi/istio", router: spec.RouterGatewayAPI, namespace: "shop-gw-istio", targets: istioTargets("gateway-istio", "shop-gw-istio"), bucketsMS: envoyBuckets},
	{name: "gatewayapi/envoy-gateway", router: spec.RouterGatewayAPI, namespace: "shop-gw-eg", targets: envoyGatewayTargets, noData: true},
}

func TestBuiltinQueriesAgainstPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Prometheus binary; skipped with -short")
	}
	start := time.Now()
	bins, err := cluster.EnsureBinaries(t.Context(), cluster.Options{Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}

	x := &exporter{start: time.Now()}
	for _, sc := range scenarios {
		x.targets = append(x.targets, sc.targets(sc.namespace, apps)...)
	}
	srv := httptest.NewServer(x) // on 127.0.0.1
	defer srv.Close()
	base := startPrometheus(t, bins.Prometheus, scrapeConfig(strings.TrimPrefix(srv.URL, "http://"), x.targets))
	t.Logf("[%4.1fs] prometheus ready at %s, scraping %d targets every 1s", time.Since(start).Seconds(), base, len(x.targets))
	prom, err := prometheus.New(prometheus.Options{Address: base})
	if err != nil {
		t.Fatal(err)
	}

	// Every target up and scraped three times: every series then has a rate.
	if err := poll(t.Context(), 30*time.Second, func(ctx context.Context) error {
		up, err := prom.Query(ctx, "count(up == 1)")
		if err != nil {
			return fmt.Errorf("targets up: %w", err)
		}
		if int(up) != len(x.targets) {
			return fmt.Errorf("%v of %d targets up", up, len(x.targets))
		}
		scrapes, err := prom.Query(ctx, "min(count_over_time(up[1m]))")
		if err != nil {
			return fmt.Errorf("scrapes of the least scraped target: %w", err)
		}
		if scrapes < 3 {
			return fmt.Errorf("%v scrapes of the least scraped target", scrapes)
		}
		return nil
	}); err != nil {
		logTargets(t, base)
		t.Fatal(err)
	}
	t.Logf("[%4.1fs] every target scraped 3 times", time.Since(start).Seconds())
	t.Run("behind an authenticating TLS proxy", func(t *testing.T) { checkAuthProxy(t, base, len(x.targets)) })
	t.Run("malformed query", func(t *testing.T) {
		// Prometheus's own words reach the check's reason; it is neither no data nor unreachable.
		_, err := prom.Query(t.Context(), "sum(rate(http_requests_total[1m])")
		if err == nil || !strings.Contains(err.Error(), "parse error") || errors.Is(err, metrics.ErrNoData) || errors.Is(err, metrics.ErrUnreachable) {
			t.Errorf("Query(malformed) error = %v, want Prometheus's parse error", err)
		}
	})

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for _, a := range apps {
				t.Run(a.name, func(t *testing.T) {
					if sc.noData {
						checkNoData(t, prom, sc, a)
						return
					}
					checkCanary(t, prom, sc, a)
					checkCompareToStable(t, prom, sc, a)
				})
			}
		})
	}
	x.mu.Lock()
	t.Logf("[%4.1fs] done after %d scrapes", time.Since(start).Seconds(), x.scrapes)
	x.mu.Unlock()
}

// vars are the template variables the analyzer gives a release of a (rollout.Analyzer.Run).
func vars(sc scenario, a app) analysis.Vars {
	return analysis.Vars{Namespace: sc.namespace, Target: a.name, Service: a.service, Canary: spec.CanaryName(a.name), Stable: a.name}
}

// checkCanary runs the builtin queries for a's canary and compares them with the traffic the
// exporter made.
func checkCanary(t *testing.T, prom metrics.Provider, sc scenario, a app) {
	t.Helper()
	v := vars(sc, a)

	q := render(t, sc.router, spec.CheckSuccessRate, v)
	rate := query(t, prom, q)
	if math.Abs(rate-a.canary.successRate()) > 0.01 {
		t.Errorf("success rate = %v, want %v\nquery: %s", rate, a.canary.successRate(), q)
	}

	q = render(t, sc.router, spec.CheckDuration, v)
	want, lo, hi := histogramQuantile(0.99, sc.bucketsMS, a.canary)
	p99 := query(t, prom, q)
	if p99 <= lo || p99 > hi || math.Abs(p99-want) > want*1e-3 {
		t.Errorf("p99 = %v ms, want %v ms (in the bucket (%v, %v])\nquery: %s", p99, want, lo, hi, q)
	}

	q, err := analysis.RequestCountQuery(catalogtest.Router(sc.router), spec.Metric{Name: spec.CheckSuccessRate}, window, v)
	if err != nil {
		t.Fatal(err)
	}
	n := query(t, prom, q)
	if n <= 0 || n > a.canary.rps*window.Seconds()*1.1 {
		t.Errorf("requests = %v, want 1..%v\nquery: %s", n, a.canary.rps*window.Seconds(), q)
	}
	t.Logf("canary: success rate %.3f%%, p99 %.3f ms in (%v, %v], %.0f requests in %s", rate, p99, lo, hi, n, window)
}

// checkCompareToStable runs both builtins with compareTo: stable and minRequests through the
// analyzer, which renders the stable side itself, and checks the stable side read the stable
// pods' series while the canary's were there too.
func checkCompareToStable(t *testing.T, prom metrics.Provider, sc scenario, a app) {
	t.Helper()
	f := func(v float64) *float64 { return &v }
	plan := &spec.Config{
		Router: sc.router, Service: a.service, Interval: metav1.Duration{Duration: window},
		Metrics: []spec.Metric{
			{Name: spec.CheckSuccessRate, ThresholdRange: &spec.Range{Min: f(50)}, CompareTo: spec.CompareStable, MaxDelta: f(1), MinRequests: 10},
			{Name: spec.CheckDuration, ThresholdRange: &spec.Range{Max: f(5000)}, CompareTo: spec.CompareStable, MaxDelta: f(100)},
		},
	}
	rec := &recorder{Provider: prom, values: map[string]float64{}}
	analyzer := rollout.NewAnalyzer(rec, 4)
	analyzer.Routers = catalogtest.Catalog()
	results := analyzer.Run(t.Context(), sc.namespace, a.name, plan)

	// The stable side's queries are the ones the test does not render itself.
	v := vars(sc, a)
	canaryQueries := []string{render(t, sc.router, spec.CheckSuccessRate, v), render(t, sc.router, spec.CheckDuration, v)}
	count, err := analysis.RequestCountQuery(catalogtest.Router(sc.router), plan.Metrics[0], window, v)
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var stable []float64
	for q, val := range rec.values {
		if q != count && !slices.Contains(canaryQueries, q) {
			stable = append(stable, val)
		}
	}
	slices.Sort(stable)
	p99, _, _ := histogramQuantile(0.99, sc.bucketsMS, a.stable)
	if len(stable) != 2 || math.Abs(stable[0]-p99) > p99*1e-3 || math.Abs(stable[1]-a.stable.successRate()) > 0.01 {
		t.Errorf("stable-side readings = %v, want [%v %v]; queries run: %v", stable, p99, a.stable.successRate(), rec.queries())
	} else {
		t.Logf("stable (compareTo): success rate %.3f%%, p99 %.3f ms", stable[1], stable[0])
	}

	wantVerdict := spec.VerdictPass // web: within maxDelta of stable
	if a.canary.successRate() < a.stable.successRate()-1 {
		wantVerdict = spec.VerdictFail // api: far worse than stable on both
	}
	for _, r := range results {
		if r.Verdict != wantVerdict {
			t.Errorf("check %s: %s (%s), want %s", r.Name, r.Verdict, r.Reason, wantVerdict)
		}
	}
}

// checkNoData: a data plane that cannot tell the canary from stable gives the builtins no series
// (inconclusive), never a number.
func checkNoData(t *testing.T, prom metrics.Provider, sc scenario, a app) {
	t.Helper()
	v := vars(sc, a)
	count, err := analysis.RequestCountQuery(catalogtest.Router(sc.router), spec.Metric{Name: spec.CheckSuccessRate}, window, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{render(t, sc.router, spec.CheckSuccessRate, v), render(t, sc.router, spec.CheckDuration, v), count} {
		if got, err := prom.Query(t.Context(), q); !errors.Is(err, metrics.ErrNoData) {
			t.Errorf("query returned %v, %v; want no data\nquery: %s", got, err, q)
		}
	}
}

func render(t *testing.T, router, check string, v analysis.Vars) string {
	t.Helper()
	q, err := analysis.QueryFor(catalogtest.Router(router), spec.Metric{Name: check}, window, v)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func query(t *testing.T, prom metrics.Provider, q string) float64 {
	t.Helper()
	v, err := prom.Query(t.Context(), q)
	if err != nil {
		t.Fatalf("%v\nquery: %s", err, q)
	}
	return v
}

// histogramQuantile is what Prometheus's histogram_quantile returns for p's requests counted in
// buckets with the upper bounds boundsMS: linear interpolation within the bucket (lo, hi] where
// the q-th share of the requests falls.
func histogramQuantile(q float64, boundsMS []float64, p profile) (v, lo, hi float64) {
	prevBound, prevShare := 0.0, 0.0
	for _, b := range boundsMS {
		if share := p.at(b); share >= q {
			return prevBound + (b-prevBound)*(q-prevShare)/(share-prevShare), prevBound, b
		}
		prevBound, prevShare = b, p.at(b)
	}
	return prevBound, prevBound, math.Inf(1)
}

// recorder is a metrics.Provider that remembers every query it ran and its reading.
type recorder struct {
	metrics.Provider
	mu     sync.Mutex
	values map[string]float64
}

func (r *recorder) Query(ctx context.Context, q string) (float64, error) {
	v, err := r.Provider.Query(ctx, q)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		v = math.NaN()
	}
	r.values[q] = v
	return v, err
}

// queries lists the queries run with their readings; r.mu is held.
func (r *recorder) queries() string {
	var b strings.Builder
	for q, v := range r.values {
		fmt.Fprintf(&b, "\n  %v  %s", v, q)
	}
	return b.String()
}

// logTargets logs Prometheus's view of its targets (last scrape errors), for a failed start.
func logTargets(t *testing.T, base string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/targets?state=active", nil)
	if err != nil {
		t.Logf("targets: %v", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("targets: %v", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8000))
	t.Logf("targets: %s", body)
}

// testLog sends cluster's progress lines (binary builds) to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// checkAuthProxy puts the real Prometheus behind what usually fronts a shared one (an auth
// proxy or a multi-tenant gateway such as Mimir's): TLS with a certificate the client cannot
// verify, a bearer token or basic auth, and a tenant header. The provider must send each and
// read the real answer through it.
func checkAuthProxy(t *testing.T, base string, targets int) {
	upstream, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(upstream)
	proxy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, basic := r.BasicAuth()
		authorized := r.Header.Get("Authorization") == "Bearer s3cret" || basic && user == "sluice" && pass == "pw"
		if !authorized || r.Header.Get("X-Scope-OrgID") != "shop" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	for name, tc := range map[string]struct {
		o       prometheus.Options
		wantErr string
	}{
		"bearer token":                   {o: prometheus.Options{BearerToken: "s3cret", Headers: map[string]string{"X-Scope-OrgID": "shop"}, InsecureSkipVerify: true}},
		"basic auth":                     {o: prometheus.Options{Username: "sluice", Password: "pw", Headers: map[string]string{"X-Scope-OrgID": "shop"}, InsecureSkipVerify: true}},
		"wrong token":                    {o: prometheus.Options{BearerToken: "guess", Headers: map[string]string{"X-Scope-OrgID": "shop"}, InsecureSkipVerify: true}, wantErr: "401"},
		"no tenant header":               {o: prometheus.Options{BearerToken: "s3cret", InsecureSkipVerify: true}, wantErr: "401"},
		"certificate checked by default": {o: prometheus.Options{BearerToken: "s3cret", Headers: map[string]string{"X-Scope-OrgID": "shop"}}, wantErr: "certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.o.Address = proxy.URL
			p, err := prometheus.New(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			v, err := p.Query(t.Context(), "count(up == 1)")
			switch {
			case tc.wantErr == "" && (err != nil || int(v) != targets):
				t.Errorf("Query = %v, %v; want %d targets up", v, err, targets)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Query error = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}
