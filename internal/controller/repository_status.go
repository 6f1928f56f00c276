package controller

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
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
		cond.Reason = reasonOf(err)
		cond.Message = err.Error()
	}
	meta.SetStatusCondition(&repo.Status.Conditions, cond)
	repo.Status.ObservedGeneration = repo.Generation
}

// maxProblemsListed bounds how many package revisions the PackagesValid message names.
const maxProblemsListed = 10

// setPackagesValid sets a Repository's PackagesValid condition from the package revisions
// the sync could not represent: True (Valid) when there are none, otherwise False
// (InvalidPackages) naming the first maxProblemsListed of them, each with why and how to
// fix it.
func setPackagesValid(repo *kpov1.Repository, problems []discovery.Problem) {
	c := metav1.Condition{
		Type: kpov1.PackagesValidCondition, Status: metav1.ConditionTrue, Reason: kpov1.ValidReason,
		Message: "every package revision found in Git is synced", ObservedGeneration: repo.Generation,
	}
	if len(problems) > 0 {
		listed := make([]string, 0, min(len(problems), maxProblemsListed))
		for _, p := range problems[:min(len(problems), maxProblemsListed)] {
			listed = append(listed, p.String())
		}
		msg := fmt.Sprintf("%d package revision(s) found in Git are not synced, the others are: %s", len(problems), strings.Join(listed, "; "))
		if more := len(problems) - len(listed); more > 0 {
			msg += fmt.Sprintf("; and %d more", more)
		}
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, kpov1.InvalidPackagesReason, truncateMessage(msg)
	}
	meta.SetStatusCondition(&repo.Status.Conditions, c)
}
