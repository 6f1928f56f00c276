package controller_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// quiet waits until the manager has sent no write in ns for a second, and resets the count.
func quiet(t testing.TB, ns string) {
	t.Helper()
	NewWithT(t).Eventually(func() map[string]int {
		writes := managerRequests.Writes(ns)
		managerRequests.Reset()
		return writes
	}, timeout, time.Second).Should(BeEmpty())
}

func TestRepository_unchangedResync_writesNothingButItsOwnSyncRecord(t *testing.T) {
	g := NewWithT(t)
	ns, _, name := newDraftFixture(t)
	publish(t, ns, name)
	newDraft(t, ns, "api", "catalog", "api", "w", initSource(""))
	waitLifecycle(t, ns, waitDraft(t, ns, "api"), kpov1.LifecycleDraft)
	quiet(t, ns)

	syncNow(t, ns, "catalog")
	g.Consistently(func() map[string]int { return managerRequests.Writes(ns) }, "2s", interval).Should(
		Or(BeEmpty(), Equal(map[string]int{"PATCH repositories/status": 1})),
		"a resync that finds Git unchanged writes no PackageRevision, ConfigMap or event")
	g.Expect(managerRequests.Writes(ns)).To(Equal(map[string]int{"PATCH repositories/status": 1}),
		"the requested sync is recorded once (status.lastHandledSyncRequest)")
}
