package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// setDraftReady derives a PackageDraft's Ready from the last reconcile and the revision it
// produced: True once the revision exists (and, with spec.lifecycle, has reached it). Stalled is
// True, with Ready's reason and message, while only a change by the user helps (a terminal
// failure, the produced revision deleted, a lifecycle change refused for good) and absent
// otherwise: a Ready=False draft without Stalled is still under way (a Git failure retried).
func setDraftReady(draft *kpov1.PackageDraft, pr *kpov1.PackageRevision, err error) {
	cond := metav1.Condition{Type: kpov1.ReadyCondition, Status: metav1.ConditionTrue, Reason: kpov1.CreatedReason, ObservedGeneration: draft.Generation}
	want := draft.Spec.Lifecycle
	stalled := false
	switch {
	case err != nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, reasonOf(err), err.Error()
		stalled = isTerminal(err)
	case pr == nil && draft.Status.PackageRevision != "":
		cond.Status, cond.Reason = metav1.ConditionFalse, kpov1.SourceNotFoundReason
		cond.Message = fmt.Sprintf("package revision %s no longer exists", draft.Status.PackageRevision)
		stalled = true
	case pr == nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, kpov1.ProgressingReason, "creating the draft"
	case want != "" && pr.Status.Lifecycle != want && refusedTransition(pr) != nil:
		c := refusedTransition(pr)
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, c.Reason, c.Message
		stalled = true
	case want != "" && pr.Status.Lifecycle != want:
		cond.Status, cond.Reason = metav1.ConditionFalse, kpov1.ProgressingReason
		cond.Message = fmt.Sprintf("%s is %s, moving to %s", pr.Name, pr.Status.Lifecycle, want)
	default:
		cond.Message = fmt.Sprintf("%s is %s", pr.Name, pr.Status.Lifecycle)
	}
	meta.SetStatusCondition(&draft.Status.Conditions, cond)
	if stalled {
		meta.SetStatusCondition(&draft.Status.Conditions, metav1.Condition{Type: kpov1.StalledCondition, Status: metav1.ConditionTrue,
			Reason: cond.Reason, Message: cond.Message, ObservedGeneration: draft.Generation})
	} else {
		meta.RemoveStatusCondition(&draft.Status.Conditions, kpov1.StalledCondition)
	}
	draft.Status.ObservedGeneration = draft.Generation
}

// refusedTransition returns the Ready condition of a revision whose lifecycle change was refused
// for a reason only a person can resolve (the approved content changed, self-approval, a
// guardrail), so the PackageDraft that asked for it says so too; nil otherwise.
func refusedTransition(pr *kpov1.PackageRevision) *metav1.Condition {
	c := readyCondition(pr.Status.Conditions)
	if c == nil || c.Status != metav1.ConditionFalse {
		return nil
	}
	switch c.Reason {
	case kpov1.ApprovedContentChangedReason, kpov1.SelfApprovalForbiddenReason, kpov1.LifecycleConflictReason,
		kpov1.GuardrailFailedReason, kpov1.GuardrailErrorReason:
		return c
	}
	return nil
}
