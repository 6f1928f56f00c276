package controller

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

func TestSetVariantSetStatus_readyAndStalledFollowTheOutcome(t *testing.T) {
	for _, tt := range []struct {
		name              string
		outcome           setOutcome
		err               error
		ready, stalled    metav1.ConditionStatus
		reason            string
		observed, counted bool
		wantNotReady      []string
	}{
		{name: "all ready", outcome: setOutcome{variants: 2, ready: 2},
			ready: metav1.ConditionTrue, stalled: metav1.ConditionFalse, reason: kpov1.UpToDateReason, observed: true, counted: true},
		{name: "some not ready", outcome: setOutcome{variants: 2, ready: 1, notReady: []string{"b"}},
			ready: metav1.ConditionFalse, stalled: metav1.ConditionFalse, reason: kpov1.WaitingForVariantsReason, observed: true, counted: true, wantNotReady: []string{"b"}},
		{name: "a name taken", outcome: setOutcome{variants: 1, notOwned: []string{"a"}, notReady: []string{"a"}},
			ready: metav1.ConditionFalse, stalled: metav1.ConditionTrue, reason: kpov1.VariantNotOwnedReason, observed: true, counted: true, wantNotReady: []string{"a"}},
		{name: "rollout under way", outcome: setOutcome{variants: 3, ready: 3, rollout: &kpov1.RolloutStatus{Revision: "v2", Done: 1, Moving: []string{"b"}, Waiting: 1}},
			ready: metav1.ConditionFalse, stalled: metav1.ConditionFalse, reason: kpov1.RolloutInProgressReason, observed: true, counted: true},
		{name: "invalid template", err: terminal(kpov1.InvalidTemplateReason, errors.New("spec.targets[0]: bad")),
			ready: metav1.ConditionFalse, stalled: metav1.ConditionTrue, reason: kpov1.InvalidTemplateReason, observed: true},
		{name: "retryable failure", err: &stepError{Reason: kpov1.UpstreamNotFoundReason, Err: errors.New("no upstream")},
			ready: metav1.ConditionFalse, stalled: metav1.ConditionFalse, reason: kpov1.UpstreamNotFoundReason},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s := &kpov1.PackageVariantSet{Status: kpov1.PackageVariantSetStatus{ObservedGeneration: 1, Variants: 9}}
			setVariantSetStatus(s, 2, tt.outcome, tt.err)
			ready := meta.FindStatusCondition(s.Status.Conditions, kpov1.ReadyCondition)
			stalled := meta.FindStatusCondition(s.Status.Conditions, kpov1.StalledCondition)
			g.Expect(ready.Status).To(Equal(tt.ready))
			g.Expect(ready.Reason).To(Equal(tt.reason))
			g.Expect(stalled.Status).To(Equal(tt.stalled))
			g.Expect(ready.ObservedGeneration).To(BeEquivalentTo(2))
			if tt.observed {
				g.Expect(s.Status.ObservedGeneration).To(BeEquivalentTo(2))
			} else {
				g.Expect(s.Status.ObservedGeneration).To(BeEquivalentTo(1))
			}
			if tt.counted {
				g.Expect(s.Status.Variants).To(Equal(tt.outcome.variants))
				g.Expect(s.Status.NotReady).To(Equal(tt.wantNotReady))
				g.Expect(s.Status.Rollout).To(Equal(tt.outcome.rollout))
			} else {
				g.Expect(s.Status.Variants).To(BeEquivalentTo(9), "a failed reconcile keeps the last counts")
			}
		})
	}
}

func TestPlanRollout_movesAtMostMaxConcurrent(t *testing.T) {
	for _, tt := range []struct {
		name     string
		variants []rolloutVariant
		wantPins map[string]int
		want     kpov1.RolloutStatus
	}{{
		name:     "new variants start on the target at once",
		variants: []rolloutVariant{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		wantPins: map[string]int{"a": 2, "b": 2, "c": 2},
		want:     kpov1.RolloutStatus{Revision: "v2"},
	}, {
		name: "the first wave: two by name, the others keep their revision",
		variants: []rolloutVariant{{Name: "d", Pinned: 1, Published: 1}, {Name: "a", Pinned: 1, Published: 1},
			{Name: "c", Published: 1}, {Name: "b", Pinned: 1, Published: 1}},
		wantPins: map[string]int{"a": 2, "b": 2, "c": 1, "d": 1},
		want:     kpov1.RolloutStatus{Revision: "v2", Moving: []string{"a", "b"}, Waiting: 2},
	}, {
		name: "a wave waits for its publication; a published one frees a slot",
		variants: []rolloutVariant{{Name: "a", Pinned: 2, Published: 2}, {Name: "b", Pinned: 2, Published: 1},
			{Name: "c", Pinned: 1, Published: 1}, {Name: "d", Pinned: 1, Published: 1}},
		wantPins: map[string]int{"a": 2, "b": 2, "c": 2, "d": 1},
		want:     kpov1.RolloutStatus{Revision: "v2", Done: 1, Moving: []string{"b", "c"}, Waiting: 1},
	}, {
		name:     "done",
		variants: []rolloutVariant{{Name: "a", Pinned: 2, Published: 2}, {Name: "b", Published: 2}},
		wantPins: map[string]int{"a": 2, "b": 2},
		want:     kpov1.RolloutStatus{Revision: "v2", Done: 2},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			pins, progress := planRollout(2, 2, tt.variants)
			g.Expect(pins).To(Equal(tt.wantPins))
			g.Expect(progress).To(Equal(tt.want))
		})
	}
}
