package controller

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
)

// committedContent is a content ConfigMap whose data the manager wrote at commit.
func committedContent(commit string, data map[string]string) *corev1.ConfigMap {
	files := map[string][]byte{}
	for k, v := range data {
		files[k] = []byte(v)
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "repo.pkg.ws", Annotations: map[string]string{
			kpov1.ContentCommitAnnotation: commit, kpov1.ContentDigestAnnotation: content.Digest(files)}},
		Data: data,
	}
}

func TestSetRevisionConditions_readyOnlyWhenGitAndContentAgree(t *testing.T) {
	const kptfileWithGate = "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: pkg\nstatus:\n  conditions:\n  - type: Approved\n    status: \"True\"\n    reason: Reviewed\n"
	draft := func(mutate func(*kpov1.PackageRevision)) *kpov1.PackageRevision {
		pr := &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
		pr.Spec.Lifecycle, pr.Status.Lifecycle = kpov1.LifecycleDraft, kpov1.LifecycleDraft
		pr.Status.Commit, pr.Status.Ref = "c1", "refs/heads/drafts/pkg/ws"
		if mutate != nil {
			mutate(pr)
		}
		return pr
	}
	edited := committedContent("c1", map[string]string{"Kptfile": "x"})
	edited.Data["Kptfile"] = "edited"
	for _, tt := range []struct {
		name   string
		pr     *kpov1.PackageRevision
		cm     *corev1.ConfigMap
		err    error
		status metav1.ConditionStatus
		reason string
	}{
		{"up to date", draft(nil), committedContent("c1", map[string]string{"Kptfile": "x"}), nil, metav1.ConditionTrue, kpov1.UpToDateReason},
		{"no content config map", draft(nil), nil, nil, metav1.ConditionTrue, kpov1.UpToDateReason},
		{"failed step", draft(nil), nil, terminal(kpov1.InvalidContentReason, errors.New("bad yaml")), metav1.ConditionFalse, kpov1.InvalidContentReason},
		{"content too large", draft(func(pr *kpov1.PackageRevision) {
			pr.Status.ContentError = &kpov1.ContentError{Reason: kpov1.PackageTooLargeReason, Message: "2 MiB"}
		}), nil, nil, metav1.ConditionFalse, kpov1.PackageTooLargeReason},
		{"not read yet", draft(func(pr *kpov1.PackageRevision) { pr.Status.Lifecycle = "" }), nil, nil, metav1.ConditionUnknown, kpov1.ProgressingReason},
		{"transition under way", draft(func(pr *kpov1.PackageRevision) { pr.Spec.Lifecycle = kpov1.LifecycleProposed }), nil, nil,
			metav1.ConditionFalse, kpov1.ProgressingReason},
		{"edit not committed", draft(nil), edited, nil, metav1.ConditionFalse, kpov1.ContentPendingReason},
		{"content of another commit", draft(nil), committedContent("c0", map[string]string{"Kptfile": "x"}), nil,
			metav1.ConditionFalse, kpov1.ContentPendingReason},
		{"published content is not checked for edits", draft(func(pr *kpov1.PackageRevision) {
			pr.Spec.Lifecycle, pr.Status.Lifecycle = kpov1.LifecyclePublished, kpov1.LifecyclePublished
		}), committedContent("c0", nil), nil, metav1.ConditionTrue, kpov1.UpToDateReason},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			setRevisionConditions(tt.pr, tt.cm, tt.err)
			c := meta.FindStatusCondition(tt.pr.Status.Conditions, kpov1.ReadyCondition)
			g.Expect(c.Status).To(Equal(tt.status), c.Message)
			g.Expect(c.Reason).To(Equal(tt.reason))
			g.Expect(c.ObservedGeneration).To(Equal(int64(2)))
			g.Expect(tt.pr.Status.ObservedGeneration).To(Equal(int64(2)))
		})
	}

	t.Run("kptfile conditions are mirrored and dropped, kpo's own kept", func(t *testing.T) {
		g := NewWithT(t)
		pr := draft(nil)
		cm := committedContent("c1", map[string]string{"Kptfile": kptfileWithGate})
		meta.SetStatusCondition(&pr.Status.Conditions, metav1.Condition{Type: kpov1.RenderedCondition, Status: metav1.ConditionTrue, Reason: kpov1.RenderSucceededReason})
		setRevisionConditions(pr, cm, nil)
		g.Expect(meta.IsStatusConditionTrue(pr.Status.Conditions, "Approved")).To(BeTrue())
		g.Expect(meta.FindStatusCondition(pr.Status.Conditions, kpov1.RenderedCondition)).NotTo(BeNil())
		g.Expect(meta.FindStatusCondition(pr.Status.Conditions, kpov1.ContentValidCondition)).NotTo(BeNil())

		setRevisionConditions(pr, committedContent("c1", map[string]string{"Kptfile": "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: pkg\n"}), nil)
		g.Expect(meta.FindStatusCondition(pr.Status.Conditions, "Approved")).To(BeNil())
		g.Expect(meta.FindStatusCondition(pr.Status.Conditions, kpov1.RenderedCondition)).NotTo(BeNil())
	})
}

func TestContentValidCondition_followsTheGitProjection(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status kpov1.PackageRevisionStatus
		want   metav1.ConditionStatus
		reason string
	}{
		{"valid", kpov1.PackageRevisionStatus{Commit: "c"}, metav1.ConditionTrue, kpov1.ValidReason},
		{"not read", kpov1.PackageRevisionStatus{}, metav1.ConditionUnknown, kpov1.ProgressingReason},
		{"cannot be stored", kpov1.PackageRevisionStatus{Commit: "c", ContentError: &kpov1.ContentError{Reason: kpov1.InvalidContentReason}},
			metav1.ConditionFalse, kpov1.InvalidContentReason},
		{"stored with a warning", kpov1.PackageRevisionStatus{Commit: "c", ContentWarning: &kpov1.ContentError{Reason: kpov1.InvalidKptfileReason}},
			metav1.ConditionFalse, kpov1.InvalidKptfileReason},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := contentValidCondition(&kpov1.PackageRevision{Status: tt.status})
			g.Expect(c.Status).To(Equal(tt.want))
			g.Expect(c.Reason).To(Equal(tt.reason))
		})
	}
}
