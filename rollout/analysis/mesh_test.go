package analysis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/analysis"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// meshVars are a release of Deployment web behind Service web-svc: names that differ, so a
// query using the wrong one shows.
func meshVars() analysis.Vars {
	return analysis.Vars{Namespace: "shop", Target: "web", Service: "web-svc", Canary: "web-canary", Stable: "web"}
}

// stableSide is what compareTo: stable renders: the same variables with Canary set to Stable
// (rollout.Analyzer.check).
func stableSide(v analysis.Vars) analysis.Vars {
	v.Canary, v.StableSide = v.Stable, true
	return v
}

// TestMeshBuiltins pins the rendered builtin queries of every mesh and ingress router, for the
// canary and for the stable side of compareTo: stable.
func TestMeshBuiltins(t *testing.T) {
	successRate := spec.Metric{Name: spec.CheckSuccessRate}
	duration := spec.Metric{Name: spec.CheckDuration}
	canary, stable := meshVars(), stableSide(meshVars())
	tests := map[string]struct {
		router string
		m      spec.Metric
		v      analysis.Vars
		want   string
	}{
		"istio success rate": {
			router: spec.RouterIstio, m: successRate, v: canary,
			want: `(sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web-canary",response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web-canary"}[60s])) * 100`,
		},
		"istio duration": {
			router: spec.RouterIstio, m: duration, v: canary,
			want: `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="web-canary"}[60s])))`,
		},
		"istio stable success rate": {
			router: spec.RouterIstio, m: successRate, v: stable,
			want: `(sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web",response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web"}[60s])) * 100`,
		},
		"istio stable duration": {
			router: spec.RouterIstio, m: duration, v: stable,
			want: `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="web"}[60s])))`,
		},

		"linkerd success rate": {
			router: spec.RouterLinkerd, m: successRate, v: canary,
			want: `(sum(rate(response_total{namespace="shop",deployment="web-canary",direction="inbound",classification!="failure"}[60s])) or vector(0))` +
				` / sum(rate(response_total{namespace="shop",deployment="web-canary",direction="inbound"}[60s])) * 100`,
		},
		"linkerd duration": {
			router: spec.RouterLinkerd, m: duration, v: canary,
			want: `histogram_quantile(0.99, sum by (le) (rate(response_latency_ms_bucket{namespace="shop",deployment="web-canary",direction="inbound"}[60s])))`,
		},
		"linkerd stable success rate": {
			router: spec.RouterLinkerd, m: successRate, v: stable,
			want: `(sum(rate(response_total{namespace="shop",deployment="web",direction="inbound",classification!="failure"}[60s])) or vector(0))` +
				` / sum(rate(response_total{namespace="shop",deployment="web",direction="inbound"}[60s])) * 100`,
		},
		"linkerd stable duration": {
			router: spec.RouterLinkerd, m: duration, v: stable,
			want: `histogram_quantile(0.99, sum by (le) (rate(response_latency_ms_bucket{namespace="shop",deployment="web",direction="inbound"}[60s])))`,
		},

		"nginx success rate": {
			router: spec.RouterNginx, m: successRate, v: canary,
			want: `(sum(rate(nginx_ingress_controller_requests{namespace="shop",canary=~"shop-web-svc-canary-.+",status!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(nginx_ingress_controller_requests{namespace="shop",canary=~"shop-web-svc-canary-.+"}[60s])) * 100`,
		},
		"nginx duration": {
			router: spec.RouterNginx, m: duration, v: canary,
			want: `histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{namespace="shop",canary=~"shop-web-svc-canary-.+"}[60s]))) * 1000`,
		},
		"nginx stable success rate": {
			router: spec.RouterNginx, m: successRate, v: stable,
			want: `(sum(rate(nginx_ingress_controller_requests{namespace="shop",service="web-svc",canary="",status!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(nginx_ingress_controller_requests{namespace="shop",service="web-svc",canary=""}[60s])) * 100`,
		},
		"nginx stable duration": {
			router: spec.RouterNginx, m: duration, v: stable,
			want: `histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{namespace="shop",service="web-svc",canary=""}[60s]))) * 1000`,
		},

		"contour success rate": {
			router: spec.RouterContour, m: successRate, v: canary,
			want: `(sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-canary_[0-9]+",envoy_response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-canary_[0-9]+"}[60s])) * 100`,
		},
		"contour duration": {
			router: spec.RouterContour, m: duration, v: canary,
			want: `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"shop_web-svc-canary_[0-9]+"}[60s])))`,
		},
		"contour stable success rate": {
			router: spec.RouterContour, m: successRate, v: stable,
			want: `(sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-stable_[0-9]+",envoy_response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-stable_[0-9]+"}[60s])) * 100`,
		},
		"contour stable duration": {
			router: spec.RouterContour, m: duration, v: stable,
			want: `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"shop_web-svc-stable_[0-9]+"}[60s])))`,
		},

		"gatewayapi success rate: Envoy clusters, else Istio": {
			router: spec.RouterGatewayAPI, m: successRate, v: canary,
			want: `((sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-canary_[0-9]+",envoy_response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-canary_[0-9]+"}[60s])) * 100)` +
				` or ((sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web-canary",response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web-canary"}[60s])) * 100)`,
		},
		"gatewayapi duration": {
			router: spec.RouterGatewayAPI, m: duration, v: canary,
			want: `(histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"shop_web-svc-canary_[0-9]+"}[60s]))))` +
				` or (histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="web-canary"}[60s]))))`,
		},
		"gatewayapi stable success rate": {
			router: spec.RouterGatewayAPI, m: successRate, v: stable,
			want: `((sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-stable_[0-9]+",envoy_response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-stable_[0-9]+"}[60s])) * 100)` +
				` or ((sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web",response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web"}[60s])) * 100)`,
		},
		"gatewayapi stable duration": {
			router: spec.RouterGatewayAPI, m: duration, v: stable,
			want: `(histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"shop_web-svc-stable_[0-9]+"}[60s]))))` +
				` or (histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="web"}[60s]))))`,
		},

		"appmesh success rate": {
			router: spec.RouterAppMesh, m: successRate, v: canary,
			want: `(sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="shop",kubernetes_pod_name=~"web-canary-[0-9a-zA-Z]+-[0-9a-zA-Z]+",envoy_cluster_name=~"cds_ingress_.+",envoy_response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="shop",kubernetes_pod_name=~"web-canary-[0-9a-zA-Z]+-[0-9a-zA-Z]+",envoy_cluster_name=~"cds_ingress_.+"}[60s])) * 100`,
		},
		"appmesh duration": {
			router: spec.RouterAppMesh, m: duration, v: canary,
			want: `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{kubernetes_namespace="shop",kubernetes_pod_name=~"web-canary-[0-9a-zA-Z]+-[0-9a-zA-Z]+",envoy_cluster_name=~"cds_ingress_.+"}[60s])))`,
		},
		"appmesh stable success rate": {
			router: spec.RouterAppMesh, m: successRate, v: stable,
			want: `(sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="shop",kubernetes_pod_name=~"web-[0-9a-zA-Z]+-[0-9a-zA-Z]+",envoy_cluster_name=~"cds_ingress_.+",envoy_response_code!~"5.."}[60s])) or vector(0))` +
				` / sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="shop",kubernetes_pod_name=~"web-[0-9a-zA-Z]+-[0-9a-zA-Z]+",envoy_cluster_name=~"cds_ingress_.+"}[60s])) * 100`,
		},
		"appmesh stable duration": {
			router: spec.RouterAppMesh, m: duration, v: stable,
			want: `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{kubernetes_namespace="shop",kubernetes_pod_name=~"web-[0-9a-zA-Z]+-[0-9a-zA-Z]+",envoy_cluster_name=~"cds_ingress_.+"}[60s])))`,
		},

		"a custom query on the stable side only swaps {{ canary }}": {
			router: spec.RouterNginx, m: spec.Metric{Name: spec.CheckSuccessRate, Query: `x{svc="{{ service }}",w="{{ canary }}"}`}, v: stable,
			want: `x{svc="web-svc",w="web"}`,
		},
		"without deployment names the canary query is used": {
			router: spec.RouterContour, m: duration, v: analysis.Vars{Namespace: "shop", Service: "web-svc"},
			want: `histogram_quantile(0.99, sum by (le) (rate(envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=~"shop_web-svc-canary_[0-9]+"}[60s])))`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := analysis.QueryFor(catalogtest.Router(tc.router), tc.m, time.Minute, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("QueryFor() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMeshRequestCounts(t *testing.T) {
	tests := map[string]string{
		spec.RouterIstio:   `sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web-canary"}[30s]))`,
		spec.RouterLinkerd: `sum(increase(response_total{namespace="shop",deployment="web-canary",direction="inbound"}[30s]))`,
		spec.RouterNginx:   `sum(increase(nginx_ingress_controller_requests{namespace="shop",canary=~"shop-web-svc-canary-.+"}[30s]))`,
		spec.RouterContour: `sum(increase(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-canary_[0-9]+"}[30s]))`,
		spec.RouterGatewayAPI: `(sum(increase(envoy_cluster_upstream_rq{envoy_cluster_name=~"shop_web-svc-canary_[0-9]+"}[30s])))` +
			` or (sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="web-canary"}[30s])))`,
		spec.RouterAppMesh: `sum(increase(envoy_cluster_upstream_rq{kubernetes_namespace="shop",kubernetes_pod_name=~"web-canary-[0-9a-zA-Z]+-[0-9a-zA-Z]+",envoy_cluster_name=~"cds_ingress_.+"}[30s]))`,
	}
	for router, want := range tests {
		t.Run(router, func(t *testing.T) {
			got, err := analysis.RequestCountQuery(catalogtest.Router(router), spec.Metric{Name: spec.CheckSuccessRate}, 30*time.Second, meshVars())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("RequestCountQuery() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuiltinSides checks every registered router's builtins the way compareTo: stable uses
// them: the canary query names only the canary's Deployment or Service, the stable one only
// stable's.
func TestBuiltinSides(t *testing.T) {
	for _, info := range catalogtest.Catalog() {
		router := info.Name
		for _, check := range []string{spec.CheckSuccessRate, spec.CheckDuration} {
			t.Run(router+"/"+check, func(t *testing.T) {
				m := spec.Metric{Name: check}
				canary, err := analysis.QueryFor(info, m, time.Minute, meshVars())
				if err != nil {
					t.Fatal(err)
				}
				stable, err := analysis.QueryFor(info, m, time.Minute, stableSide(meshVars()))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(canary, "web-canary") && !strings.Contains(canary, "web-svc-canary") {
					t.Errorf("canary query names no canary Deployment or Service: %s", canary)
				}
				if strings.Contains(canary, "-stable") {
					t.Errorf("canary query names a stable Service: %s", canary)
				}
				if strings.Contains(stable, "-canary") {
					t.Errorf("stable query names a canary Deployment or Service: %s", stable)
				}
				if canary == stable {
					t.Errorf("both sides render the same query: %s", canary)
				}
			})
		}
		t.Run(router+"/request count", func(t *testing.T) {
			if _, err := analysis.RequestCountQuery(info, spec.Metric{Name: spec.CheckSuccessRate}, time.Minute, meshVars()); err != nil {
				t.Error(err)
			}
		})
	}
}
