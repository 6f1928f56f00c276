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
		stalled bool
	}{
		{"created", "", revision(kpov1.LifecycleDraft, nil), nil, metav1.ConditionTrue, kpov1.CreatedReason, "repo.pkg.ws is Draft", false},
		{"creating", "", nil, nil, metav1.ConditionUnknown, kpov1.ProgressingReason, "creating the draft", false},
		{"refused", "", nil, terminal(kpov1.DuplicateWorkspaceReason, errors.New("taken")), metav1.ConditionFalse, kpov1.DuplicateWorkspaceReason, "taken", true},
		{"creation failing, retried", "", nil, &stepError{Reason: kpov1.GitErrorReason, Err: errors.New("push failed")},
			metav1.ConditionFalse, kpov1.GitErrorReason, "push failed", false},
		{"produced and deleted since", "", nil, nil, metav1.ConditionFalse, kpov1.SourceNotFoundReason, "package revision repo.pkg.gone no longer exists", true},
		{"declared lifecycle reached", kpov1.LifecyclePublished, revision(kpov1.LifecyclePublished, nil), nil, metav1.ConditionTrue, kpov1.CreatedReason, "repo.pkg.ws is Published", false},
		{"on its way", kpov1.LifecyclePublished, revision(kpov1.LifecycleProposed, nil), nil, metav1.ConditionFalse, kpov1.ProgressingReason,
			"repo.pkg.ws is Proposed, moving to Published", false},
		{"on its way through a transient failure", kpov1.LifecyclePublished, revision(kpov1.LifecycleProposed, failing), nil,
			metav1.ConditionFalse, kpov1.ProgressingReason, "repo.pkg.ws is Proposed, moving to Published", false},
		{"approval refused by the revision", kpov1.LifecyclePublished, revision(kpov1.LifecycleProposed, refused), nil,
			metav1.ConditionFalse, kpov1.ApprovedContentChangedReason, "moved", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			draft := &kpov1.PackageDraft{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			draft.Spec.Lifecycle = tt.want
			if tt.name == "produced and deleted since" {
				draft.Status.PackageRevision = "repo.pkg.gone"
			}
			// A Stalled condition left by an earlier reconcile goes when the draft moves on.
			draft.Status.Conditions = []metav1.Condition{{Type: kpov1.StalledCondition, Status: metav1.ConditionTrue, Reason: "Earlier"}}
			setDraftReady(draft, tt.pr, tt.err)
			c := meta.FindStatusCondition(draft.Status.Conditions, kpov1.ReadyCondition)
			g.Expect(c.Status).To(Equal(tt.status))
			g.Expect(c.Reason).To(Equal(tt.reason))
			g.Expect(c.Message).To(Equal(tt.message))
			g.Expect(draft.Status.ObservedGeneration).To(Equal(int64(3)))
			stalled := meta.FindStatusCondition(draft.Status.Conditions, kpov1.StalledCondition)
			if !tt.stalled {
				g.Expect(stalled).To(BeNil(), "not Stalled: still under way")
				return
			}
			g.Expect(stalled).NotTo(BeNil())
			g.Expect([]string{string(stalled.Status), stalled.Reason, stalled.Message}).To(Equal([]string{"True", tt.reason, tt.message}))
		})
	}
}
