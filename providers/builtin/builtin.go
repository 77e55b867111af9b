// Package builtin is the one list of the routers and metric backends this build of Sluice
// offers: cmd/sluice wires the controller with it, and tests (providers/catalogtest) read the
// same list, so a router is registered in exactly one place.
package builtin

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
)

// Routers is every router this build of Sluice offers, in the order admission lists them.
// Adding a router is its package (providers/routers/<name>: Info and New) and one line here.
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

// Backends is every metric backend a MetricTemplate may name. Adding one is its package
// (providers/metrics/<name>: Backend) and one line here (and its type in the CRD's enum).
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
