// Package cluster runs a real Kubernetes control plane on 127.0.0.1 for Sluice's
// integration tests, e2e tests and local demos.
//
// Why it exists: Sluice rewrites Deployments through a mutating webhook, relies on the
// Deployment and ReplicaSet controllers, the scheduler and the garbage collector, and
// reads metrics from Prometheus. envtest alone has no controllers and no pods; kind and
// friends need Docker, which these machines do not have. So this package builds the
// pinned upstream binaries from Go modules (e2e/tools/*) and runs them as plain
// processes:
//
//	etcd ── kube-apiserver ─┬─ kube-controller-manager
//	                        ├─ kube-scheduler
//	                        └─ kwok (fake kubelet: Nodes and Pods become Ready, pods get 127.x IPs)
//	        (optional) prometheus, discovering pods through the API server
//
// Everything listens on 127.0.0.1 only, Service and pod IPs are loopback addresses, so
// a test can bind an HTTP server on a pod's IP and be reached through it.
//
// Binaries are built once into a cache (EnsureBinaries; $SLUICE_CACHE_DIR, default
// <user cache dir>/sluice). Start boots a control plane in about 10 s. Tests use Main in
// their TestMain to share one control plane per test binary; the e2e/cmd/cluster command
// runs a detached one for the shell (see e2e/README.md).
package cluster
