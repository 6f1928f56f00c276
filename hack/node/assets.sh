#!/usr/bin/env bash
# Prints a directory holding the node tier's Kubernetes binaries — kubelet, kubectl,
# kube-controller-manager, kube-scheduler (built here) and kube-apiserver, etcd (from
# hack/envtest-assets.sh) — building them first if needed.
#
# The build is the one hack/envtest-assets.sh does for kube-apiserver: a temporary wrapper
# module outside the clone requires k8s.io/kubernetes@v${K8S_VERSION} and pins each staging
# module (which kubernetes replaces with ./staging/src/..., absent from a module download) to
# the matching v0.x release. All three commands build in one `go build` (about 5 minutes of
# CPU on 2 cores). The result is cached under ${XDG_CACHE_HOME:-$HOME/.cache}/kpo/node/, so
# fresh clones reuse it. Progress goes to stderr; the directory alone goes to stdout.
set -euo pipefail

K8S_VERSION="${NODE_K8S_VERSION:-1.37.2}"
CACHE_ROOT="${KPO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kpo}"
DEST="${CACHE_ROOT}/node/${K8S_VERSION}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPONENTS=(kubelet kube-controller-manager kube-scheduler kubectl)

log() { echo "node-assets: $*" >&2; }

complete() {
  local c
  for c in "${COMPONENTS[@]}" kube-apiserver etcd; do [ -x "$1/$c" ] || return 1; done
}

if complete "${DEST}"; then
  echo "${DEST}"
  exit 0
fi
mkdir -p "${DEST}"

# kube-apiserver and etcd: whatever hack/envtest-assets.sh has (it builds them on first use).
envtest="$(ENVTEST_K8S_VERSION="${K8S_VERSION}" "${HERE}/../envtest-assets.sh")"
for c in kube-apiserver etcd; do
  ln -sf "${envtest}/${c}" "${DEST}/${c}"
done

missing=()
for c in "${COMPONENTS[@]}"; do [ -x "${DEST}/${c}" ] || missing+=("${c}"); done
if [ "${#missing[@]}" -gt 0 ]; then
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
  work="$(mktemp -d)"
  trap 'chmod -R u+w "${work}" 2>/dev/null; rm -rf "${work}"' EXIT
  staging_version="v0.${K8S_VERSION#1.}"
  log "building ${missing[*]} v${K8S_VERSION} from the Go module proxy (about 5 minutes of CPU on 2 cores)"
  (
    cd "${work}"
    gomod=$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    go mod init kpo.local/kube-node-build >/dev/null 2>&1
    grep -oE '^[[:space:]]*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "${gomod}" \
      | awk '{print $1}' | while read -r mod; do
        go mod edit -replace "${mod}=${mod}@${staging_version}"
      done
    go mod edit -require "k8s.io/kubernetes@v${K8S_VERSION}"
    {
      echo '//go:build tools'
      echo
      echo 'package tools'
      echo
      for c in "${missing[@]}"; do echo "import _ \"k8s.io/kubernetes/cmd/${c}\""; done
    } > tools.go
    go mod tidy >&2 || true
    mkdir -p out
    pkgs=()
    for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${c}"); done
    go build -trimpath -ldflags=-s -o out/ "${pkgs[@]}" >&2
  )
  for c in "${missing[@]}"; do mv "${work}/out/${c}" "${DEST}/${c}"; done
  log "ready in ${DEST}"
fi

complete "${DEST}" || { log "incomplete: ${DEST}"; exit 1; }
echo "${DEST}"
