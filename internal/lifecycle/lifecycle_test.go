package lifecycle

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

func revision(spec, status kpov1.Lifecycle, conds ...metav1.Condition) *kpov1.PackageRevision {
	pr := &kpov1.PackageRevision{}
	pr.Name, pr.Generation = "r", 2
	pr.Spec.Lifecycle, pr.Status.Lifecycle, pr.Status.Conditions = spec, status, conds
	return pr
}

func TestPlan_movesOnlyFromTheLifecyclesEachMoveApplies(t *testing.T) {
	for _, tc := range []struct {
		t    Transition
		from kpov1.Lifecycle
		to   kpov1.Lifecycle // empty: refused
	}{
		{Propose, kpov1.LifecycleDraft, kpov1.LifecycleProposed},
		{Propose, kpov1.LifecyclePublished, ""},
		{Approve, kpov1.LifecycleProposed, kpov1.LifecyclePublished},
		{Approve, kpov1.LifecycleDraft, ""},
		{Approve, kpov1.LifecycleDeletionProposed, ""},
		{Reject, kpov1.LifecycleProposed, kpov1.LifecycleDraft},
		{Reject, kpov1.LifecycleDeletionProposed, kpov1.LifecyclePublished},
		{Reject, kpov1.LifecycleDraft, ""},
		{ProposeDelete, kpov1.LifecyclePublished, kpov1.LifecycleDeletionProposed},
		{ProposeDelete, kpov1.LifecycleDraft, ""},
	} {
		t.Run(tc.t.Name+" from "+string(tc.from), func(t *testing.T) {
			g := NewWithT(t)
			to, err := Plan(revision(tc.from, tc.from), tc.t)
			if tc.to == "" {
				g.Expect(err).To(MatchError(ContainSubstring("cannot")))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(to).To(Equal(tc.to))
		})
	}
}

func TestPlan_refusesAMovingRevisionAFailedReadyAndFailedGuardrails(t *testing.T) {
	g := NewWithT(t)
	_, err := Plan(revision(kpov1.LifecycleProposed, kpov1.LifecycleDraft), Approve)
	g.Expect(err).To(MatchError(ContainSubstring("is moving from Draft to Proposed")))

	failedReady := metav1.Condition{Type: kpov1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "Broken", Message: "no", ObservedGeneration: 2}
	_, err = Plan(revision(kpov1.LifecycleDraft, kpov1.LifecycleDraft, failedReady), Propose)
	var blocked *BlockedError
	g.Expect(err).To(BeAssignableToTypeOf(blocked))
	g.Expect(err).To(MatchError("packagerevision r: Broken: no"))
	// Reject needs no Ready revision; a condition of an older generation, or progress, blocks nothing.
	_, err = Plan(revision(kpov1.LifecycleProposed, kpov1.LifecycleProposed, failedReady), Reject)
	g.Expect(err).NotTo(HaveOccurred())
	failedReady.ObservedGeneration = 1
	_, err = Plan(revision(kpov1.LifecycleDraft, kpov1.LifecycleDraft, failedReady), Propose)
	g.Expect(err).NotTo(HaveOccurred())
	progressing := metav1.Condition{Type: kpov1.ReadyCondition, Status: metav1.ConditionFalse, Reason: kpov1.ProgressingReason, ObservedGeneration: 2}
	_, err = Plan(revision(kpov1.LifecycleDraft, kpov1.LifecycleDraft, progressing), Propose)
	g.Expect(err).NotTo(HaveOccurred())

	guardrails := metav1.Condition{Type: kpov1.GuardrailsPassedCondition, Status: metav1.ConditionFalse, Reason: kpov1.GuardrailFailedReason, Message: "team label missing"}
	_, err = Plan(revision(kpov1.LifecycleDraft, kpov1.LifecycleDraft, guardrails), Propose)
	g.Expect(err).To(MatchError(ContainSubstring("team label missing")))
	// Guardrails hold back proposals only.
	_, err = Plan(revision(kpov1.LifecycleProposed, kpov1.LifecycleProposed, guardrails), Approve)
	g.Expect(err).NotTo(HaveOccurred())
}

func TestContentLoaded_saysWhenAndWhyNot(t *testing.T) {
	g := NewWithT(t)
	pr := revision(kpov1.LifecyclePublished, kpov1.LifecyclePublished)
	g.Expect(ContentLoaded(pr)).To(BeFalse())
	pr.Status.ResourcesRef = &corev1.LocalObjectReference{Name: "cm"}
	g.Expect(ContentLoaded(pr)).To(BeTrue())
	pr.Status.ContentError = &kpov1.ContentError{Reason: "InvalidKptfile", Message: "bad"}
	_, err := ContentLoaded(pr)
	g.Expect(err).To(MatchError("packagerevision r has no content: InvalidKptfile: bad"))
}

func TestUpgradeAndRollbackDrafts_nameTheirWorkspaceAfterTheRevisions(t *testing.T) {
	g := NewWithT(t)
	rev := func(name string, n int) *kpov1.PackageRevision {
		pr := &kpov1.PackageRevision{}
		pr.Name, pr.Spec.Repository, pr.Spec.PackageName, pr.Status.Revision = name, "west", "app", n
		return pr
	}
	target, src := UpgradeDraft(rev("west.app.v3", 3), rev("bp.app.v1", 1), rev("bp.app.v2", 2), "", "", true)
	g.Expect(target).To(Equal(DraftTarget{Repository: "west", PackageName: "app", Workspace: "upgrade-v3-to-upstream-v2"}))
	g.Expect(src.Upgrade.OldUpstream.Name).To(Equal("bp.app.v1"))
	g.Expect(src.Upgrade.NewUpstream.Name).To(Equal("bp.app.v2"))
	g.Expect(src.Upgrade.Current.Name).To(Equal("west.app.v3"))
	g.Expect(src.Upgrade.AllowConflicts).To(BeTrue())
	target, _ = UpgradeDraft(rev("west.app.v3", 3), rev("bp.app.v1", 1), rev("bp.app.v2", 2), "mine", "", false)
	g.Expect(target.Workspace).To(Equal("mine"))

	target, src = RollbackDraft(rev("west.app.v3", 3), rev("west.app.v1", 1), "")
	g.Expect(target.Workspace).To(Equal("rollback-v3-to-v1"))
	g.Expect(src.Copy.SourceRef.Name).To(Equal("west.app.v1"))
}
