package controller_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
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

// publishWebV2InGit publishes web/v2 on main as another tool would: a commit with its kpt line
// and a tag.
func publishWebV2InGit(t *testing.T, gitRepo *gitserver.Repo) {
	t.Helper()
	g := NewWithT(t)
	_, err := gitRepo.Commit("main", gitserver.Change{
		Files:   map[string]string{"web/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"},
		Message: "Approve web v2\n\nkpt:{\"package\":\"web\",\"workspaceName\":\"w2\",\"revision\":\"2\"}"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gitRepo.Tag("web/v2", "main")).To(Succeed())
}

func TestRepository_unchangedResync_writesNothingButItsOwnSyncRecord(t *testing.T) {
	g := NewWithT(t)
	ns, _, name := newDraftFixture(t)
	publish(t, ns, name)
	newDraft(t, ns, "api", "catalog", "api", "w", initSource(""))
	waitLifecycle(t, ns, waitDraft(t, ns, "api"), kpov1.LifecycleDraft)
	quiet(t, ns)

	syncNow(t, ns)
	g.Consistently(func() map[string]int { return managerRequests.Writes(ns) }, "2s", interval).Should(
		Or(BeEmpty(), Equal(map[string]int{"PATCH repositories/status catalog": 1})),
		"a resync that finds Git unchanged writes no PackageRevision, ConfigMap or event")
	g.Expect(managerRequests.Writes(ns)).To(Equal(map[string]int{"PATCH repositories/status catalog": 1}),
		"the requested sync is recorded once (status.lastHandledSyncRequest)")
}

func TestRepository_resyncAfterOneNewTag_writesOnlyForThatPackage(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	publish(t, ns, name)
	for _, pkg := range []string{"api", "db"} {
		newDraft(t, ns, pkg, "catalog", pkg, "w", initSource(""))
		publish(t, ns, waitDraft(t, ns, pkg))
	}
	quiet(t, ns)

	publishWebV2InGit(t, gitRepo)
	syncNow(t, ns)
	g.Eventually(func(g Gomega) {
		g.Expect(getRevision(g, ns, "catalog.web.w2").Status.Revision).To(Equal(2))
	}, timeout, interval).Should(Succeed())
	quiet := func() map[string]int { return managerRequests.Writes(ns) }
	g.Consistently(quiet, "1s", interval).ShouldNot(HaveKey(ContainSubstring(".api.")))
	writes := managerRequests.Writes(ns)
	for key := range writes {
		g.Expect(key).NotTo(Or(ContainSubstring("catalog.api."), ContainSubstring("catalog.db.")),
			"a new tag of web changes nothing of api and db")
	}
	g.Expect(writes).To(HaveKeyWithValue("POST packagerevisions", 1))
	g.Expect(writes).To(HaveKeyWithValue("PATCH packagerevisions/status catalog.web.w2", 1),
		"a new published revision gets its whole status, conditions included, in one write")
	g.Expect(writes).NotTo(HaveKey(HavePrefix("POST configmaps")), "published content is in a ConfigMap only on request")
	g.Expect(writes).To(HaveKeyWithValue("PATCH packagerevisions catalog.web.w2", 1),
		"the new revision's managed fields are dropped once")
	ready := meta.FindStatusCondition(getRevision(g, ns, "catalog.web.w2").Status.Conditions, kpov1.ReadyCondition)
	g.Expect(ready).NotTo(BeNil())
	g.Expect(ready.Status).To(Equal(metav1.ConditionTrue))
}

// A published revision read from Git carries no managed fields: the manager's record of its
// create and first status write would be most of the object in the API server's memory and in
// every `kubectl get`.
func TestRepository_publishedRevisionFromGit_keepsNoManagedFields(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	publish(t, ns, name)
	publishWebV2InGit(t, gitRepo)
	syncNow(t, ns)
	g.Eventually(func(g Gomega) {
		pr := &kpov1.PackageRevision{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "catalog.web.w2"}, pr)).To(Succeed())
		g.Expect(pr.Status.Revision).To(Equal(2))
		g.Expect(pr.Status.Conditions).NotTo(BeEmpty())
		g.Expect(pr.ManagedFields).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
}
