package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Issue 10 observability and acceptance 6: sluice's own /metrics, scraped during a release,
// carries every SPEC §7 series with its labels; every panel query of the Grafana dashboard
// returns data from the real Prometheus scraping sluice; the series of a deleted Deployment
// disappear.
func TestObservability(t *testing.T) {
	t.Parallel()
	checks := "- name: request-success-rate\n  thresholdRange: {min: 90}\n  compareTo: stable\n  maxDelta: 5\n" +
		"- name: request-duration\n  thresholdRange: {max: 500}\n"
	a := newApp(t, "obs", fastAnnotations(spec.AnnStepWeights, "20,40", spec.AnnMetrics, checks))
	a.deploy("demo:v1")
	a.apply("demo:v2")
	a.waitPhase(2*time.Minute, spec.PhaseSucceeded)

	// A second release, paused in flight once analysis has read both sides.
	a.apply("demo:v3")
	a.waitFor(2*time.Minute, "an analysis run of the second release", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return st.Phase == spec.PhaseProgressing && st.Weight >= 20 && len(st.Checks) == 2 && st.Checks[0].Value != nil,
			fmt.Sprintf("%s weight %d checks %s", st.Phase, st.Weight, mustJSON(st.Checks))
	})
	a.plugin("pause", a.name)
	st := a.waitPhase(time.Minute, spec.PhasePaused)

	// sluice's own /metrics.
	fams := scrape(t)
	self := map[string]string{"namespace": a.ns, "name": a.name}
	phases := []spec.Phase{spec.PhaseIdle, spec.PhaseProgressing, spec.PhaseWaiting, spec.PhasePaused,
		spec.PhasePromoting, spec.PhaseSucceeded, spec.PhaseRollingBack, spec.PhaseFailed}
	for _, p := range phases {
		want := 0.0
		if p == spec.PhasePaused {
			want = 1
		}
		wantSeries(t, fams, "sluice_release_phase", model.MetricTypeGauge, []string{"name", "namespace", "phase"},
			with(self, "phase", string(p)), func(v float64) bool { return v == want }, fmt.Sprint(want))
	}
	wantSeries(t, fams, "sluice_release_weight", model.MetricTypeGauge, []string{"name", "namespace"}, self,
		func(v float64) bool { return v == float64(st.Weight) }, fmt.Sprintf("the state's weight %d", st.Weight))
	for _, c := range st.Checks {
		if c.Value == nil {
			continue
		}
		want := *c.Value
		wantSeries(t, fams, "sluice_analysis_value", model.MetricTypeGauge, []string{"check", "name", "namespace"}, with(self, "check", c.Name),
			func(v float64) bool { return math.Abs(v-want) < 1e-9 }, fmt.Sprintf("the state's last reading %g", want))
	}
	wantSeries(t, fams, "sluice_analysis_stable_value", model.MetricTypeGauge, []string{"check", "name", "namespace"},
		with(self, "check", "request-success-rate"), func(v float64) bool { return v > 0 && v <= 100 }, "a success rate in percent")
	wantSeries(t, fams, "sluice_analysis_threshold", model.MetricTypeGauge, []string{"bound", "check", "name", "namespace"},
		with(with(self, "check", "request-success-rate"), "bound", "min"), func(v float64) bool { return v == 90 }, "90")
	wantSeries(t, fams, "sluice_analysis_threshold", model.MetricTypeGauge, []string{"bound", "check", "name", "namespace"},
		with(with(self, "check", "request-duration"), "bound", "max"), func(v float64) bool { return v == 500 }, "500")
	wantSeries(t, fams, "sluice_release_unanalysed", model.MetricTypeGauge, []string{"name", "namespace"}, self,
		func(v float64) bool { return v == 0 }, "0 (every template went through the hold)")
	for _, control := range spec.ControlAnnotations {
		for _, metric := range []string{"sluice_control_discarded_total", "sluice_control_stale_total"} {
			wantSeries(t, fams, metric, model.MetricTypeCounter, []string{"annotation"}, map[string]string{"annotation": control},
				func(v float64) bool { return v >= 0 }, "a count")
		}
	}
	wantSeries(t, fams, "sluice_analysis_check_total", model.MetricTypeCounter, []string{"result"}, map[string]string{"result": "pass"},
		func(v float64) bool { return v >= 4 }, "at least the 4 passing readings of the first release")
	wantSeries(t, fams, "sluice_release_duration_seconds", model.MetricTypeHistogram, []string{"phase"}, map[string]string{"phase": "Succeeded"},
		func(n float64) bool { return n >= 1 }, "the first release")
	wantSeries(t, fams, "sluice_admission_decisions_total", model.MetricTypeCounter, []string{"decision"}, map[string]string{"decision": "held"},
		func(v float64) bool { return v >= 2 }, "the two held releases")
	wantSeries(t, fams, "sluice_admission_duration_seconds", model.MetricTypeHistogram, nil, map[string]string{},
		func(n float64) bool { return n >= 2 }, "the admission requests so far")
	wantSeries(t, fams, "sluice_analysis_query_duration_seconds", model.MetricTypeHistogram, nil, map[string]string{},
		func(n float64) bool { return n >= 1 }, "the analysis queries so far")
	// Reconcile errors come from controller-runtime's own metrics.
	wantSeries(t, fams, "controller_runtime_reconcile_errors_total", model.MetricTypeCounter, []string{"controller"},
		map[string]string{"controller": "rollout"}, func(v float64) bool { return v >= 0 }, "a count")
	wantSeries(t, fams, "controller_runtime_reconcile_total", model.MetricTypeCounter, []string{"controller", "result"},
		map[string]string{"controller": "rollout", "result": "success"}, func(v float64) bool { return v >= 1 }, "the release's steps")

	// Every panel query of the dashboard, and every variable, against the real Prometheus
	// scraping sluice (job stack.SluiceJob), while the release is in flight.
	dash := readDashboard(t)
	vars := map[string]string{
		"job": stack.SluiceJob, "namespace": a.ns, "deployment": a.name,
		"__rate_interval": "2m", "__interval": "15s", "__range": "15m",
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		want := vars[v.Name]
		values := labelValues(t, substitute(t, v.Definition, vars))
		if !slices.Contains(values, want) {
			t.Errorf("variable %s: %s gives %q, want %q among them", v.Name, v.Definition, values, want)
		}
	}
	queries := 0
	for _, p := range dash.panels() {
		for _, tg := range p.Targets {
			expr := substitute(t, tg.Expr, vars)
			got := pollQuery(t, expr, time.Minute)
			queries++
			t.Logf("panel %q %s: %s", p.Title, tg.RefID, got)
		}
	}
	if queries < 10 {
		t.Errorf("only %d panel queries in the dashboard", queries)
	}

	a.plugin("resume", a.name)
	a.waitPhase(2*time.Minute, spec.PhaseSucceeded)

	// Deleting the Deployment deletes its series.
	if err := env.Client.AppsV1().Deployments(a.ns).Delete(t.Context(), a.name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		left := seriesOf(scrape(t), self)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("series of the deleted Deployment still served after a minute: %q", left)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// scrape reads sluice's /metrics.
func scrape(t *testing.T) map[string]*familyOf {
	t.Helper()
	body := httpGet(t, env.MetricsURL)
	p := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v", env.MetricsURL, err)
	}
	out := map[string]*familyOf{}
	for name, mf := range parsed {
		f := &familyOf{typ: strings.ToLower(mf.GetType().String())}
		for _, m := range mf.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Histogram != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			f.samples = append(f.samples, s)
		}
		out[name] = f
	}
	return out
}

type familyOf struct {
	typ     string
	samples []sample
}

type sample struct {
	labels map[string]string
	value  float64
}

// wantSeries checks that metric is of type typ, that its series carry exactly the label names
// labels, and that the series with the label values match has a value (a histogram: its count)
// for which ok holds.
func wantSeries(t *testing.T, fams map[string]*familyOf, metric string, typ model.MetricType, labels []string, match map[string]string, ok func(float64) bool, want string) {
	t.Helper()
	f := fams[metric]
	if f == nil {
		t.Errorf("/metrics has no %s", metric)
		return
	}
	if f.typ != strings.ToLower(string(typ)) {
		t.Errorf("%s is a %s, want a %s", metric, f.typ, typ)
	}
	found := false
	for _, s := range f.samples {
		names := make([]string, 0, len(s.labels))
		for k := range s.labels {
			names = append(names, k)
		}
		slices.Sort(names)
		if !slices.Equal(names, labels) { // nil and empty are equal
			t.Errorf("%s%v: labels %q, want %q", metric, s.labels, names, labels)
			return
		}
		if matches(s.labels, match) {
			found = true
			if !ok(s.value) {
				t.Errorf("%s%v = %g, want %s", metric, s.labels, s.value, want)
			}
		}
	}
	if !found {
		t.Errorf("/metrics has no %s%v", metric, match)
	}
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// seriesOf lists the series that carry the label values of match.
func seriesOf(fams map[string]*familyOf, match map[string]string) []string {
	var out []string
	for name, f := range fams {
		for _, s := range f.samples {
			if matches(s.labels, match) {
				out = append(out, fmt.Sprintf("%s%v", name, s.labels))
			}
		}
	}
	slices.Sort(out)
	return out
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string         `json:"title"`
	Type       string         `json:"type"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// panels lists the panels, those in collapsed rows too, without the rows.
func (d dashboard) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// readDashboard parses deploy/dashboards/sluice.json and checks that every query reads from the
// datasource variable.
func readDashboard(t *testing.T) dashboard {
	t.Helper()
	repo, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(repo, "deploy", "dashboards", "sluice.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("deploy/dashboards/sluice.json: %v", err)
	}
	hasVar := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			hasVar = true
		}
	}
	if !hasVar {
		t.Error("the dashboard has no datasource variable of type prometheus")
	}
	fromVar := func(ds *datasourceRef) bool { return ds != nil && ds.Type == "prometheus" && ds.UID == "${datasource}" }
	for _, p := range d.panels() {
		if !fromVar(p.Datasource) || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d targets; want ${datasource} and a query", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if !fromVar(tg.Datasource) || tg.Expr == "" {
				t.Errorf("panel %q target %s: datasource %+v, expr %q", p.Title, tg.RefID, tg.Datasource, tg.Expr)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && !fromVar(v.Datasource) {
			t.Errorf("variable %s: datasource %+v, want ${datasource}", v.Name, v.Datasource)
		}
	}
	return d
}

var varRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// substitute replaces dashboard variables ($name, ${name}, [[name]]) as Grafana would with one
// value each; an unknown variable fails the test.
func substitute(t *testing.T, expr string, vars map[string]string) string {
	t.Helper()
	return varRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		v, ok := vars[name]
		if !ok {
			t.Errorf("unknown dashboard variable %s in %s", ref, expr)
		}
		return v
	})
}

var labelValuesCall = regexp.MustCompile(`^label_values\((?:(.*),\s*)?(\w+)\)$`)

// labelValues answers a Grafana label_values(selector, label) variable query from Prometheus.
func labelValues(t *testing.T, def string) []string {
	t.Helper()
	m := labelValuesCall.FindStringSubmatch(strings.TrimSpace(def))
	if m == nil {
		t.Fatalf("variable query %q is not label_values(selector, label)", def)
	}
	q := url.Values{}
	if m[1] != "" {
		q.Set("match[]", m[1])
	}
	var resp struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if err := json.Unmarshal([]byte(httpGet(t, env.PrometheusURL+"/api/v1/label/"+m[2]+"/values?"+q.Encode())), &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) > 0 || time.Now().After(deadline) {
			return resp.Data
		}
		time.Sleep(time.Second)
	}
}

// pollQuery runs an instant query until it returns at least one finite sample, and describes
// them.
func pollQuery(t *testing.T, expr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		var resp struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				ResultType string `json:"resultType"`
				Result     []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		body := httpGet(t, env.PrometheusURL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode())
		if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Status != "success" {
			t.Fatalf("query %s: %v %s", expr, err, body)
		}
		var finite []string
		for _, r := range resp.Data.Result {
			s, _ := r.Value[1].(string)
			if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
				finite = append(finite, fmt.Sprintf("%v=%s", r.Metric, s))
			}
		}
		if len(finite) > 0 {
			return strings.Join(finite, " ")
		}
		last = fmt.Sprintf("%d series, none finite: %s", len(resp.Data.Result), body)
		if time.Now().After(deadline) {
			t.Errorf("query %s returned no data within %s (last: %s)", expr, timeout, last)
			return ""
		}
		time.Sleep(time.Second)
	}
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v %s", u, resp.Status, err, b)
	}
	return string(b)
}
