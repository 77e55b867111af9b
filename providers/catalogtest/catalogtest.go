// Package catalogtest is, for tests, the catalog cmd/sluice wires: every router and metric
// backend it registers, in the same order. The packages that read the catalog (rollout/spec at
// admission, webhook, rollout/plan, rollout/analysis, rollout, e2e) test against the real
// descriptions, declared once in each router's and backend's package; cmd/sluice's
// TestCatalogtestIsWhatShips fails when this list and the binary's differ.
package catalogtest

import (
	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/cloudwatch"
	"github.com/sluice-dev/sluice/providers/metrics/datadog"
	"github.com/sluice-dev/sluice/providers/metrics/dynatrace"
	"github.com/sluice-dev/sluice/providers/metrics/graphite"
	"github.com/sluice-dev/sluice/providers/metrics/influxdb"
	"github.com/sluice-dev/sluice/providers/metrics/newrelic"
	"github.com/sluice-dev/sluice/providers/metrics/prometheus"
	"github.com/sluice-dev/sluice/providers/metrics/stackdriver"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/appmesh"
	"github.com/sluice-dev/sluice/providers/routers/contour"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
	"github.com/sluice-dev/sluice/providers/routers/istio"
	"github.com/sluice-dev/sluice/providers/routers/linkerd"
	"github.com/sluice-dev/sluice/providers/routers/nginx"
	"github.com/sluice-dev/sluice/providers/routers/replicas"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Routers is a registry of the routers cmd/sluice registers.
func Routers() *routers.Registry {
	r := &routers.Registry{}
	r.Register(replicas.Info, replicas.New)
	r.Register(gatewayapi.Info, gatewayapi.New)
	r.Register(istio.Info, istio.New)
	r.Register(linkerd.Info, linkerd.New)
	r.Register(nginx.Info, nginx.New)
	r.Register(contour.Info, contour.New)
	r.Register(appmesh.Info, appmesh.New)
	return r
}

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

// Backends is a registry of the metric backends cmd/sluice registers.
func Backends() *metrics.Registry {
	r := &metrics.Registry{}
	r.Register(prometheus.Backend)
	r.Register(datadog.Backend)
	r.Register(cloudwatch.Backend)
	r.Register(newrelic.Backend)
	r.Register(graphite.Backend)
	r.Register(influxdb.Backend)
	r.Register(dynatrace.Backend)
	r.Register(stackdriver.Backend)
	return r
}
