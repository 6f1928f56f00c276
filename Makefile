# kpo — Kubernetes Package Orchestrator.

IMG ?= kpo-manager:latest
LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT_VERSION ?= v2.6.2
# Built once per machine and version, outside the clone (like kube-apiserver and etcd).
TOOLS_CACHE ?= $(or $(KPO_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kpo)/tools
GOLANGCI_LINT ?= $(TOOLS_CACHE)/golangci-lint-$(GOLANGCI_LINT_VERSION)
KUBECTL ?= kubectl

# Keep a developer's own git settings out of the tests and the local Git server.
export GIT_CONFIG_GLOBAL := /dev/null
export GIT_CONFIG_NOSYSTEM := true
# Pinned module versions: never let the go command pick newer ones behind our back.
export GOFLAGS := -mod=mod -buildvcs=false
export GOTOOLCHAIN := local

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and the manager ClusterRole.
	$(CONTROLLER_GEN) rbac:roleName=kpo-manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: test
test: manifests generate fmt vet ## Run every test against a real kube-apiserver, etcd and Git server (installs chromium for the UI's browser test when missing).
	hack/chromium.sh
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" FLUX_ASSETS="$$(hack/flux-assets.sh)" go test $$(go list ./... | grep -v /internal/e2e/node) -count=1 -timeout 30m

.PHONY: ui-screenshots
ui-screenshots: ## Run the web UI's browser test and write its screenshots to docs/ui/ (look at them before committing).
	hack/chromium.sh
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" KPO_UI_SCREENSHOTS=$(CURDIR)/docs/ui go test ./internal/ui/ -run Browser -count=1 -v

.PHONY: envtest
envtest: ## Obtain kube-apiserver and etcd (downloaded, or built from the Go module proxy) and print their directory.
	@hack/envtest-assets.sh

.PHONY: e2e-flux
e2e-flux: ## Run only the Flux end-to-end test (builds Flux's controllers from the Go module proxy on first use).
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" FLUX_ASSETS="$$(hack/flux-assets.sh)" go test ./internal/e2e/... -count=1 -v -timeout 20m

CRASH_OPS ?= 1000
CRASH_DURATION ?= 15m

.PHONY: test-crash
test-crash: ## Run the long crash test: the manager binary SIGKILLed at random points during CRASH_DURATION of lifecycle traffic (make test runs a 45s version). KPO_CRASH_SEED=N replays a run.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" KPO_CRASH_OPS=$(CRASH_OPS) KPO_CRASH_DURATION=$(CRASH_DURATION) go test ./internal/crash/ -count=1 -v -timeout 60m

.PHONY: e2e
e2e: ## Run the node tier: a real single-node cluster on this machine (needs root; apt-installs containerd), kpo installed from dist/install.yaml, function Jobs and warm pods, failover, deployment status with Flux as pods, the web UI's pod from dist/install-ui.yaml. E2E_FLAGS='-bench . -benchtime 1x' adds the latency benchmark.
	hack/node/cluster.sh run go test ./internal/e2e/node/ -count=1 -v -timeout 30m $(E2E_FLAGS)

.PHONY: bench
bench: ## Run the benchmarks and write bench/report.txt.
	@mkdir -p bench
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go test $$(go list ./... | grep -v /internal/e2e) -run '^$$' -bench . -benchmem -count=1 -timeout 60m | tee bench/report.txt

BENCH_KPT_SIZES ?= 100,1000

.PHONY: bench-kpt
bench-kpt: build ## kpt (when installed) and kpoctl fn render side by side on generated packages (BENCH_KPT_SIZES resources), with the ratio; then the in-process render and three-way merge benchmarks.
	go run ./hack/benchkpt -sizes '$(BENCH_KPT_SIZES)' -kpoctl bin/kpoctl
	go test ./internal/kpoctl ./internal/merge -run '^$$' -bench 'FnRender|Update_500' -benchmem -count=1

BENCH_SCALE_SIZES ?= 3x50x3
BENCH_SCALE_FLAGS ?=

.PHONY: bench-scale
bench-scale: ## Scale benchmark: per size RxPxT (BENCH_SCALE_SIZES=3x50x3,10x100x3) a fresh control plane, generated repositories and the manager binary; writes bench/scale-report.txt. BENCH_SCALE_FLAGS='-authoring 10 -manager-args=--repository-workers=8' adds flags.
	@mkdir -p bench
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go run ./hack/benchscale -sizes '$(BENCH_SCALE_SIZES)' -out bench/scale-report.txt $(BENCH_SCALE_FLAGS)

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	$(GOLANGCI_LINT) run

.PHONY: verify
verify: manifests generate fmt ## Fail when generated files or go.mod are out of date.
	go mod tidy
	@git diff --exit-code -- . ':(exclude)bench' || (echo "generated files are out of date: run make manifests generate fmt, go mod tidy and commit" && exit 1)

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager, kpo-fn (its function sandbox, found next to it) and kpoctl.
	go build -o $(LOCALBIN)/manager ./cmd
	go build -o $(LOCALBIN)/kpo-fn ./cmd/kpo-fn
	@if [ -d cmd/kpoctl ]; then go build -o $(LOCALBIN)/kpoctl ./cmd/kpoctl; fi

.PHONY: run
run: manifests generate fmt vet ## Run the manager; without KUBECONFIG, also a local control plane and Git server.
	@hack/run.sh

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs, ClusterRoles and admission policies into the cluster of KUBECONFIG.
	$(KUBECTL) apply -k config/crd
	$(KUBECTL) apply -f config/rbac/user_roles.yaml
	$(KUBECTL) apply -k config/policies

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the cluster of KUBECONFIG.
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy everything (CRDs, RBAC, policies, the manager with image IMG) into the cluster of KUBECONFIG.
	$(KUBECTL) kustomize config/default | sed 's|controller:latest|$(IMG)|g' | $(KUBECTL) apply --server-side --force-conflicts --field-manager=kpo-install -f -

.PHONY: undeploy
undeploy: ## Remove the manager from the cluster of KUBECONFIG.
	$(KUBECTL) delete --ignore-not-found -k config/default

.PHONY: build-installer
build-installer: manifests ## Write dist/install.yaml: CRDs, RBAC, admission policies, the function namespace and the manager with image IMG (also the function wrapper image); and dist/install-ui.yaml: the web UI's pod (config/ui) with image IMG.
	@mkdir -p dist
	$(KUBECTL) kustomize config/default | sed 's|controller:latest|$(IMG)|g' > dist/install.yaml
	$(KUBECTL) kustomize config/ui | sed 's|controller:latest|$(IMG)|g' > dist/install-ui.yaml
	@! grep -n 'controller:latest' dist/install.yaml dist/install-ui.yaml || (echo "dist/ still names the placeholder image" && exit 1)

CONTAINER_TOOL ?= docker

.PHONY: docker-build
docker-build: ## Build the image IMG with the manager and every command under ./cmd (kpoctl, ...).
	$(CONTAINER_TOOL) build -t $(IMG) .

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT)
$(GOLANGCI_LINT):
	mkdir -p $(TOOLS_CACHE)/golangci-lint-build
	GOBIN=$(TOOLS_CACHE)/golangci-lint-build go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(TOOLS_CACHE)/golangci-lint-build/golangci-lint $(GOLANGCI_LINT)
