#!/usr/bin/env bash
# Prints a directory holding Flux's source-controller and kustomize-controller binaries and their
# CRDs, for the end-to-end deployment test (internal/e2e), building them first if needed.
#
# Layout of the directory:
#   source-controller     the source-controller binary
#   kustomize-controller  the kustomize-controller binary
#   crd/                  the CRDs of both (each module's config/crd/bases)
#
# Order: $FLUX_ASSETS when it is already complete; the per-machine cache (outside the clone, so
# fresh clones reuse it); otherwise a build from the Go module proxy (about 3 minutes of CPU
# each). Progress goes to stderr; the directory alone goes to stdout.
#
# How the build works: each controller is the main package at the root of its module, so the
# module directory from `go mod download` is copied to a temporary directory and built there as
# the main module. Its go.mod replaces github.com/fluxcd/<name>/api with ./api, a nested module
# that a module download does not contain; that replace is dropped, so the api module of the
# version go.mod requires comes from the proxy instead. Newer Flux versions need go >= 1.27 or
# depend on module versions the proxy refuses; these two build with go 1.26. If the proxy ever
# refuses (403) a module version one of them requires, pin a nearby one (check it first with
# `go mod download -json module@version`) in PINS_<name> below, or for one run in
# FLUX_SOURCE_CONTROLLER_PINS / FLUX_KUSTOMIZE_CONTROLLER_PINS: "module@version" words, applied
# with `go mod edit -require` in the temporary copy. None is needed today (measured with go 1.26).
# The cache directory is named by both versions: changing one builds a new directory.
set -euo pipefail

SOURCE_CONTROLLER_VERSION="${FLUX_SOURCE_CONTROLLER_VERSION:-v1.9.0}"
KUSTOMIZE_CONTROLLER_VERSION="${FLUX_KUSTOMIZE_CONTROLLER_VERSION:-v1.9.6}"
PINS_source_controller="${FLUX_SOURCE_CONTROLLER_PINS:-}"
PINS_kustomize_controller="${FLUX_KUSTOMIZE_CONTROLLER_PINS:-}"
CACHE_ROOT="${KPO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kpo}"
DEST="${CACHE_ROOT}/flux/source-controller-${SOURCE_CONTROLLER_VERSION}-kustomize-controller-${KUSTOMIZE_CONTROLLER_VERSION}"

log() { echo "flux-assets: $*" >&2; }

complete() {
  [ -x "$1/source-controller" ] && [ -x "$1/kustomize-controller" ] \
    && [ -f "$1/crd/source.toolkit.fluxcd.io_gitrepositories.yaml" ] \
    && [ -f "$1/crd/kustomize.toolkit.fluxcd.io_kustomizations.yaml" ]
}

if [ -n "${FLUX_ASSETS:-}" ] && complete "${FLUX_ASSETS}"; then
  echo "${FLUX_ASSETS}"
  exit 0
fi
if complete "${DEST}"; then
  echo "${DEST}"
  exit 0
fi

export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

mkdir -p "${DEST}/crd"
work="$(mktemp -d)"
trap 'chmod -R u+w "${work}" 2>/dev/null; rm -rf "${work}"' EXIT

# build NAME VERSION: builds github.com/fluxcd/NAME@VERSION into ${DEST}/NAME and copies its CRDs.
build() {
  local name="$1" version="$2" module="github.com/fluxcd/$1" dir json
  if [ -x "${DEST}/${name}" ] && ls "${DEST}/crd/"*"$(crd_group "${name}")"* >/dev/null 2>&1; then
    return 0
  fi
  log "building ${name} ${version} from the Go module proxy (about 3 minutes of CPU)"
  json=$(go mod download -json "${module}@${version}" 2>&1) || true
  dir=$(printf '%s\n' "${json}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "${dir}" ] || [ ! -f "${dir}/go.mod" ]; then
    log "go mod download ${module}@${version} failed: $(printf '%s\n' "${json}" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' | head -n 1)"
    return 1
  fi
  cp -R "${dir}" "${work}/${name}"
  chmod -R u+w "${work}/${name}"
  (
    # (set -e does not apply on the left of ||: every step checks its own status.)
    cd "${work}/${name}" || exit 1
    go mod edit -dropreplace "${module}/api" || exit 1
    pins_var="PINS_${name//-/_}"
    for pin in ${!pins_var}; do
      log "pinning ${pin}"
      go mod edit -require "${pin}" || exit 1
    done
    go build -trimpath -ldflags=-s -o "${DEST}/${name}.tmp.$$" . >&2
  ) || {
    log "building ${name} ${version} failed; if the proxy refused a module version (403), pin a nearby one in PINS_${name//-/_}"
    return 1
  }
  cp "${dir}/config/crd/bases/"*.yaml "${DEST}/crd/"
  chmod u+w "${DEST}/crd/"*.yaml
  mv "${DEST}/${name}.tmp.$$" "${DEST}/${name}"
  log "${name} ready"
}

crd_group() {
  case "$1" in
    source-controller) echo "source.toolkit.fluxcd.io" ;;
    kustomize-controller) echo "kustomize.toolkit.fluxcd.io" ;;
  esac
}

build source-controller "${SOURCE_CONTROLLER_VERSION}"
build kustomize-controller "${KUSTOMIZE_CONTROLLER_VERSION}"

if ! complete "${DEST}"; then
  log "${DEST} is incomplete after the build"
  exit 1
fi
echo "${DEST}"
