# Local Kubernetes control plane for tests and demos (see e2e/README.md).
# Included from the main Makefile. Binaries are cached in $SLUICE_CACHE_DIR
# (default ~/.cache/sluice) and linked into bin/; state lives in .local/cluster.

GO ?= go
# `go run` compiles the command silently first (a minute or two on a cold build cache).
CLUSTER_CMD = @echo "compiling ./e2e/cmd/cluster (silent; up to ~2 min the first time)..." && $(GO) run ./e2e/cmd/cluster

.PHONY: tools cluster-up cluster-down

tools: ## Build etcd, kube-*, kubectl, kwok, prometheus into the cache (~30 min cold, seconds warm)
	$(CLUSTER_CMD) build

cluster-up: ## Start a detached local control plane; prints `export KUBECONFIG=...`
	$(CLUSTER_CMD) up

cluster-down: ## Stop the local control plane and remove .local/cluster
	$(CLUSTER_CMD) down
