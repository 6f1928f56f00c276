// Package sharding tests kpo's sharding (--watch-label-selector over the kpo.dev/shard label of
// Repositories): several managers against one real kube-apiserver (envtest) and a real Git
// server, each serving its shard, none acting on another's Repositories, and a Repository moved
// from one shard to another handed over with its objects. It has no code besides its tests.
package sharding
