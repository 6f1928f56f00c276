package controller

import (
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
)

func TestSetRepositoryReady_reasonFollowsTheOutcome(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"synced", nil, metav1.ConditionTrue, kpov1.SyncedReason, "synced 3 packages at commit 0123456789ab"},
		{"classified failure", &stepError{Reason: kpov1.AuthenticationFailedReason, Err: errors.New("refused")},
			metav1.ConditionFalse, kpov1.AuthenticationFailedReason, "refused"},
		{"wrapped classified failure", fmt.Errorf("fetching: %w", &stepError{Reason: kpov1.BranchNotFoundReason, Err: errors.New("no main")}),
			metav1.ConditionFalse, kpov1.BranchNotFoundReason, "fetching: no main"},
		{"anything else", errors.New("disk full"), metav1.ConditionFalse, kpov1.GitErrorReason, "disk full"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			repo := &kpov1.Repository{ObjectMeta: metav1.ObjectMeta{Generation: 4}}
			repo.Status.PackageCount, repo.Status.Commit = 3, "0123456789abcdef"
			setRepositoryReady(repo, tt.err)
			c := meta.FindStatusCondition(repo.Status.Conditions, kpov1.ReadyCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(tt.status))
			g.Expect(c.Reason).To(Equal(tt.reason))
			g.Expect(c.Message).To(Equal(tt.message))
			g.Expect(c.ObservedGeneration).To(Equal(int64(4)))
			g.Expect(repo.Status.ObservedGeneration).To(Equal(int64(4)))
		})
	}
}

func TestSetPackagesValid_namesEveryProblemUpToTheLimit(t *testing.T) {
	problem := func(i int) discovery.Problem {
		return discovery.Problem{Revision: discovery.Revision{Package: fmt.Sprintf("pkg%d", i), Ref: "refs/tags/x/v1"}, Message: "too long"}
	}
	for _, tt := range []struct {
		name     string
		problems int
		status   metav1.ConditionStatus
		reason   string
		contains []string
	}{
		{"none", 0, metav1.ConditionTrue, kpov1.ValidReason, []string{"every package revision"}},
		{"one", 1, metav1.ConditionFalse, kpov1.InvalidPackagesReason, []string{"1 package revision(s)", "pkg0", "too long"}},
		{"more than listed", maxProblemsListed + 2, metav1.ConditionFalse, kpov1.InvalidPackagesReason, []string{"pkg9", "and 2 more"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			var problems []discovery.Problem
			for i := range tt.problems {
				problems = append(problems, problem(i))
			}
			repo := &kpov1.Repository{}
			setPackagesValid(repo, problems)
			c := meta.FindStatusCondition(repo.Status.Conditions, kpov1.PackagesValidCondition)
			g.Expect(c.Status).To(Equal(tt.status))
			g.Expect(c.Reason).To(Equal(tt.reason))
			for _, s := range tt.contains {
				g.Expect(c.Message).To(ContainSubstring(s))
			}
			g.Expect(c.Message).NotTo(ContainSubstring(fmt.Sprintf("pkg%d ", maxProblemsListed)))
		})
	}
}

func TestSyncDue_onlyWhenGitMustBeRead(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(-d)); return &t }
	ready := []metav1.Condition{{Type: kpov1.ReadyCondition, Status: metav1.ConditionTrue}}
	synced := func(mutate func(*kpov1.Repository)) *kpov1.Repository {
		repo := &kpov1.Repository{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
		repo.Status.ObservedGeneration, repo.Status.LastSyncTime, repo.Status.Conditions = 2, ago(time.Minute), ready
		if mutate != nil {
			mutate(repo)
		}
		return repo
	}
	for _, tt := range []struct {
		name string
		repo *kpov1.Repository
		due  bool
		wait time.Duration
	}{
		{"synced a minute ago", synced(nil), false, DefaultSyncInterval - time.Minute},
		{"interval up", synced(func(r *kpov1.Repository) { r.Status.LastSyncTime = ago(DefaultSyncInterval) }), true, 0},
		{"own interval", synced(func(r *kpov1.Repository) {
			r.Spec.Sync = &kpov1.RepositorySync{Interval: &metav1.Duration{Duration: 90 * time.Second}}
		}), false, 30 * time.Second},
		{"new generation", synced(func(r *kpov1.Repository) { r.Generation = 3 }), true, 0},
		{"sync requested", synced(func(r *kpov1.Repository) { r.Annotations = map[string]string{kpov1.SyncRequestedAnnotation: "now"} }), true, 0},
		{"request handled", synced(func(r *kpov1.Repository) {
			r.Annotations = map[string]string{kpov1.SyncRequestedAnnotation: "now"}
			r.Status.LastHandledSyncRequest = "now"
		}), false, DefaultSyncInterval - time.Minute},
		{"never synced", synced(func(r *kpov1.Repository) { r.Status.LastSyncTime = nil }), true, 0},
		{"last sync failed", synced(func(r *kpov1.Repository) { r.Status.Conditions = nil }), true, 0},
		{"runOnceAt passed since", synced(func(r *kpov1.Repository) { r.Spec.Sync = &kpov1.RepositorySync{RunOnceAt: ago(time.Second)} }), true, 0},
		{"runOnceAt before the last sync", synced(func(r *kpov1.Repository) { r.Spec.Sync = &kpov1.RepositorySync{RunOnceAt: ago(time.Hour)} }),
			false, DefaultSyncInterval - time.Minute},
		{"runOnceAt ahead", synced(func(r *kpov1.Repository) { r.Spec.Sync = &kpov1.RepositorySync{RunOnceAt: ago(-10 * time.Second)} }),
			false, 10 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			due, wait := syncDue(tt.repo, now)
			g.Expect(due).To(Equal(tt.due))
			g.Expect(wait).To(Equal(tt.wait))
		})
	}
}
