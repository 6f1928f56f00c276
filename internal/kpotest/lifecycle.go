// Package kpotest holds what kpo's test tiers share to drive PackageRevisions as a user does:
// patch spec.lifecycle, wait for Git to follow, publish. Tests only.
package kpotest

import (
	"context"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// Revisions drives the PackageRevisions of a cluster through Client, waiting up to Timeout.
type Revisions struct {
	Client            client.Client
	Timeout, Interval time.Duration
}

// Get reads a PackageRevision.
func (r Revisions) Get(g gomega.Gomega, ns, name string) *kpov1.PackageRevision {
	pr := &kpov1.PackageRevision{}
	g.Expect(r.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pr)).To(gomega.Succeed())
	return pr
}

// SetLifecycle patches spec.lifecycle as `kubectl patch` would, with c.
func SetLifecycle(c client.Client, ns, name string, l kpov1.Lifecycle) error {
	pr := &kpov1.PackageRevision{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pr); err != nil {
		return err
	}
	patch := client.MergeFrom(pr.DeepCopy())
	pr.Spec.Lifecycle = l
	return c.Patch(context.Background(), pr, patch)
}

// WaitLifecycle waits until Git holds lifecycle l for the revision and it is Ready for its
// current generation.
func (r Revisions) WaitLifecycle(t testing.TB, ns, name string, l kpov1.Lifecycle) *kpov1.PackageRevision {
	t.Helper()
	var pr *kpov1.PackageRevision
	gomega.NewWithT(t).Eventually(func(g gomega.Gomega) {
		pr = r.Get(g, ns, name)
		g.Expect(pr.Status.Lifecycle).To(gomega.Equal(l))
		c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(gomega.BeNil())
		g.Expect(c.Status).To(gomega.Equal(metav1.ConditionTrue), c.Message)
		g.Expect(c.ObservedGeneration).To(gomega.Equal(pr.Generation))
	}, r.Timeout, r.Interval).Should(gomega.Succeed())
	return pr
}

// Publish proposes and approves a draft with Client (an approver) and waits for the tag.
func (r Revisions) Publish(t testing.TB, ns, name string) *kpov1.PackageRevision {
	t.Helper()
	g := gomega.NewWithT(t)
	g.Expect(SetLifecycle(r.Client, ns, name, kpov1.LifecycleProposed)).To(gomega.Succeed())
	r.WaitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	g.Expect(SetLifecycle(r.Client, ns, name, kpov1.LifecyclePublished)).To(gomega.Succeed())
	return r.WaitLifecycle(t, ns, name, kpov1.LifecyclePublished)
}
