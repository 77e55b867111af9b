// Package stack brings up Sluice end to end on the local control plane: the real `sluice`
// binary serving its webhook over TLS on loopback (registered from deploy/webhook.yaml with a
// url and caBundle), running under the least-privilege RBAC of deploy/rbac, a real Prometheus
// that discovers pods through the API server and scrapes them, and the simulated demo app fleet
// that gives kwok's process-less pods a real HTTP server and real metrics. The e2e tests, `make
// demo` and `make up` all use it, so what the demo shows is what the tests prove.
//
// For the fault matrix (e2e/faults) it also has two proxies on 127.0.0.1 that sluice can be
// pointed at: APIProxy forwards sluice's API requests under its own identity and can hold one of
// its release-state writes, so a test stops sluice at an exact point of a release;
// PrometheusProxy answers each namespace's queries pass-through, slow, 500 or NaN.
package stack
