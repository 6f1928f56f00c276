package node_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
)

// TestVariant_deletionWithTheRealGarbageCollector: PackageVariants of basens v1 into the
// deployments Repository, deleted as a user deletes them (kubectl delete, background
// cascade), with kube-controller-manager's garbage collector doing its part. With
// deletionPolicy delete, the variant's first revision is published (alice proposes, bob
// approves) and a change of its annotations starts a second draft through a PackageDraft it
// owns; once the variant is deleted its PackageDraft is gone (the collector deletes it, the
// variant having released its finalizer), its draft revision is gone with its Git branch, and
// its published revision is proposed for deletion, its tag kept. With deletionPolicy orphan,
// the variant's draft, its branch and its PackageDraft stay, none of them the variant's any
// more, so that the collector leaves the PackageDraft alone.
func TestVariant_deletionWithTheRealGarbageCollector(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newSamplesFixture(t, "kpo-variant-")
	deleted := newVariant(t, f.ns, "deleted", kpov1.DeletionPolicyDelete)
	orphaned := newVariant(t, f.ns, "orphaned", kpov1.DeletionPolicyOrphan)
	first := waitVariantDraft(t, deleted, "packagevariant-1")
	orphanedDraft := waitVariantDraft(t, orphaned, "packagevariant-1")

	f.kpoctl(t, f.alice, "rpkg", "propose", first.Name)
	f.kpoctl(t, f.bob, "rpkg", "approve", first.Name)
	waitTag(g, f.deployments, deleted.Spec.Downstream.Package, "v1")
	// A new annotation changes what the published revision should be: a customised copy.
	out, err := kubectl(f.alice, "-n", f.ns, "patch", "packagevariant", deleted.Name, "--type", "merge",
		"-p", `{"spec":{"annotations":{"example.com/tier":"gold"}}}`)
	g.Expect(err).NotTo(HaveOccurred(), out)
	second := waitVariantDraft(t, deleted, "packagevariant-2")
	secondBranch := draftBranchOf(second)
	_, err = f.deployments.RefHash(secondBranch)
	g.Expect(err).NotTo(HaveOccurred(), "the second draft's branch")

	// delete: the published revision is proposed for deletion, the rest goes.
	deleteVariant(g, f, deleted)
	g.Eventually(func(g Gomega) {
		g.Expect(ownDrafts(g, deleted)).To(BeEmpty(), "the collector deleted the variant's PackageDrafts")
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(second), &kpov1.PackageRevision{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the draft %s is deleted: %v", second.Name, err)
		_, err = f.deployments.RefHash(secondBranch)
		g.Expect(err).To(MatchError(gitserver.ErrRefNotFound), "the draft's branch is deleted")
		pr := &kpov1.PackageRevision{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(first), pr)).To(Succeed())
		g.Expect(pr.Spec.Lifecycle).To(Equal(kpov1.LifecycleDeletionProposed))
		g.Expect(pr.Status.Lifecycle).To(Equal(kpov1.LifecycleDeletionProposed))
		g.Expect(pr.Status.Revision).To(Equal(1))
	}, timeout, interval).Should(Succeed())
	_, err = f.deployments.RefHash("refs/tags/" + deleted.Spec.Downstream.Package + "/v1")
	g.Expect(err).NotTo(HaveOccurred(), "the published revision's tag stays until an approver deletes it")

	// orphan: everything stays, unowned. The variant being gone does not say that the collector
	// has looked at what it owned; a ConfigMap the variant owns does, once the collector has
	// deleted it (it takes up all of a deleted owner's dependents together). The PackageDraft,
	// released by the variant before it went, must still be there then.
	drafts := ownDrafts(g, orphaned)
	g.Expect(drafts).To(HaveLen(1))
	witness := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "collector-witness", Namespace: f.ns,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: kpov1.GroupVersion.String(), Kind: "PackageVariant", Name: orphaned.Name, UID: orphaned.UID}}}}
	g.Expect(k8sClient.Create(ctx, witness)).To(Succeed())
	deleteVariant(g, f, orphaned)
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(witness), &corev1.ConfigMap{}))
	}, timeout, interval).Should(BeTrue(), "the collector deleted the variant's ConfigMap")
	d := &kpov1.PackageDraft{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&drafts[0]), d)).To(Succeed())
	g.Expect(d.DeletionTimestamp).To(BeNil())
	g.Expect(d.OwnerReferences).To(BeEmpty())
	g.Expect(d.Labels).NotTo(HaveKey(kpov1.PackageVariantLabel))
	pr := &kpov1.PackageRevision{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(orphanedDraft), pr)).To(Succeed())
	g.Expect(pr.DeletionTimestamp).To(BeNil())
	g.Expect(pr.Labels).NotTo(HaveKey(kpov1.PackageVariantLabel))
	g.Expect(pr.Status.Lifecycle).To(Equal(kpov1.LifecycleDraft))
	_, err = f.deployments.RefHash(draftBranchOf(orphanedDraft))
	g.Expect(err).NotTo(HaveOccurred(), "the orphaned draft's branch")
}

// newVariant creates PackageVariant name of basens v1 into package name of the deployments
// Repository, with the given deletion policy.
func newVariant(t *testing.T, ns, name string, policy kpov1.DeletionPolicy) *kpov1.PackageVariant {
	t.Helper()
	pv := &kpov1.PackageVariant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kpov1.PackageVariantSpec{
			Upstream:       kpov1.UpstreamPackage{Repo: "blueprints", Package: "basens", Revision: "v1"},
			Downstream:     kpov1.DownstreamPackage{Repo: "deployments", Package: name},
			DeletionPolicy: policy,
		},
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), pv)).To(Succeed())
	return pv
}

// waitVariantDraft waits until the variant is Ready for its generation with its draft in
// workspace ws as its one target, produced by a PackageDraft it owns, and returns that draft.
func waitVariantDraft(t *testing.T, pv *kpov1.PackageVariant, ws string) *kpov1.PackageRevision {
	t.Helper()
	ctx := context.Background()
	name := pv.Spec.Downstream.Repo + "." + pv.Spec.Downstream.Package + "." + ws
	pr := &kpov1.PackageRevision{}
	NewWithT(t).Eventually(func(g Gomega) {
		cur := &kpov1.PackageVariant{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pv), cur)).To(Succeed())
		c := meta.FindStatusCondition(cur.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(c.ObservedGeneration).To(Equal(cur.Generation))
		g.Expect(cur.Status.DownstreamTargets).To(ConsistOf(HaveField("Name", name)))
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: pv.Namespace, Name: name}, pr)).To(Succeed())
		g.Expect(pr.Status.Lifecycle).To(Equal(kpov1.LifecycleDraft))
		g.Expect(pr.Labels).To(HaveKeyWithValue(kpov1.PackageVariantLabel, pv.Name))
		g.Expect(ownDrafts(g, cur)).To(ContainElement(HaveField("Status.PackageRevision", name)))
	}, timeout, interval).Should(Succeed())
	return pr
}

// ownDrafts are the PackageDrafts the variant controls: those the garbage collector deletes
// after it.
func ownDrafts(g Gomega, pv *kpov1.PackageVariant) []kpov1.PackageDraft {
	list := &kpov1.PackageDraftList{}
	g.Expect(k8sClient.List(context.Background(), list, client.InNamespace(pv.Namespace))).To(Succeed())
	var out []kpov1.PackageDraft
	for _, d := range list.Items {
		if metav1.IsControlledBy(&d, pv) {
			out = append(out, d)
		}
	}
	return out
}

// deleteVariant deletes the variant as alice would, with kubectl's default background
// cascade, and waits until it is gone: its deletion policy applied, its finalizer released.
func deleteVariant(g Gomega, f *samplesFixture, pv *kpov1.PackageVariant) {
	out, err := kubectl(f.alice, "-n", f.ns, "delete", "packagevariant", pv.Name, "--cascade=background", "--wait=false")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(pv), &kpov1.PackageVariant{}))
	}, timeout, interval).Should(BeTrue(), "PackageVariant %s is gone", pv.Name)
}

// draftBranchOf is the Git branch of a draft revision.
func draftBranchOf(pr *kpov1.PackageRevision) string {
	return draftRef(pr.Spec.PackageName, pr.Spec.WorkspaceName)
}
