package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/testenv"
)

// revisionReady waits for a PackageRevision's Ready condition to have status and reason.
func revisionReady(t testing.TB, ns, name string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var cond metav1.Condition
	NewWithT(t).Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(status), c.Message)
		g.Expect(c.Reason).To(Equal(reason), c.Message)
		cond = *c
	}, timeout, interval).Should(Succeed())
	return cond
}

// syncNow asks for an immediate sync of the fixtures' Repository, catalog, and waits until it
// is done.
func syncNow(t testing.TB, ns string) {
	const name = "catalog"
	t.Helper()
	g := NewWithT(t)
	token := requestSync(g, ns)
	g.Eventually(func(g Gomega) {
		repo := &kpov1.Repository{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, repo)).To(Succeed())
		g.Expect(repo.Status.LastHandledSyncRequest).To(Equal(token))
	}, timeout, interval).Should(Succeed())
}

func TestPackageDraft_relabelledRevision_cannotHijackADeclarativeApproval(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo := newCatalogFixture(t)
	alice := userClient(t, ns, "alice", "kpo-author")
	bob := userClient(t, ns, "bob", "kpo-approver")

	// Alice's own draft, with content nobody approved.
	mine := &kpov1.PackageDraft{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns},
		Spec: kpov1.PackageDraftSpec{Repository: "catalog", PackageName: "web", WorkspaceName: "w", Source: initSource("")}}
	g.Expect(alice.Create(context.Background(), mine)).To(Succeed())
	name := waitDraft(t, ns, "mine")
	waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	cm := contentOf(g, ns, name)
	cm.Data["admin.yaml"] = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: alice-admin\n" +
		"roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\n" +
		"subjects:\n- kind: User\n  name: alice\n"
	g.Expect(alice.Update(context.Background(), cm)).To(Succeed())

	// Bob approves a PackageDraft of his own, declaratively; it collides with Alice's workspace.
	approved := &kpov1.PackageDraft{ObjectMeta: metav1.ObjectMeta{Name: "approved", Namespace: ns},
		Spec: kpov1.PackageDraftSpec{Repository: "catalog", PackageName: "web", WorkspaceName: "w", Source: initSource(""),
			Lifecycle: kpov1.LifecyclePublished}}
	g.Expect(bob.Create(context.Background(), approved)).To(Succeed())
	cond := draftCondition(t, ns, "approved", metav1.ConditionFalse)
	g.Expect(cond.Reason).To(Equal(kpov1.DuplicateWorkspaceReason))

	// Relabelling her revision as Bob's draft's is refused, for her and for a cluster admin.
	for who, c := range map[string]client.Client{"alice": alice, "admin": k8sClient} {
		pr := getRevision(g, ns, name)
		patch := client.MergeFrom(pr.DeepCopy())
		pr.Labels[kpov1.DraftLabel] = "approved"
		err := c.Patch(context.Background(), pr, patch)
		g.Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "%s relabelled: %v", who, err)
		g.Expect(err.Error()).To(ContainSubstring(kpov1.DraftLabel))
	}

	// Nothing is published; Bob's PackageDraft still says why.
	g.Consistently(func(g Gomega) {
		g.Expect(gitRepo.Refs()).NotTo(HaveKey("refs/tags/web/v1"))
		g.Expect(getRevision(g, ns, name).Status.Lifecycle).To(Equal(kpov1.LifecycleDraft))
	}, "2s", interval).Should(Succeed())
	g.Expect(draftCondition(t, ns, "approved", metav1.ConditionFalse).Reason).To(Equal(kpov1.DuplicateWorkspaceReason))
}

// managerClient acts as the manager's identity, which the admission policies exempt.
func managerClient(t testing.TB) client.Client {
	t.Helper()
	c, err := client.New(testenv.ManagerConfig(adminConfig), client.Options{Scheme: k8sClient.Scheme()})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return c
}

func TestPackageDraft_crashBeforeLabelling_adoptsItsOwnRevisionFromGit(t *testing.T) {
	g := NewWithT(t)
	ns, _, name := newDraftFixture(t)

	// The state a SIGKILL between creating the revision and labelling it leaves: a revision
	// without the draft label, and a PackageDraft that has not recorded it. (The manager's
	// identity removes the label: users cannot.)
	manager := managerClient(t)
	pr := getRevision(g, ns, name)
	patch := client.MergeFrom(pr.DeepCopy())
	delete(pr.Labels, kpov1.DraftLabel)
	g.Expect(manager.Patch(context.Background(), pr, patch)).To(Succeed())
	d := &kpov1.PackageDraft{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
	statusPatch := client.MergeFrom(d.DeepCopy())
	d.Status.PackageRevision, d.Status.Conditions = "", nil
	g.Expect(manager.Status().Patch(context.Background(), d, statusPatch)).To(Succeed())
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
	patch = client.MergeFrom(d.DeepCopy())
	d.Annotations = map[string]string{"test/poke": "1"}
	g.Expect(k8sClient.Patch(context.Background(), d, patch)).To(Succeed())

	g.Eventually(func(g Gomega) {
		d := &kpov1.PackageDraft{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		c := meta.FindStatusCondition(d.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(d.Status.PackageRevision).To(Equal(name))
		g.Expect(getRevision(g, ns, name).Labels).To(HaveKeyWithValue(kpov1.DraftLabel, "web"))
	}, timeout, interval).Should(Succeed())
}

func TestPackageRevision_proposalMovedAfterApproval_isNotPublished(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecycleProposed)).To(Succeed())
	seen := waitLifecycle(t, ns, name, kpov1.LifecycleProposed).Status.Commit

	// Another writer moves the proposal behind kpo's back; the approver saw the old commit.
	moved, err := gitRepo.Commit("proposed/web/w", gitserver.Change{
		Files:   map[string]string{"web/unreviewed.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unreviewed\n"},
		Message: "Edit web\n\nkpt:{\"package\":\"web\",\"workspaceName\":\"w\",\"revision\":\"0\",\"task\":{\"type\":\"edit\"}}"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecyclePublished)).To(Succeed())
	pr := getRevision(g, ns, name)
	g.Expect(pr.Annotations).To(HaveKeyWithValue(kpov1.ApprovedCommitAnnotation, seen))

	cond := revisionReady(t, ns, name, metav1.ConditionFalse, kpov1.ApprovedContentChangedReason)
	g.Expect(cond.Message).To(ContainSubstring(seen[:12]))
	g.Expect(cond.Message).To(ContainSubstring(moved[:12]))
	g.Expect(gitRepo.Refs()).NotTo(HaveKey("refs/tags/web/v1"))
	g.Expect(getRevision(g, ns, name).Status.Lifecycle).To(Equal(kpov1.LifecycleProposed))

	// Withdraw, look again (a sync reads the new head), approve again: the new head is published.
	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecycleProposed)).To(Succeed())
	syncNow(t, ns)
	g.Eventually(func(g Gomega) {
		g.Expect(getRevision(g, ns, name).Status.Commit).To(Equal(moved))
	}, timeout, interval).Should(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecyclePublished)).To(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecyclePublished)
	parents, err := gitOut(t, gitRepo, "log", "-1", "--format=%P", "refs/tags/web/v1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Fields(parents)).To(ContainElement(moved))
}

func TestPackageDraft_declarativeApproval_publishesOnlyTheCommitItsStatusShowed(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo := newCatalogFixture(t)

	d := newDraft(t, ns, "web", "catalog", "web", "w", initSource(""))
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Lifecycle = kpov1.LifecycleProposed
	g.Expect(k8sClient.Patch(context.Background(), d, patch)).To(Succeed())
	name := waitDraft(t, ns, "web")
	seen := waitLifecycle(t, ns, name, kpov1.LifecycleProposed).Status.Commit
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(d), d)).To(Succeed())
		g.Expect(d.Status.Commit).To(Equal(seen))
	}, timeout, interval).Should(Succeed())

	// The proposal moves behind kpo's back before the approver's PackageDraft is reconciled.
	moved, err := gitRepo.Commit("proposed/web/w", gitserver.Change{
		Files:   map[string]string{"web/unreviewed.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unreviewed\n"},
		Message: "Edit web\n\nkpt:{\"package\":\"web\",\"workspaceName\":\"w\",\"revision\":\"0\",\"task\":{\"type\":\"edit\"}}"})
	g.Expect(err).NotTo(HaveOccurred())
	patch = client.MergeFrom(d.DeepCopy())
	d.Spec.Lifecycle = kpov1.LifecyclePublished
	g.Expect(k8sClient.Patch(context.Background(), d, patch)).To(Succeed())
	g.Expect(d.Annotations).To(HaveKeyWithValue(kpov1.ApprovedCommitAnnotation, seen), "the policy stamps what the status showed")

	cond := draftCondition(t, ns, "web", metav1.ConditionFalse)
	g.Eventually(func(g Gomega) {
		cond = draftCondition(t, ns, "web", metav1.ConditionFalse)
		g.Expect(cond.Reason).To(Equal(kpov1.ApprovedContentChangedReason), cond.Message)
	}, timeout, interval).Should(Succeed())
	g.Expect(cond.Message).To(ContainSubstring(moved[:12]))
	g.Expect(gitRepo.Refs()).NotTo(HaveKey("refs/tags/web/v1"))
	g.Expect(getRevision(g, ns, name).Status.Lifecycle).To(Equal(kpov1.LifecycleProposed))
}

func TestRepository_forbidSelfApproval_refusesAnApproverWhoEdited(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo := newCatalogFixture(t, func(r *kpov1.Repository) {
		r.Spec.Approval = &kpov1.ApprovalRules{ForbidSelfApproval: true}
	})
	alice := userClient(t, ns, "alice", "kpo-author")
	bob := userClient(t, ns, "bob", "kpo-approver")
	carol := userClient(t, ns, "carol", "kpo-approver")

	newDraft(t, ns, "web", "catalog", "web", "w", initSource(""))
	name := waitDraft(t, ns, "web")
	waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	for i, c := range []client.Client{alice, bob} {
		g.Eventually(func(g Gomega) {
			cm := contentOf(g, ns, name)
			cm.Data[fmt.Sprintf("edit-%d.yaml", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edit-%d\n", i)
			g.Expect(c.Update(context.Background(), cm)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		g.Eventually(func(g Gomega) {
			out, err := gitOut(t, gitRepo, "show", "refs/heads/drafts/web/w:web/"+fmt.Sprintf("edit-%d.yaml", i))
			g.Expect(err).NotTo(HaveOccurred(), out)
		}, timeout, interval).Should(Succeed())
	}
	// Git names the editors as authors, the manager as committer.
	log, err := gitOut(t, gitRepo, "log", "--format=%an|%cn", "refs/heads/drafts/web/w")
	g.Expect(err).NotTo(HaveOccurred())
	lines := strings.Split(strings.TrimSpace(log), "\n")
	g.Expect(lines[0]).To(Equal("bob|kpo"))
	g.Expect(lines[1]).To(Equal("alice|kpo"))

	g.Expect(setLifecycle(alice, ns, name, kpov1.LifecycleProposed)).To(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	g.Expect(setLifecycle(bob, ns, name, kpov1.LifecyclePublished)).To(Succeed())
	cond := revisionReady(t, ns, name, metav1.ConditionFalse, kpov1.SelfApprovalForbiddenReason)
	g.Expect(cond.Message).To(ContainSubstring("bob edited"))
	g.Expect(gitRepo.Refs()).NotTo(HaveKey("refs/tags/web/v1"))

	g.Expect(setLifecycle(bob, ns, name, kpov1.LifecycleProposed)).To(Succeed(), "withdrawing an approval not carried out")
	waitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	g.Expect(setLifecycle(carol, ns, name, kpov1.LifecyclePublished)).To(Succeed())
	pr := waitLifecycle(t, ns, name, kpov1.LifecyclePublished)
	g.Expect(pr.Status.PublishedBy).To(Equal("carol"))
}

func TestPackageRevision_editedByCannotBeForged(t *testing.T) {
	g := NewWithT(t)
	ns, _, name := newDraftFixture(t)
	alice := userClient(t, ns, "alice", "kpo-author")

	cm := contentOf(g, ns, name)
	cm.Annotations[kpov1.EditedByAnnotation] = "someone-else"
	cm.Data["x.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
	g.Expect(alice.Update(context.Background(), cm)).To(Succeed(), "the stamp overwrites what the client sent")
	g.Expect(contentOf(g, ns, name).Annotations[kpov1.EditedByAnnotation]).To(SatisfyAny(Equal("alice"), BeEmpty()))

	cm = contentOf(g, ns, name)
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Annotations[kpov1.EditedByAnnotation] = "someone-else"
	err := alice.Patch(context.Background(), cm, patch)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "an annotation-only change: %v", err)
}
