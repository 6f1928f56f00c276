package controller

import (
	"errors"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// setVariantStatus derives what the PackageVariant reconciler owns on v from the outcome of a
// reconcile of generation: the downstream targets, Ready (True, reason UpToDate, when the
// downstream is up to date with the spec and the upstream; False with the reason it waits for
// or failed with), Stalled (True when only a change by the user helps: a terminal failure) and
// observedGeneration, which moves only when the generation was handled without a failure that
// a retry may clear.
func setVariantStatus(v *kpov1.PackageVariant, generation int64, targets []kpov1.DownstreamTarget, waiting, waitingMessage string, err error) {
	ready := metav1.Condition{Type: kpov1.ReadyCondition, Status: metav1.ConditionTrue, Reason: kpov1.UpToDateReason,
		Message: "the downstream package is up to date", ObservedGeneration: generation}
	stalled := metav1.Condition{Type: kpov1.StalledCondition, Status: metav1.ConditionFalse, Reason: kpov1.ProgressingReason, ObservedGeneration: generation}
	var se *stepError
	switch {
	case err != nil && errors.As(err, &se) && se.Terminal:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, se.Reason, err.Error()
		stalled.Status, stalled.Reason, stalled.Message = metav1.ConditionTrue, se.Reason, err.Error()
	case err != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, reasonOf(err), err.Error()
		stalled.Message = "retrying"
	case waiting != "":
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, waiting, waitingMessage
		stalled.Message = waitingMessage
	default:
		stalled.Reason, stalled.Message = kpov1.UpToDateReason, "nothing to do"
	}
	meta.SetStatusCondition(&v.Status.Conditions, ready)
	meta.SetStatusCondition(&v.Status.Conditions, stalled)
	if targets != nil || err == nil {
		v.Status.DownstreamTargets = targets
	}
	if err == nil || (se != nil && se.Terminal) {
		v.Status.ObservedGeneration = generation
	}
}
