#!/usr/bin/env bash
# Prints a directory holding kube-apiserver and etcd for envtest, obtaining them first if needed.
#
# Order: $KUBEBUILDER_ASSETS when it already holds both binaries; the per-machine cache
# (outside the clone, so fresh clones reuse it); setup-envtest's download; and, where the
# download is unreachable (machines that only reach a Go module proxy), a build from the Go
# module proxy. Progress goes to stderr; the directory alone goes to stdout.
set -euo pipefail

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-v3.6.16}"
SETUP_ENVTEST_VERSION="${SETUP_ENVTEST_VERSION:-v0.25.1}"
CACHE_ROOT="${KPO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kpo}"
DEST="${CACHE_ROOT}/envtest/${K8S_VERSION}-etcd-${ETCD_VERSION}"

log() { echo "envtest-assets: $*" >&2; }

has_assets() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && has_assets "${KUBEBUILDER_ASSETS}"; then
  echo "${KUBEBUILDER_ASSETS}"
  exit 0
fi
if has_assets "${DEST}"; then
  echo "${DEST}"
  exit 0
fi

mkdir -p "${DEST}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# 1. The usual download. It fails fast where the internet is unreachable.
log "trying setup-envtest download of Kubernetes ${K8S_VERSION}"
if dir=$(GOFLAGS=-mod=mod timeout 120 go run "sigs.k8s.io/controller-runtime/tools/setup-envtest@${SETUP_ENVTEST_VERSION}" \
    use "${K8S_VERSION}" --bin-dir "${work}/setup-envtest" -p path 2>"${work}/setup-envtest.log") \
    && has_assets "${dir}"; then
  cp "${dir}/kube-apiserver" "${dir}/etcd" "${DEST}/"
  echo "${DEST}"
  exit 0
fi
log "download unavailable ($(tail -n 1 "${work}/setup-envtest.log" 2>/dev/null | cut -c1-160)); building from the Go module proxy"

export GOFLAGS=-mod=mod
export CGO_ENABLED=0

# 2. etcd: its main package lives in go.etcd.io/etcd/server/v3; build it from a wrapper module.
if [ ! -x "${DEST}/etcd" ]; then
  log "building etcd ${ETCD_VERSION} (about 2 minutes on 2 cores)"
  mkdir -p "${work}/etcd"
  (
    cd "${work}/etcd"
    go mod init kpo.local/etcd-build >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2
    go build -trimpath -ldflags=-s -o "${DEST}/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
  )
  mv "${DEST}/etcd.tmp" "${DEST}/etcd"
  log "etcd ready"
fi

# 3. kube-apiserver: k8s.io/kubernetes replaces its staging modules with ./staging/src/...,
# which a module download does not have; pin each one to the matching v0.x release instead.
if [ ! -x "${DEST}/kube-apiserver" ]; then
  staging_version="v0.${K8S_VERSION#1.}"
  log "building kube-apiserver v${K8S_VERSION} (6 to 15 minutes on 2 cores)"
  mkdir -p "${work}/apiserver"
  (
    cd "${work}/apiserver"
    gomod=$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    go mod init kpo.local/kube-apiserver-build >/dev/null 2>&1
    # Keep the same go directive and the same non-staging requirements as kubernetes itself.
    grep -oE '^[[:space:]]*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "${gomod}" \
      | awk '{print $1}' | while read -r mod; do
        go mod edit -replace "${mod}=${mod}@${staging_version}"
      done
    go mod edit -require "k8s.io/kubernetes@v${K8S_VERSION}"
    # A main package cannot be imported; a build-tagged file makes `go mod tidy` resolve its
    # dependencies, and the package is then built by path.
    cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
    go mod tidy >&2
    go build -trimpath -ldflags=-s -o "${DEST}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
  )
  mv "${DEST}/kube-apiserver.tmp" "${DEST}/kube-apiserver"
  log "kube-apiserver ready"
fi

echo "${DEST}"
