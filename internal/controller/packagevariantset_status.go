package controller

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// setOutcome is what a reconcile of a PackageVariantSet found, for its status.
type setOutcome struct {
	// variants counts the wanted PackageVariants, ready those of them Ready.
	variants, ready int32
	// notReady names the wanted variants that are not Ready (or not created yet).
	notReady []string
	// notOwned names the wanted variants whose name a PackageVariant the set does not own has.
	notOwned []string
	// rollout is the rollout's progress, when the set has spec.rollout.
	rollout *kpov1.RolloutStatus
}

// setVariantSetStatus derives what the PackageVariantSet reconciler owns on s from the outcome
// of a reconcile of generation: Ready (True, UpToDate, when every variant exists as wanted and
// is Ready and no rollout is under way), Stalled (True on a terminal failure, e.g.
// InvalidTemplate, or when a variant's name is taken), the counts, the rollout's progress and
// observedGeneration, which moves only when the generation was handled without a failure that
// a retry may clear. The counts stay as they were when the reconcile failed before computing
// them.
func setVariantSetStatus(s *kpov1.PackageVariantSet, generation int64, o setOutcome, err error) {
	ready := metav1.Condition{Type: kpov1.ReadyCondition, Status: metav1.ConditionTrue, Reason: kpov1.UpToDateReason,
		Message: fmt.Sprintf("all %d PackageVariants are Ready", o.variants), ObservedGeneration: generation}
	stalled := metav1.Condition{Type: kpov1.StalledCondition, Status: metav1.ConditionFalse, Reason: kpov1.ProgressingReason, ObservedGeneration: generation}
	var se *stepError
	switch {
	case err != nil && errors.As(err, &se) && se.Terminal:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, se.Reason, err.Error()
		stalled.Status, stalled.Reason, stalled.Message = metav1.ConditionTrue, se.Reason, err.Error()
	case err != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, reasonOf(err), err.Error()
		stalled.Message = "retrying"
	case len(o.notOwned) > 0:
		msg := fmt.Sprintf("PackageVariants %s exist and are not this set's: delete them, or change the template so the names differ", strings.Join(o.notOwned, ", "))
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, kpov1.VariantNotOwnedReason, msg
		stalled.Status, stalled.Reason, stalled.Message = metav1.ConditionTrue, kpov1.VariantNotOwnedReason, msg
	case o.rollout != nil && (len(o.rollout.Moving) > 0 || o.rollout.Waiting > 0):
		ready.Status, ready.Reason = metav1.ConditionFalse, kpov1.RolloutInProgressReason
		ready.Message = fmt.Sprintf("rolling out upstream %s: %d done, %d moving (%s), %d waiting",
			o.rollout.Revision, o.rollout.Done, len(o.rollout.Moving), strings.Join(o.rollout.Moving, ", "), o.rollout.Waiting)
		stalled.Message = ready.Message
	case o.ready < o.variants:
		ready.Status, ready.Reason = metav1.ConditionFalse, kpov1.WaitingForVariantsReason
		ready.Message = fmt.Sprintf("%d of %d PackageVariants are Ready", o.ready, o.variants)
		stalled.Message = ready.Message
	default:
		stalled.Reason, stalled.Message = kpov1.UpToDateReason, "nothing to do"
	}
	meta.SetStatusCondition(&s.Status.Conditions, ready)
	meta.SetStatusCondition(&s.Status.Conditions, stalled)
	if err == nil {
		s.Status.Variants, s.Status.ReadyVariants = o.variants, o.ready
		notReady := append([]string(nil), o.notReady...)
		sort.Strings(notReady)
		if len(notReady) > maxNotReady {
			notReady = notReady[:maxNotReady]
		}
		s.Status.NotReady = notReady
		s.Status.Rollout = o.rollout
	}
	if err == nil || (se != nil && se.Terminal) {
		s.Status.ObservedGeneration = generation
	}
}

// rolloutVariant is what a rollout knows of one wanted variant.
type rolloutVariant struct {
	Name string
	// Pinned is the upstream revision the variant's spec names (0: none, or no variant yet).
	Pinned int
	// Published is the upstream revision its newest published downstream revision is based on
	// (0: nothing published yet; -1: on a revision that is not there any more).
	Published int
}

// planRollout pins each variant's upstream revision for a rollout to revision target, at most
// maxConcurrent variants at a time. A variant with nothing published yet (a new one) starts on
// target at once: there is nothing to roll. Any other is done when its published downstream is
// based on target, moving when its spec names target and its downstream is not published yet,
// and waiting otherwise: it keeps the revision it has (its published one when its spec names
// none) until a slot frees, and slots go by name, so every reconcile picks the same ones.
func planRollout(target, maxConcurrent int, vs []rolloutVariant) (map[string]int, kpov1.RolloutStatus) {
	sort.Slice(vs, func(i, j int) bool { return vs[i].Name < vs[j].Name })
	pins := make(map[string]int, len(vs))
	progress := kpov1.RolloutStatus{Revision: "v" + strconv.Itoa(target)}
	var waiting []rolloutVariant
	for _, v := range vs {
		pinned := v.Pinned
		if pinned == 0 {
			pinned = v.Published
		}
		switch {
		case v.Published == 0:
			pins[v.Name] = target
		case pinned == target && v.Published == target:
			pins[v.Name] = target
			progress.Done++
		case pinned == target:
			pins[v.Name] = target
			progress.Moving = append(progress.Moving, v.Name)
		default:
			waiting = append(waiting, v)
		}
	}
	for _, v := range waiting {
		if len(progress.Moving) < maxConcurrent {
			pins[v.Name] = target
			progress.Moving = append(progress.Moving, v.Name)
			continue
		}
		pinned := v.Pinned
		if pinned == 0 {
			pinned = v.Published
		}
		if pinned < 1 {
			pinned = target // on a revision no longer there: nothing to stay on
		}
		pins[v.Name] = pinned
		progress.Waiting++
	}
	return pins, progress
}
