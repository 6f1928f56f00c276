package controller

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

func TestSetDraftReady_saysWhereTheRevisionStands(t *testing.T) {
	revision := func(l kpov1.Lifecycle, ready *metav1.Condition) *kpov1.PackageRevision {
		pr := &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Name: "repo.pkg.ws"}}
		pr.Status.Lifecycle = l
		if ready != nil {
			pr.Status.Conditions = []metav1.Condition{*ready}
		}
		return pr
	}
	refused := &metav1.Condition{Type: kpov1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: kpov1.ApprovedContentChangedReason, Message: "moved"}
	failing := &metav1.Condition{Type: kpov1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: kpov1.GitErrorReason, Message: "push failed"}
	for _, tt := range []struct {
		name    string
		want    kpov1.Lifecycle
		pr      *kpov1.PackageRevision
		err     error
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"created", "", revision(kpov1.LifecycleDraft, nil), nil, metav1.ConditionTrue, kpov1.CreatedReason, "repo.pkg.ws is Draft"},
		{"creating", "", nil, nil, metav1.ConditionUnknown, kpov1.ProgressingReason, "creating the draft"},
		{"refused", "", nil, terminal(kpov1.DuplicateWorkspaceReason, errors.New("taken")), metav1.ConditionFalse, kpov1.DuplicateWorkspaceReason, "taken"},
		{"declared lifecycle reached", kpov1.LifecyclePublished, revision(kpov1.LifecyclePublished, nil), nil, metav1.ConditionTrue, kpov1.CreatedReason, "repo.pkg.ws is Published"},
		{"on its way", kpov1.LifecyclePublished, revision(kpov1.LifecycleProposed, nil), nil, metav1.ConditionFalse, kpov1.ProgressingReason,
			"repo.pkg.ws is Proposed, moving to Published"},
		{"on its way through a transient failure", kpov1.LifecyclePublished, revision(kpov1.LifecycleProposed, failing), nil,
			metav1.ConditionFalse, kpov1.ProgressingReason, "repo.pkg.ws is Proposed, moving to Published"},
		{"approval refused by the revision", kpov1.LifecyclePublished, revision(kpov1.LifecycleProposed, refused), nil,
			metav1.ConditionFalse, kpov1.ApprovedContentChangedReason, "moved"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			draft := &kpov1.PackageDraft{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			draft.Spec.Lifecycle = tt.want
			setDraftReady(draft, tt.pr, tt.err)
			c := meta.FindStatusCondition(draft.Status.Conditions, kpov1.ReadyCondition)
			g.Expect(c.Status).To(Equal(tt.status))
			g.Expect(c.Reason).To(Equal(tt.reason))
			g.Expect(c.Message).To(Equal(tt.message))
			g.Expect(draft.Status.ObservedGeneration).To(Equal(int64(3)))
		})
	}
}
