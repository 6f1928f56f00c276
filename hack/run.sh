#!/usr/bin/env bash
# `make run`: with KUBECONFIG set, installs the CRDs and ClusterRoles into that cluster and runs
# the manager against it. Without, starts a local control plane and Git server (hack/localenv).
set -euo pipefail
cd "$(dirname "$0")/.."

go build -o bin/manager ./cmd
# kpo-fn beside the manager: the manager runs user-code functions (starlark) in it, under a
# memory and time budget.
go build -o bin/kpo-fn ./cmd/kpo-fn
if [ -n "${KUBECONFIG:-}" ]; then
  kubectl apply -k config/crd
  kubectl apply -f config/rbac/user_roles.yaml
  exec bin/manager --health-probe-bind-address=127.0.0.1:8081
fi

KUBEBUILDER_ASSETS="$(hack/envtest-assets.sh)"
export KUBEBUILDER_ASSETS
go build -o bin/localenv ./hack/localenv
exec bin/localenv --manager bin/manager --dir .kpo-run
