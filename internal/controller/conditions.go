package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

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
