# Local Kubernetes control plane for tests and demos (see e2e/README.md).
# Included from the main Makefile. Binaries are cached in $SLUICE_CACHE_DIR
# (default ~/.cache/sluice) and linked into bin/; state lives in .local/cluster.

GO ?= go

.PHONY: tools cluster-up cluster-down

tools: ## Build etcd, kube-*, kubectl, kwok, prometheus into the cache (~30 min cold, seconds warm)
	$(GO) run ./e2e/cmd/cluster build

cluster-up: ## Start a detached local control plane; prints `export KUBECONFIG=...`
	$(GO) run ./e2e/cmd/cluster up

cluster-down: ## Stop the local control plane and remove .local/cluster
	$(GO) run ./e2e/cmd/cluster down
