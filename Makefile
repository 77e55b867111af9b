# Sluice — progressive delivery for plain Kubernetes Deployments.
# `make help` lists the targets.

GO ?= go
# The e2e suite boots a real control plane; a cold tools build is ~30 min (cached after).
E2E_TIMEOUT ?= 30m
# The fault matrix (e2e/faults, docs/faults.md) boots its own control plane; ~2 min warm.
FAULTS_TIMEOUT ?= 30m

.DEFAULT_GOAL := help
.PHONY: help build image test test-faults unit e2e demo up down bench bench-scale fmt vet lint fuzz mutate chart-sync kustomize

help: ## List targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

build: ## Build sluice into bin/
	$(GO) build -o bin/ ./cmd/...

# IMAGE_FLAGS go to build/image: -tag REF, -platform linux/ARCH, -version V, -o FILE, -push.
IMAGE_FLAGS ?= -o bin/sluice-image.tar
image: ## Build the controller image (no container engine needed): bin/sluice-image.tar, or IMAGE_FLAGS='-tag REF -push' (docs/install.md)
	$(GO) run ./build/image $(IMAGE_FLAGS)

demo: tools ## Run Sluice end to end on a local control plane: a good release promoted, a bad one rolled back
	$(GO) run ./e2e/cmd/demo run

up: tools ## Start the local control plane with Prometheus and sluice, left running (prints KUBECONFIG)
	$(GO) run ./e2e/cmd/demo up

down: ## Stop what `make up` started
	$(GO) run ./e2e/cmd/demo down

test: tools unit e2e test-faults ## Run every test: unit tests, the end-to-end suite, then the fault matrix, each on a local control plane

unit: ## Unit tests (no cluster)
	$(GO) test -short -count=1 ./...

e2e: tools ## End-to-end suite against the real control plane, Prometheus and sluice binary
	$(GO) test -p 1 -count=1 -timeout $(E2E_TIMEOUT) $$($(GO) list ./e2e/... | grep -v /e2e/faults)

test-faults: tools ## Fault matrix end to end (docs/faults.md): sluice killed and stopped at every point, Prometheus, API server and webhook faults
	$(GO) test -count=1 -timeout $(FAULTS_TIMEOUT) -parallel 16 -v ./e2e/faults/

bench: ## Benchmarks (admission handler, load task rate; results recorded in docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchmem ./webhook/...
	$(GO) test -run '^$$' -bench LoadAchievedRate -benchtime 1x ./loadtester/

# BENCH_SCALE_FLAGS go to e2e/cmd/benchscale: -n LIST (numbers of concurrent releases),
# -only sluice|flagger, -note TEXT, -timeout D, -admission N (0: skip), -unmanaged N,
# -control-plane-qps Q (the controller-manager's and scheduler's client limits), -sluice-args,
# -profile DIR, -keep, -reset.
# It boots control planes: run it under the e2e lock, `flock /tmp/sluice-e2e.lock make bench-scale`.
BENCH_SCALE_FLAGS ?= -n 10,50,200
bench-scale: tools ## Sluice vs Flagger at N concurrent releases on local control planes; writes the Scale section of docs/benchmarks.md and docs/bench-scale.svg
	$(GO) run ./e2e/cmd/benchscale -out docs/benchmarks.md -svg docs/bench-scale.svg $(BENCH_SCALE_FLAGS)

# Every fuzz target of the module's packages (`func Fuzz…` in their *_test.go), FUZZTIME each.
FUZZTIME ?= 30s
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s); a failing input is saved under the package's testdata/fuzz
	@set -e; for dir in $$($(GO) list -f '{{.Dir}}' ./...); do \
		pkg=./$${dir#$(CURDIR)/}; \
		for t in $$(cat $$dir/*_test.go 2>/dev/null | sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p'); do \
			echo "== fuzz $$pkg $$t ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# MUTATE_FLAGS go to e2e/cmd/mutate: -j N (parallel mutants), -max N, -run REGEXP, -list, and
# package dirs (default: webhook rollout/plan rollout/analysis rollout/spec).
MUTATE_FLAGS ?=
mutate: ## Mutation testing of the pure packages: plant one bug at a time, run the unit tests, report survivors and the score
	$(GO) run ./e2e/cmd/mutate $(MUTATE_FLAGS)

fmt: ## gofmt the tree
	gofmt -l -w $$(git ls-files '*.go')

vet: ## go vet
	$(GO) vet ./...

# golangci-lint is built from e2e/tools/golangci-lint (pinned) into the per-user cache the first
# time (~1.5 min cold); `cluster build golangci-lint` prints its path.
lint: ## golangci-lint (.golangci.yml): vet, staticcheck, errcheck, errorlint, import aliases, the package layering, no clock in the pure packages
	@lint=$$($(GO) run ./e2e/cmd/cluster build golangci-lint) && echo "$$lint run ./..." && "$$lint" run ./...

chart-sync: ## Copy deploy/crds and deploy/dashboards (the sources) into the Helm chart's files/
	cp deploy/crds/metrictemplates.sluice.dev.yaml deploy/crds/alertproviders.sluice.dev.yaml deploy/helm/sluice/files/
	if [ -f deploy/dashboards/sluice.json ]; then mkdir -p deploy/helm/sluice/files/dashboards && \
		cp deploy/dashboards/sluice.json deploy/helm/sluice/files/dashboards/; fi

kustomize: chart-sync ## Regenerate deploy/kustomize/sluice.yaml from the Helm chart (builds helm once)
	$(GO) test -count=1 -run 'TestKustomizeBaseIsTheChartRender' ./e2e/install/ -update

include Makefile-cluster.mk
