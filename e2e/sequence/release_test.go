package sequence_test

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// userRoute is the HTTPRoute a user keeps for the Service `web`.
const userRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: web, port: 80}]
`

// row is one release: the router and annotations of `web`, what happens around the steps, and
// how it must end (checked in code too, so a careless -update cannot bless a broken release).
type row struct {
	router string
	ann    map[string]string
	// setup runs before the image changes.
	setup func(h *harness)
	// before runs ahead of every step with its index and the recorded state.
	before    func(h *harness, i int, st spec.State)
	wantPhase spec.Phase
	wantImage string
}

func TestReleaseSequences(t *testing.T) {
	rows := map[string]row{
		"replicas_good_release":   {router: spec.RouterReplicas},
		"gatewayapi_good_release": {router: spec.RouterGatewayAPI, setup: func(h *harness) { h.apply(userRoute) }},
		// A router registered in one place in this test (fakerouter_test.go): admitted, planned
		// and applied like the shipped ones.
		"registered_router_release": {router: splitRouterName},
		// The HTTPRoute named by sluice.dev/route does not exist when the release starts: the
		// first write fails (RoutingFailed), the next step plans with the failure and records
		// the wait, and the release goes on once the user creates the route.
		"routing_failure": {
			router: spec.RouterGatewayAPI, ann: map[string]string{spec.AnnRoute: "httproute/web"},
			before: func(h *harness, i int, _ spec.State) {
				if i == 4 {
					h.apply(userRoute)
				}
			},
		},
		// A Service the user owns already holds the name `web-stable`. The controller caches
		// only Sluice's own Services, so the name is found taken when creating it: the release
		// waits (RoutingFailed naming the Service) rather than route through someone else's
		// Service, and goes on once the user has removed it.
		"stable_service_name_taken": {
			router: spec.RouterGatewayAPI,
			setup: func(h *harness) {
				h.apply(userRoute)
				h.apply("apiVersion: v1\nkind: Service\nmetadata: {name: web-stable}\nspec: {selector: {app: other}, ports: [{port: 80}]}\n")
			},
			before: func(h *harness, i int, _ spec.State) {
				if i == 3 {
					h.remove(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-stable", Namespace: h.ns}})
				}
			},
		},
		// The cache serves the parent as it was before the last step's write: the step waits
		// for it instead of planning the step before again.
		"stale_cache": {
			router: spec.RouterReplicas,
			before: func() func(h *harness, i int, _ spec.State) {
				var prev *appsv1.Deployment
				return func(h *harness, i int, _ spec.State) {
					if i == 1 {
						h.tap.stale = prev
					}
					prev = h.parent()
				}
			}(),
		},
		// A new image is held while a step is under way (the webhook rewrites the release): the
		// step's state patch no longer applies, and the next step plans on the new release.
		"conflicting_write": {
			router: spec.RouterReplicas, wantImage: "shop:v3",
			before: func(h *harness, i int, _ spec.State) {
				if i == 2 {
					h.tap.beforeParentPatch = func() error { h.setImage("shop:v3"); return nil }
				}
			},
		},
		// Prometheus is down for one analysis run: a failed check (1 of the threshold of 2),
		// then the release goes on.
		"prometheus_error": {
			router: spec.RouterReplicas,
			before: func() func(h *harness, i int, st spec.State) {
				stopped, done := false, false
				return func(h *harness, _ int, st spec.State) {
					switch {
					case stopped:
						h.restartPrometheus()
						stopped = false
					case !done && st.CanaryReady && !h.now.Before(st.LastRunAt.Add(time.Minute)):
						h.stopPrometheus()
						stopped, done = true, true
					}
				}
			}(),
		},
		// The worker dies after scaling the canary for the next weight and before recording
		// it: a new worker finds the canary ahead of the recorded weight, sets it back to the
		// recorded share, and advances only after the analysis has run again — nothing moves
		// on unrecorded.
		"crash_before_state_patch": {
			router: spec.RouterReplicas,
			before: func() func(h *harness, i int, st spec.State) {
				armed, crashed := false, false
				return func(h *harness, _ int, st spec.State) {
					switch {
					case armed && !crashed:
						h.crash()
						crashed = true
					case !armed && st.CanaryReady && st.Weight == 25 && !h.now.Before(st.LastRunAt.Add(time.Minute)):
						h.tap.beforeParentPatch = func() error { return errCrash }
						armed = true
					}
				}
			}(),
		},
	}
	for _, rowName := range slices.Sorted(maps.Keys(rows)) {
		tc := rows[rowName]
		t.Run(rowName, func(t *testing.T) {
			// Prometheus is shared and one row stops it: rows run one at a time.
			h := newHarness(t, tc.router, tc.ann)
			h.step() // first sight: the running template is recorded as stable
			if tc.setup != nil {
				tc.setup(h)
			}
			h.setImage("shop:v2")
			h.run(func(i int, st spec.State) {
				if tc.before != nil {
					tc.before(h, i, st)
				}
			})
			want, image := tc.wantPhase, tc.wantImage
			if want == "" {
				want = spec.PhaseSucceeded
			}
			if image == "" {
				image = "shop:v2"
			}
			p := h.parent()
			if st := h.state(); st.Phase != want || p.Spec.Paused || p.Spec.Template.Spec.Containers[0].Image != image {
				t.Errorf("release ended in %s (paused %t, image %s); want %s, unpaused, %s\n%s",
					st.Phase, p.Spec.Paused, p.Spec.Template.Spec.Containers[0].Image, want, image, h.out.String())
			}
			h.golden(filepath.Join("testdata", rowName+".golden"))
		})
	}
}

func (h *harness) stopPrometheus() {
	h.t.Helper()
	start, err := env.StopForNow("prometheus", 30*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.startPrometheus = start
	// Whatever happens to the row, the next one finds Prometheus up.
	h.t.Cleanup(func() {
		if h.startPrometheus != nil {
			h.restartPrometheus()
		}
	})
	h.out.WriteString("    (prometheus stopped)\n")
}

func (h *harness) restartPrometheus() {
	h.t.Helper()
	if err := h.startPrometheus(); err != nil {
		h.t.Fatal(err)
	}
	h.startPrometheus = nil
	if err := stack.WaitHTTP(h.t.Context(), promURL+"/-/ready", time.Minute); err != nil {
		h.t.Fatal(err)
	}
	h.out.WriteString("    (prometheus restarted)\n")
}
