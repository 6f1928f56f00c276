// Package e2e holds kpo's end-to-end tests: the manager, a real kube-apiserver (envtest), a real
// Git server and a real GitOps consumer (Flux's source-controller and kustomize-controller, as
// processes built by hack/flux-assets.sh) working together. It has no code besides its tests.
package e2e
