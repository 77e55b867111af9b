package routers_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

type nop struct{ objs routers.Objects }

func (nop) Apply(context.Context, routers.Target, routers.Routing) error { return nil }
func (nop) Reset(context.Context, routers.Target) error                  { return nil }
func (nop) Current(context.Context, routers.Target) (routers.Observed, error) {
	return routers.Observed{}, nil
}

func info(name string) spec.RouterInfo {
	return spec.RouterInfo{
		Name:    name,
		Kinds:   []spec.RouteKind{{Kind: "widget", Capability: spec.Capability{Strategies: []spec.Strategy{spec.StrategyCanary}}}},
		Queries: spec.Queries{SuccessRate: "sr", Duration: "d", Requests: "n"},
	}
}

func newNop(o routers.Objects) routers.Router { return nop{objs: o} }

// The registry builds what was registered, in order, and refuses every other name with an error
// naming the ones it has: never a nil router, never a fallback.
func TestRegistryNewAndUnknown(t *testing.T) {
	var r routers.Registry
	r.Register(info("alpha"), newNop)
	r.Register(info("beta"), newNop)
	if got := strings.Join(r.Catalog().Names(), ","); got != "alpha,beta" {
		t.Errorf("catalog = %s, want alpha,beta (registration order)", got)
	}
	router, err := r.New("beta", routers.Objects{})
	if _, ok := router.(nop); err != nil || !ok {
		t.Errorf("New(beta) = %T, %v", router, err)
	}
	router, err = r.New("gamma", routers.Objects{})
	var unknown *routers.ErrUnknown
	if router != nil || !errors.As(err, &unknown) ||
		err.Error() != `router "gamma" is not available in this controller (it has alpha, beta)` {
		t.Errorf("New(gamma) = %v, %v; want an ErrUnknown naming alpha and beta", router, err)
	}
	var empty *routers.Registry
	if _, err := empty.New("alpha", routers.Objects{}); err == nil || !strings.Contains(err.Error(), "no router is registered") {
		t.Errorf("New on a nil registry: %v", err)
	}
}

// Wiring mistakes stop the binary at once: a second router of a name, an invalid description,
// no constructor.
func TestRegisterRefusesWiringMistakes(t *testing.T) {
	bad := info("broken")
	bad.Kinds = nil
	for name, tc := range map[string]struct {
		register func(*routers.Registry)
		want     string
	}{
		"twice":          {func(r *routers.Registry) { r.Register(info("alpha"), newNop) }, `"alpha": registered twice`},
		"invalid":        {func(r *routers.Registry) { r.Register(bad, newNop) }, `router "broken": no kinds`},
		"no constructor": {func(r *routers.Registry) { r.Register(info("gamma"), nil) }, `"gamma": no constructor`},
	} {
		t.Run(name, func(t *testing.T) {
			var r routers.Registry
			r.Register(info("alpha"), newNop)
			defer func() {
				p := recover()
				if s, _ := p.(string); !strings.Contains(s, tc.want) {
					t.Errorf("panic = %v, want it to contain %q", p, tc.want)
				}
			}()
			tc.register(&r)
		})
	}
}
