#!/usr/bin/env bash
# Builds the node tier's container images from this repository, offline, as OCI image-layout
# tarballs in DIR (no Docker, no registry), and prints DIR. hack/node/cluster.sh imports them
# with `ctr -n k8s.io images import`. Usage: hack/node/images.sh DIR
#
#   kpo.local/e2e/pause:v1               the pod sandbox: a static Go binary that waits (cmd/pause)
#   kpo.local/e2e/kpo-fn-wrapper:dev     /kpo-fn-wrapper (cmd/kpo-fn-wrapper): the Job's wrapper
#   kpo.local/e2e/fn-set-namespace:dev   /usr/local/bin/function execs /usr/local/bin/kpo-fn
#                                        set-namespace: the built-in, as a standalone function
#   kpo.local/e2e/fn-fail:dev            /usr/local/bin/function fails on purpose (stderr, exit 1)
#   kpo.local/e2e/fn-sleep:dev           /usr/local/bin/function sleeps for an hour
#   kpo.local/e2e/kpo:dev                kpo's image, as the Dockerfile lays it out: /manager (the
#                                        entrypoint), /kpo-fn (its starlark sandbox),
#                                        /kpo-fn-wrapper (the installer uses it as the wrapper image
#                                        too) and /kpoctl (config/ui runs `kpoctl ui --in-cluster`).
#                                        The manager needs no other binary: go-git is pure Go.
#   kpo.local/e2e/flux-source-controller:dev     /source-controller, and
#   kpo.local/e2e/flux-kustomize-controller:dev  /kustomize-controller: Flux's two controllers, the
#                                        binaries hack/flux-assets.sh builds from the Go module
#                                        proxy (cached; $FLUX_ASSETS when set), for the deployment
#                                        status test. Static binaries and nothing else: both speak
#                                        Git and HTTP in Go (go-git; no git binary), and the test
#                                        serves Git and artifacts over plain HTTP (no CA bundle).
#
# It also builds kpoctl (DIR/bin/kpoctl) for the installed tour, run as a user on this machine.
#
# fn-fail and fn-sleep declare no user, as many function images do (they would run as root,
# group root, unless the pod says otherwise); the others run as 65532:65532.
# The function images' names do not end in a built-in's name, so kpo runs them as Jobs.
# internal/e2e/node names the same images.
set -euo pipefail

dir="${1:?usage: hack/node/images.sh DIR}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "${dir}/bin"
dir="$(cd "${dir}" && pwd)"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false"
cd "${root}"

build() { # OUT PKG [LDFLAGS]
  go build -trimpath -ldflags="-s -w ${3:-}" -o "${dir}/bin/$1" "$2"
}
build pause ./hack/node/cmd/pause
build mkimage ./hack/node/cmd/mkimage
build kpo-fn-wrapper ./cmd/kpo-fn-wrapper
build kpo-fn ./cmd/kpo-fn
build testfn-set-namespace ./hack/node/cmd/testfn "-X main.mode=run:set-namespace"
# The same function for the exec evaluator, on this machine (the node tier's benchmark).
build testfn-set-namespace-host ./hack/node/cmd/testfn "-X main.mode=run:set-namespace -X main.kpoFn=${dir}/bin/kpo-fn"
build testfn-fail ./hack/node/cmd/testfn "-X main.mode=fail"
build testfn-sleep ./hack/node/cmd/testfn "-X main.mode=sleep"
build manager ./cmd
build kpoctl ./cmd/kpoctl
flux="$("${root}/hack/flux-assets.sh")"

mk() { "${dir}/bin/mkimage" "$@"; }
b="${dir}/bin"
mk -o "${dir}/pause.tar" -name kpo.local/e2e/pause:v1 -entrypoint /pause /pause="${b}/pause"
mk -o "${dir}/kpo-fn-wrapper.tar" -name kpo.local/e2e/kpo-fn-wrapper:dev -entrypoint /kpo-fn-wrapper \
  /kpo-fn-wrapper="${b}/kpo-fn-wrapper"
mk -o "${dir}/fn-set-namespace.tar" -name kpo.local/e2e/fn-set-namespace:dev -entrypoint /usr/local/bin/function \
  /usr/local/bin/function="${b}/testfn-set-namespace" /usr/local/bin/kpo-fn="${b}/kpo-fn"
mk -o "${dir}/fn-fail.tar" -name kpo.local/e2e/fn-fail:dev -user "" -entrypoint /usr/local/bin/function \
  /usr/local/bin/function="${b}/testfn-fail"
mk -o "${dir}/fn-sleep.tar" -name kpo.local/e2e/fn-sleep:dev -user "" -entrypoint /usr/local/bin/function \
  /usr/local/bin/function="${b}/testfn-sleep"
mk -o "${dir}/kpo.tar" -name kpo.local/e2e/kpo:dev -entrypoint /manager \
  /manager="${b}/manager" /kpo-fn="${b}/kpo-fn" /kpo-fn-wrapper="${b}/kpo-fn-wrapper" /kpoctl="${b}/kpoctl"
for c in source-controller kustomize-controller; do
  mk -o "${dir}/flux-${c}.tar" -name "kpo.local/e2e/flux-${c}:dev" -entrypoint "/${c}" "/${c}=${flux}/${c}"
done
echo "${dir}"
