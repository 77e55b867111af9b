package replicas_test

import (
	"testing"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/replicas"
)

// The replicas router has nothing to write: Apply and Reset succeed without a client (they
// would panic on the nil one if they touched it), and nothing reads as managed.
func TestReplicasWritesNothing(t *testing.T) {
	r := replicas.New(routers.Objects{})
	target := routers.Target{Namespace: "shop", Service: "web"}
	if err := r.Apply(t.Context(), target, routers.Routing{Weight: 50}); err != nil {
		t.Errorf("Apply: %v", err)
	}
	if err := r.Reset(t.Context(), target); err != nil {
		t.Errorf("Reset: %v", err)
	}
	if o, err := r.Current(t.Context(), target); err != nil || o.Managed {
		t.Errorf("Current = %+v, %v", o, err)
	}
	if err := replicas.Info.Validate(); err != nil {
		t.Error(err)
	}
}
