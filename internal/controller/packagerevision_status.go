package controller

import (
	"fmt"
	"regexp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/kptfile"
)

// setRevisionReady marks a PackageRevision as equal to its Git ref, or not, with reason.
func setRevisionReady(pr *kpov1.PackageRevision, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&pr.Status.Conditions, metav1.Condition{
		Type: kpov1.ReadyCondition, Status: status, Reason: reason, Message: message,
		ObservedGeneration: pr.Generation,
	})
	pr.Status.ObservedGeneration = pr.Generation
}

// setRevisionConditions derives Ready from the last reconcile of a PackageRevision and its
// projection of Git, and mirrors the Kptfile's status conditions (readiness gates read them).
func setRevisionConditions(pr *kpov1.PackageRevision, cm *corev1.ConfigMap, err error) {
	status, reason, message := metav1.ConditionTrue, kpov1.UpToDateReason, ""
	switch {
	case err != nil:
		status, reason, message = metav1.ConditionFalse, reasonOf(err), err.Error()
	case pr.Status.ContentError != nil:
		status, reason, message = metav1.ConditionFalse, pr.Status.ContentError.Reason, pr.Status.ContentError.Message
	case pr.Status.Lifecycle == "":
		status, reason, message = metav1.ConditionUnknown, kpov1.ProgressingReason, "not read from Git yet"
	case pr.Spec.Lifecycle != pr.Status.Lifecycle:
		status, reason = metav1.ConditionFalse, kpov1.ProgressingReason
		message = fmt.Sprintf("moving from %s to %s", pr.Status.Lifecycle, pr.Spec.Lifecycle)
	case contentPending(pr, cm) != "":
		status, reason, message = metav1.ConditionFalse, kpov1.ContentPendingReason, contentPending(pr, cm)
	default:
		message = fmt.Sprintf("%s at commit %s", pr.Status.Ref, shortHash(pr.Status.Commit))
	}
	setRevisionReady(pr, status, reason, message)
	meta.SetStatusCondition(&pr.Status.Conditions, contentValidCondition(pr))
	setConflictsCondition(pr)
	if cm != nil || !immutableContent(pr) {
		// A published revision's content never changes: what was mirrored while it was a
		// proposal, or while its content was last requested, stays true without it.
		mirrorKptfileConditions(pr, cm)
	}
}

// contentPending says why a Draft's or a proposal's content ConfigMap and its Git head
// disagree ("" when they agree): an edit not committed yet, or content read from another
// commit than the one the revision stands at. Such a revision is not Ready.
func contentPending(pr *kpov1.PackageRevision, cm *corev1.ConfigMap) string {
	if cm == nil || (pr.Status.Lifecycle != kpov1.LifecycleDraft && pr.Status.Lifecycle != kpov1.LifecycleProposed) {
		return ""
	}
	if c := cm.Annotations[kpov1.ContentCommitAnnotation]; c != pr.Status.Commit {
		return fmt.Sprintf("content config map %s holds commit %s, the revision stands at %s", cm.Name, shortHash(c), shortHash(pr.Status.Commit))
	}
	files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
	if err != nil || content.Digest(files) != cm.Annotations[kpov1.ContentDigestAnnotation] {
		return fmt.Sprintf("content config map %s holds an edit that is not committed yet", cm.Name)
	}
	return ""
}

// kptfileReasonPattern is what metav1.Condition accepts as a reason.
var kptfileReasonPattern = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

// mirrorKptfileConditions copies the conditions of the Kptfile's status into the
// PackageRevision's, as Porch does, and removes mirrored ones the Kptfile no longer has. Every
// condition type other than Ready, Rendered, ContentValid, GuardrailsPassed and
// DownstreamsValidated is the Kptfile's.
func mirrorKptfileConditions(pr *kpov1.PackageRevision, cm *corev1.ConfigMap) {
	var want []kptfile.Condition
	if cm != nil {
		if kf, err := kptfile.Decode([]byte(cm.Data[kptfile.FileName])); err == nil && kf.Status != nil {
			want = kf.Status.Conditions
		}
	}
	keep := map[string]bool{kpov1.ReadyCondition: true, kpov1.RenderedCondition: true, kpov1.ContentValidCondition: true,
		kpov1.GuardrailsPassedCondition: true, kpov1.DownstreamsValidatedCondition: true,
		kpov1.ConflictsResolvedCondition: true}
	for _, c := range want {
		if keep[c.Type] || c.Type == "" {
			continue
		}
		reason := c.Reason
		if !kptfileReasonPattern.MatchString(reason) {
			reason = "Kptfile"
		}
		status := metav1.ConditionStatus(c.Status)
		if status != metav1.ConditionTrue && status != metav1.ConditionFalse {
			status = metav1.ConditionUnknown
		}
		meta.SetStatusCondition(&pr.Status.Conditions, metav1.Condition{
			Type: c.Type, Status: status, Reason: reason, Message: c.Message, ObservedGeneration: pr.Generation,
		})
		keep[c.Type] = true
	}
	for _, c := range slices.Clone(pr.Status.Conditions) {
		if !keep[c.Type] {
			meta.RemoveStatusCondition(&pr.Status.Conditions, c.Type)
		}
	}
}

// contentValidCondition says whether the files last read from Git are valid: False with
// status.contentError's reason when they could not be stored, False with
// status.contentWarning's reason (InvalidKptfile, InvalidContent) when they are stored but
// not valid, Unknown before the first read, True (Valid) otherwise.
func contentValidCondition(pr *kpov1.PackageRevision) metav1.Condition {
	c := metav1.Condition{
		Type: kpov1.ContentValidCondition, Status: metav1.ConditionTrue, Reason: kpov1.ValidReason,
		Message: "the files read from Git are valid", ObservedGeneration: pr.Generation,
	}
	switch st := pr.Status; {
	case st.ContentError != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, st.ContentError.Reason, st.ContentError.Message
	case st.ContentWarning != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, st.ContentWarning.Reason, st.ContentWarning.Message
	case st.Commit == "":
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, kpov1.ProgressingReason, "not read from Git yet"
	}
	return c
}

// setGuardrailsCondition mirrors status.guardrails in the GuardrailsPassed condition: True
// (Passed) or False (GuardrailFailed, GuardrailError) naming the guardrail and the commit;
// removed when there is no result.
func setGuardrailsCondition(pr *kpov1.PackageRevision) {
	g := pr.Status.Guardrails
	if g == nil {
		meta.RemoveStatusCondition(&pr.Status.Conditions, kpov1.GuardrailsPassedCondition)
		return
	}
	status := metav1.ConditionFalse
	if g.Reason == kpov1.PassedReason {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&pr.Status.Conditions, metav1.Condition{
		Type: kpov1.GuardrailsPassedCondition, Status: status, Reason: g.Reason,
		Message:            fmt.Sprintf("commit %s: %s", shortHash(g.Commit), g.Message),
		ObservedGeneration: pr.Generation,
	})
}

// setDownstreamsCondition mirrors status.downstreamValidation in the DownstreamsValidated
// condition: True (AllClean) or False (DownstreamsFailing) with the summary; removed when
// there is none.
func setDownstreamsCondition(pr *kpov1.PackageRevision) {
	dv := pr.Status.DownstreamValidation
	if dv == nil {
		meta.RemoveStatusCondition(&pr.Status.Conditions, kpov1.DownstreamsValidatedCondition)
		return
	}
	status, reason := metav1.ConditionTrue, kpov1.AllCleanReason
	for _, r := range dv.Results {
		if r.Result != kpov1.DownstreamClean {
			status, reason = metav1.ConditionFalse, kpov1.DownstreamsFailingReason
		}
	}
	meta.SetStatusCondition(&pr.Status.Conditions, metav1.Condition{
		Type: kpov1.DownstreamsValidatedCondition, Status: status, Reason: reason,
		Message: dv.Summary, ObservedGeneration: pr.Generation,
	})
}
