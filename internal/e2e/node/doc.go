// Package node is the node test tier (make e2e): kpo installed from dist/install.yaml on a real
// single-node cluster (hack/node/cluster.sh: kube-apiserver, kube-controller-manager,
// kube-scheduler, containerd and a kubelet on this machine), its manager running as a pod,
// renders pipelines whose functions run as real Jobs, in real pods and containers, from images
// built from this repository (hack/node/images.sh), and whose published revisions Flux's
// controllers, also pods of the node, deploy into it; and kpo's web UI installed from
// dist/install-ui.yaml, a pod without credentials that users sign in to with their own
// service-account tokens. Its tests run only inside `hack/node/cluster.sh run`, which brings
// the node up and always tears it down; elsewhere (go test ./...) they say so and pass.
package node
