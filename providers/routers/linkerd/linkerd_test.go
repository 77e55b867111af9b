package linkerd_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/internal/routertest"
	"github.com/sluice-dev/sluice/providers/routers/linkerd"
)

var trafficSplit = routers.Target{Namespace: "shop", Service: "web", Port: 80, Route: "shop-api", Kind: "trafficsplit", Create: true}

func TestSplit(t *testing.T) {
	u, err := linkerd.Split(trafficSplit, routers.Routing{Weight: 30})
	if err != nil {
		t.Fatal(err)
	}
	want := routertest.Parse(t, `
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata:
  name: web
  namespace: shop
  labels: {app.kubernetes.io/managed-by: sluice}
spec:
  service: web
  backends: [{service: web-stable, weight: 70}, {service: web-canary, weight: 30}]
`)
	if diff := cmp.Diff(want, routertest.Norm(t, u.Object)); diff != "" {
		t.Errorf("TrafficSplit (-want +got):\n%s", diff)
	}
	if got := linkerd.Observe(u, trafficSplit); got != (routers.Observed{Managed: true, Weight: 30}) {
		t.Errorf("Observe = %+v", got)
	}

	named := trafficSplit
	named.Create = false
	if got := linkerd.SplitName(named); got != "shop-api" {
		t.Errorf("SplitName of a named route = %s, want shop-api", got)
	}
}
