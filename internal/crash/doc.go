// Package crash holds kpo's crash test: the real manager binary runs as a process against a
// real kube-apiserver (envtest) and a real Git server, and is SIGKILLed at random points while
// workers drive mixed lifecycle traffic (drafts, edits, proposals, approvals, deletions, and
// deletions of published revisions proposed, approved or withdrawn) and PackageVariant traffic
// (variants created, upgraded, re-customised, deleted). After a last restart the test waits for
// the manager to converge and checks what must hold after any crash: tags consecutive without
// gaps (but those of approved deletions) or duplicates, no orphaned branch or PackageRevision,
// nothing left of an approved deletion and every other published revision's tag where it was
// published, every accepted edit in Git, every object Ready, one open draft at most per variant
// and its downstream based on its upstream, nothing left of a deleted variant. It has no code
// besides its tests.
//
// `make test` runs a short version; `make test-crash` a long one. KPO_CRASH_SEED,
// KPO_CRASH_OPS, KPO_CRASH_DURATION, KPO_CRASH_WORKERS, KPO_CRASH_CONVERGE and KPO_CRASH_KILL
// tune a run (see crashConfig in crash_test.go). The checker of the invariants has its own test
// against a real Git server and a fake client, so a failure of the crash test is the manager's.
package crash
