// Package catalogtest is, for tests, the catalog cmd/sluice wires (providers/builtin), with
// helpers: the packages that read the catalog (rollout/spec at admission, webhook, rollout/plan,
// rollout/analysis, rollout, e2e) test against the real descriptions, declared once in each
// router's and backend's package and registered once in providers/builtin.
package catalogtest

import (
	"github.com/sluice-dev/sluice/providers/builtin"
	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Routers is a registry of the routers cmd/sluice registers (providers/builtin).
func Routers() *routers.Registry { return builtin.Routers() }

// Catalog is the description of every router cmd/sluice registers.
func Catalog() spec.Routers { return Routers().Catalog() }

// Defaults are spec.Defaults with that catalog and no default router of the controller's
// (Parse's own default, replicas).
func Defaults() spec.Defaults { return spec.Defaults{Routers: Catalog()} }

// Router is the description of router name; for a name not in the catalog, one with that name
// and nothing else (so messages about it name it).
func Router(name string) spec.RouterInfo {
	if r, ok := Catalog().Lookup(name); ok {
		return r
	}
	return spec.RouterInfo{Name: name}
}

// Backends is a registry of the metric backends cmd/sluice registers (providers/builtin).
func Backends() *metrics.Registry { return builtin.Backends() }
