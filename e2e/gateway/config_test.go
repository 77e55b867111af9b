package gateway

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// backend builds an AppliedBackend with n endpoints.
func backend(service string, weight int32, n int) AppliedBackend {
	b := AppliedBackend{Service: service, Port: 80, Weight: weight}
	for i := range n {
		b.Endpoints = append(b.Endpoints, Endpoint{Pod: fmt.Sprintf("%s-%d", service, i), Addr: fmt.Sprintf("127.5.0.%d:8080", i+1)})
	}
	return b
}

// upstreamWeights lists the upstream weights of each backend: endpoints, then 503 (as "503:w").
func upstreamWeights(backends []AppliedBackend) [][]string {
	var out [][]string
	for _, b := range backends {
		ws := []string{}
		for _, ep := range b.Endpoints {
			ws = append(ws, fmt.Sprint(ep.Weight))
		}
		if b.Unavailable > 0 {
			ws = append(ws, fmt.Sprintf("503:%d", b.Unavailable))
		}
		out = append(out, ws)
	}
	return out
}

func TestSpreadWeights(t *testing.T) {
	tests := map[string]struct {
		backends []AppliedBackend
		want     [][]string
	}{
		"90/10 over 2 and 2 pods": {
			backends: []AppliedBackend{backend("stable", 90, 2), backend("canary", 10, 2)},
			want:     [][]string{{"9", "9"}, {"1", "1"}},
		},
		"50/50 over 3 and 2 pods: each pod gets its backend's weight divided by its pods": {
			backends: []AppliedBackend{backend("stable", 50, 3), backend("canary", 50, 2)},
			want:     [][]string{{"2", "2", "2"}, {"3", "3"}},
		},
		"weight 0 gets no upstream": {
			backends: []AppliedBackend{backend("stable", 0, 3), backend("canary", 100, 2)},
			want:     [][]string{{"0", "0", "0"}, {"1", "1"}},
		},
		"a weighted backend without endpoints keeps its share as 503": {
			backends: []AppliedBackend{backend("stable", 80, 3), backend("canary", 20, 0)},
			want:     [][]string{{"4", "4", "4"}, {"503:3"}},
		},
		"all weights 0": {
			backends: []AppliedBackend{backend("stable", 0, 1), backend("canary", 0, 1)},
			want:     [][]string{{"0"}, {"0"}},
		},
		"default weight 1 on one backend": {
			backends: []AppliedBackend{backend("web", 1, 3)},
			want:     [][]string{{"1", "1", "1"}},
		},
		"exact ratios beyond 1000 in total are rounded to per-mille shares": {
			backends: []AppliedBackend{backend("stable", 999_999, 7), backend("canary", 1, 11)},
			want: [][]string{
				{"143", "143", "143", "143", "143", "143", "143"}, // 1000/7
				{"1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1"},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			spreadWeights(tc.backends)
			if diff := cmp.Diff(tc.want, upstreamWeights(tc.backends)); diff != "" {
				t.Errorf("upstream weights (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSpreadWeightsKeepsShares checks the property the data-plane test measures: whatever the
// pod counts, each backend's share of weighted_round_robin's cycle is its share of the weights.
func TestSpreadWeightsKeepsShares(t *testing.T) {
	for _, weights := range [][2]int32{{90, 10}, {50, 50}, {0, 100}, {1, 2}, {33, 67}, {95, 5}, {1, 1_000_000}} {
		for stablePods := 1; stablePods <= 7; stablePods++ {
			for canaryPods := 0; canaryPods <= 7; canaryPods++ {
				bs := []AppliedBackend{backend("stable", weights[0], stablePods), backend("canary", weights[1], canaryPods)}
				spreadWeights(bs)
				var per [2]int
				for i, b := range bs {
					per[i] = b.Unavailable
					for _, ep := range b.Endpoints {
						per[i] += ep.Weight
					}
				}
				got := float64(per[1]) / float64(per[0]+per[1])
				want := float64(weights[1]) / float64(weights[0]+weights[1])
				// Exact in lowest terms (see TestSpreadWeights), or rounded to per-mille shares:
				// off by about 0.1 point per upstream at most.
				tolerance := 0.001 * float64(stablePods+max(canaryPods, 1))
				if math.Abs(got-want) > tolerance {
					t.Errorf("weights %v over %d and %d pods: canary share %.4f, want %.4f (upstreams %v)",
						weights, stablePods, canaryPods, got, want, upstreamWeights(bs))
				}
			}
		}
	}
}

func TestRenderOrdersRulesByHeaderMatches(t *testing.T) {
	r := route{ResourceVersion: "7", Rules: []rule{
		{Backends: []backendRef{{"web-stable", 80, 100}, {"web-canary", 80, 0}}},
		{
			Matches:  [][]HeaderMatch{{{Name: "X-Canary", Value: "always*"}}, {{Name: "X-User", Value: "a|b", Regex: true}, {Name: "X-Beta", Value: "1"}}},
			Backends: []backendRef{{"web-canary", 80, 1}},
		},
	}}
	eps := map[svcPort]resolved{
		{"web-stable", 80}: {Endpoints: []Endpoint{{Pod: "s-0", Addr: "127.5.0.1:8080"}}},
		{"web-canary", 80}: {Endpoints: []Endpoint{{Pod: "c-0", Addr: "127.5.0.2:8080"}}},
	}
	l := listeners{Admin: "127.0.0.1:1", HTTP: "127.0.0.1:2", Unavailable: "127.0.0.1:3", Storage: "/tmp/x"}
	config, applied, err := render(&r, eps, l)
	if err != nil {
		t.Fatal(err)
	}

	var got []string
	for _, ar := range applied.Rules {
		got = append(got, fmt.Sprintf("rule %d %v", ar.Rule, ar.Headers))
	}
	want := []string{
		`rule 1 [X-User~"a|b" X-Beta="1"]`,
		`rule 1 [X-Canary="always*"]`,
		`rule 0 []`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rule order (-want +got):\n%s", diff)
	}

	var c struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string         `json:"listen"`
					Routes []map[string]any `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		t.Fatal(err)
	}
	gw := c.Apps.HTTP.Servers["gateway"]
	if diff := cmp.Diff([]string{"127.0.0.1:2"}, gw.Listen); diff != "" {
		t.Errorf("listen (-want +got):\n%s", diff)
	}
	if len(gw.Routes) != 4 {
		t.Fatalf("got %d Caddy routes, want 4 (3 rules + 404): %s", len(gw.Routes), config)
	}
	matchers := func(i int) string { b, _ := json.Marshal(gw.Routes[i]["match"]); return string(b) }
	// Exact values are quoted (no Caddy wildcard or placeholder), regexps anchored.
	for i, want := range []string{
		`[{"header_regexp":{"X-Beta":{"pattern":"^1$"},"X-User":{"pattern":"^(?:a|b)$"}}}]`,
		`[{"header_regexp":{"X-Canary":{"pattern":"^always\\*$"}}}]`,
		`null`,
		`null`,
	} {
		if got := matchers(i); got != want {
			t.Errorf("route %d matchers = %s, want %s", i, got, want)
		}
	}
	handler, _ := json.Marshal(gw.Routes[2]["handle"])
	wantHandler := `[{"handler":"reverse_proxy","load_balancing":{"selection_policy":{"policy":"weighted_round_robin","weights":[1]}},"upstreams":[{"dial":"127.5.0.1:8080"}]}]`
	if string(handler) != wantHandler {
		t.Errorf("default rule handler = %s, want %s", handler, wantHandler)
	}
	if !strings.Contains(string(config), `"admin":{"config":{"persist":false},"listen":"127.0.0.1:1"}`) {
		t.Errorf("config does not keep the admin API on 127.0.0.1:1 unpersisted: %s", config)
	}
}

func TestRenderAnswers503WithoutWeights(t *testing.T) {
	r := route{ResourceVersion: "1", Rules: []rule{{Backends: []backendRef{{"a", 80, 0}}}, {}}}
	config, _, err := render(&r, map[svcPort]resolved{{"a", 80}: {Endpoints: []Endpoint{{Pod: "a-0", Addr: "127.5.0.1:80"}}}}, listeners{})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(config), `"status_code":503`); n != 3 { // two rules + the 503 listener
		t.Errorf("config has %d 503 responses, want 3: %s", n, config)
	}
	if strings.Contains(string(config), "reverse_proxy") {
		t.Errorf("config proxies although no backend has a weight: %s", config)
	}
}

func TestParseRoute(t *testing.T) {
	const head = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: ns, resourceVersion: \"5\"}\nspec:\n  rules:\n"
	tests := map[string]struct {
		rules   string
		want    route
		wantErr string
	}{
		"weights, default weight and a header match": {
			rules: `
  - matches: [{path: {type: PathPrefix, value: /}, headers: [{name: X-Canary, value: always}, {name: x-canary, value: ignored}]}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web-canary, port: 80}}}]
    backendRefs: [{name: web-canary, port: 80}]
  - backendRefs: [{name: web-stable, port: 80, weight: 90}, {kind: Service, group: "", name: web-canary, namespace: ns, port: 80, weight: 10}]`,
			want: route{ResourceVersion: "5", Rules: []rule{
				{Matches: [][]HeaderMatch{{{Name: "X-Canary", Value: "always"}}}, Backends: []backendRef{{"web-canary", 80, 1}}},
				{Backends: []backendRef{{"web-stable", 80, 90}, {"web-canary", 80, 10}}},
			}},
		},
		"regular expression header": {
			rules: `
  - matches: [{headers: [{type: RegularExpression, name: X-User, value: "^(a|b)"}]}]
    backendRefs: [{name: web, port: 80}]`,
			want: route{ResourceVersion: "5", Rules: []rule{
				{Matches: [][]HeaderMatch{{{Name: "X-User", Value: "^(a|b)", Regex: true}}}, Backends: []backendRef{{"web", 80, 1}}},
			}},
		},
		"path prefix other than /":  {rules: "  - matches: [{path: {type: PathPrefix, value: /api}}]", wantErr: `only PathPrefix "/" is supported`},
		"exact path":                {rules: "  - matches: [{path: {type: Exact, value: /}}]", wantErr: `only PathPrefix "/" is supported`},
		"query match":               {rules: "  - matches: [{queryParams: [{name: a, value: b}]}]", wantErr: "query matches are not supported"},
		"method match":              {rules: "  - matches: [{method: GET}]", wantErr: "method matches are not supported"},
		"header filter":             {rules: "  - filters: [{type: RequestHeaderModifier}]", wantErr: `filter "RequestHeaderModifier" is not supported`},
		"backend of another kind":   {rules: "  - backendRefs: [{kind: Bucket, group: example.com, name: b}]", wantErr: "only Services"},
		"backend in another ns":     {rules: "  - backendRefs: [{name: b, namespace: other, port: 80}]", wantErr: "other namespaces"},
		"backend without port":      {rules: "  - backendRefs: [{name: b}]", wantErr: "needs a port"},
		"bad regular expression":    {rules: "  - matches: [{headers: [{type: RegularExpression, name: a, value: \"(\"}]}]", wantErr: "missing closing )"},
		"unknown header match type": {rules: "  - matches: [{headers: [{type: Prefix, name: a, value: b}]}]", wantErr: `match type "Prefix"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var obj unstructured.Unstructured
			if err := yaml.Unmarshal([]byte(head+tc.rules), &obj.Object); err != nil {
				t.Fatal(err)
			}
			got, err := parseRoute(&obj)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseRoute() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRoute() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseRoute() (-want +got):\n%s", diff)
			}
		})
	}
}

// podBuilder builds test pods: testPod("web-1").Running("127.5.0.1").Ready().Pod.
type podBuilder struct{ *corev1.Pod }

func testPod(name string) podBuilder {
	return podBuilder{&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}}
}

func (b podBuilder) Running(ip string) podBuilder {
	b.Status.Phase, b.Status.PodIP = corev1.PodRunning, ip
	return b
}

func (b podBuilder) Ready() podBuilder {
	b.Status.Conditions = append(b.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	return b
}

func (b podBuilder) Label(key, value string) podBuilder {
	b.Labels[key] = value
	return b
}

func (b podBuilder) Terminating() podBuilder {
	b.DeletionTimestamp = &metav1.Time{}
	return b
}

func TestServiceEndpoints(t *testing.T) {
	pods := []corev1.Pod{
		*testPod("web-b").Running("127.5.0.2").Ready().Pod,
		*testPod("web-a").Running("127.5.0.1").Ready().Pod,
		*testPod("web-unready").Running("127.5.0.3").Pod,
		*testPod("web-terminating").Running("127.5.0.4").Ready().Terminating().Pod,
		*testPod("web-pending").Ready().Pod,
		*testPod("other").Running("127.5.0.5").Ready().Label("app", "other").Pod,
	}
	service := func(target intstr.IntOrString, mutate ...func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "web"},
				Ports:    []corev1.ServicePort{{Port: 80, TargetPort: target}},
			},
		}
		for _, m := range mutate {
			m(s)
		}
		return s
	}
	tests := map[string]struct {
		svc     *corev1.Service
		port    int32
		want    []Endpoint
		wantErr string
	}{
		"named target port, ready pods only, by name": {
			svc: service(intstr.FromString("http")), port: 80,
			want: []Endpoint{{Pod: "web-a", Addr: "127.5.0.1:8080"}, {Pod: "web-b", Addr: "127.5.0.2:8080"}},
		},
		"numeric target port": {
			svc: service(intstr.FromInt32(9090)), port: 80,
			want: []Endpoint{{Pod: "web-a", Addr: "127.5.0.1:9090"}, {Pod: "web-b", Addr: "127.5.0.2:9090"}},
		},
		"no target port: the Service port": {
			svc: service(intstr.IntOrString{}), port: 80,
			want: []Endpoint{{Pod: "web-a", Addr: "127.5.0.1:80"}, {Pod: "web-b", Addr: "127.5.0.2:80"}},
		},
		"a port name no pod has": {svc: service(intstr.FromString("grpc")), port: 80, want: nil},
		"publishNotReadyAddresses": {
			svc: service(intstr.FromInt32(8080), func(s *corev1.Service) { s.Spec.PublishNotReadyAddresses = true }), port: 80,
			want: []Endpoint{
				{Pod: "web-a", Addr: "127.5.0.1:8080"}, {Pod: "web-b", Addr: "127.5.0.2:8080"},
				{Pod: "web-unready", Addr: "127.5.0.3:8080"},
			},
		},
		"missing Service":      {svc: nil, port: 80, wantErr: "no such Service"},
		"unknown Service port": {svc: service(intstr.FromInt32(8080)), port: 81, wantErr: "no port 81"},
		"no selector": {
			svc: service(intstr.FromInt32(8080), func(s *corev1.Service) { s.Spec.Selector = nil }), port: 80,
			wantErr: "no selector",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := serviceEndpoints(tc.svc, tc.port, pods)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("serviceEndpoints() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("serviceEndpoints() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("serviceEndpoints() (-want +got):\n%s", diff)
			}
		})
	}
}
