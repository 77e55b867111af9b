package e2e

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestCanaryFollowsHPA scales the parent with a real HorizontalPodAutoscaler in the middle of
// a release and checks that the canary follows the parent's live replicas, up and down: its
// share of them for the replicas router, all of them for an isolated canary. The local control
// plane has no metrics API, so the autoscaler is steered by its bounds (a Deployment below
// minReplicas or above maxReplicas is scaled without metrics, as in any cluster).
func TestCanaryFollowsHPA(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		router string
		// canary is the canary's size for parent replicas 3, 5 and 2 at weight 20.
		canary [3]int32
	}{
		{spec.RouterReplicas, [3]int32{1, 2, 1}},
		{spec.RouterGatewayAPI, [3]int32{3, 5, 2}},
	} {
		t.Run(tc.router, func(t *testing.T) {
			t.Parallel()
			// One long interval: the release sits at weight 20 while the autoscaler acts.
			a := newApp(t, "web", fastAnnotations(spec.AnnRouter, tc.router, spec.AnnStepWeights, "20", spec.AnnInterval, "60s", spec.AnnMetrics, passing))
			if tc.router != spec.RouterReplicas {
				createService(t, a.ns, "web")
			}
			a.deploy("demo:v1")
			a.kubectl("set", "image", "deployment/web", "app=demo:v2")
			a.waitCanary(tc.canary[0])
			a.waitFor(30*time.Second, "the release recorded at weight 20 with its canary ready", func(d *appsv1.Deployment) (bool, string) {
				st := stateOf(t, d)
				return st.CanaryReady && st.Weight == 20, st.Message
			})

			hpa := &autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: a.ns},
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
					MinReplicas:    ptr.To[int32](5), MaxReplicas: 6,
				},
			}
			hpas := env.Client.AutoscalingV2().HorizontalPodAutoscalers(a.ns)
			if _, err := hpas.Create(t.Context(), hpa, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create HPA: %v", err)
			}
			a.waitReplicas(5)
			a.waitCanary(tc.canary[1])

			// A merge patch of the spec: the autoscaler writes the HPA's status meanwhile, so an
			// update of what was read could conflict with it.
			if _, err := hpas.Patch(t.Context(), "web", types.MergePatchType, []byte(`{"spec":{"minReplicas":1,"maxReplicas":2}}`), metav1.PatchOptions{}); err != nil {
				t.Fatalf("patch HPA: %v", err)
			}
			a.waitReplicas(2)
			a.waitCanary(tc.canary[2])
			if st := a.state(); st.Phase != spec.PhaseProgressing || st.Weight != 20 {
				t.Fatalf("the release moved on while the autoscaler acted: %s", mustJSON(st))
			}

			a.waitPhase(2*time.Minute, spec.PhaseSucceeded)
			d := a.get()
			if *d.Spec.Replicas != 2 || d.Status.UpdatedReplicas != 2 || d.Status.AvailableReplicas != 2 {
				t.Errorf("after promotion: replicas %d, status %+v; want the autoscaler's 2, all updated", *d.Spec.Replicas, d.Status)
			}
		})
	}
}

// waitReplicas waits until the parent's spec.replicas (as its autoscaler sets them) is n.
func (a *app) waitReplicas(n int32) {
	a.t.Helper()
	a.waitFor(90*time.Second, fmt.Sprintf("the autoscaler to set %d replicas", n), func(d *appsv1.Deployment) (bool, string) {
		return *d.Spec.Replicas == n, fmt.Sprintf("replicas %d", *d.Spec.Replicas)
	})
}

// waitCanary waits until the canary runs n ready replicas.
func (a *app) waitCanary(n int32) {
	a.t.Helper()
	a.waitFor(60*time.Second, fmt.Sprintf("a canary of %d ready replicas", n), func(*appsv1.Deployment) (bool, string) {
		c := a.canary()
		if c == nil {
			return false, "no canary"
		}
		return *c.Spec.Replicas == n && c.Status.ReadyReplicas == n && c.Status.Replicas == n,
			fmt.Sprintf("canary replicas %d, status %d (%d ready)", *c.Spec.Replicas, c.Status.Replicas, c.Status.ReadyReplicas)
	})
}
