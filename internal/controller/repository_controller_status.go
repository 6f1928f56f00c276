package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// setRepositoryReady derives Ready from the outcome of a reconcile and moves
// observedGeneration: True/Synced after a full sync, False with the step's reason otherwise.
func setRepositoryReady(repo *kpov1.Repository, err error) {
	cond := metav1.Condition{
		Type:               kpov1.ReadyCondition,
		Status:             metav1.ConditionTrue,
		Reason:             kpov1.SyncedReason,
		Message:            fmt.Sprintf("synced %d packages at commit %s", repo.Status.PackageCount, shortHash(repo.Status.Commit)),
		ObservedGeneration: repo.Generation,
	}
	if err != nil {
		cond.Status = metav1.ConditionFalse
		cond.Reason = reasonOf(err, kpov1.GitErrorReason)
		cond.Message = err.Error()
	}
	meta.SetStatusCondition(&repo.Status.Conditions, cond)
	repo.Status.ObservedGeneration = repo.Generation
}

// setRevisionReady marks a PackageRevision as equal to its Git ref, or not, with reason.
func setRevisionReady(pr *kpov1.PackageRevision, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&pr.Status.Conditions, metav1.Condition{
		Type: kpov1.ReadyCondition, Status: status, Reason: reason, Message: message,
		ObservedGeneration: pr.Generation,
	})
	pr.Status.ObservedGeneration = pr.Generation
}

func readyCondition(conds []metav1.Condition) *metav1.Condition {
	return meta.FindStatusCondition(conds, kpov1.ReadyCondition)
}

func isReady(conds []metav1.Condition) bool {
	return meta.IsStatusConditionTrue(conds, kpov1.ReadyCondition)
}

func metav1Now() metav1.Time { return metav1.Now() }

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
