// Package meshmetrics proves Sluice's builtin analysis queries (rollout/analysis) against a real
// Prometheus: its test serves, from a local exporter, the series each mesh and ingress data plane
// emits (Istio, Linkerd, ingress-nginx, Contour/Envoy, Gateway API implementations, App Mesh and
// an application's own HTTP metrics for the replicas router), lets the built Prometheus scrape
// them, and checks that every router's success rate, p99 latency and request count come out as
// the traffic was made, for the canary and for the stable side of compareTo: stable.
//
// It needs no Kubernetes control plane, only the Prometheus binary from the e2e binary cache
// (e2e/cluster); `go test -short` skips it.
package meshmetrics
