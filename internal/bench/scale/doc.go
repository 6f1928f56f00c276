// Package scale is kpo's scale benchmark (`make bench-scale`, hack/benchscale): it generates
// Git repositories of R repositories × P packages × T published tags (plus a few drafts),
// serves them with kpo's test Git server, starts a fresh envtest control plane and the real
// manager binary as a process, registers the repositories and measures, per size, the time
// until everything is Ready, the manager's peak RSS, kube-apiserver's RSS, etcd's size, the
// API requests the manager sent, list times, the authoring latency and the writes of two
// resyncs.
//
// It is a benchmark, not a test: nothing here asserts a target, and neither CI nor `make
// test` runs it. It needs Linux (/proc), git, and KUBEBUILDER_ASSETS.
package scale
