package controller_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

func TestPackageRevision_upstreamPublishesV2_downstreamsShowTheyAreBehind(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	newEmptyRepository(t, srv, ns, "blueprints")
	newEmptyRepository(t, srv, ns, "east", func(r *kpov1.Repository) { r.Spec.Deployment = true })
	newEmptyRepository(t, srv, ns, "west", func(r *kpov1.Repository) { r.Spec.Deployment = true })

	newDraft(t, ns, "base-v1", "blueprints", "base", "v1", initSource("base"))
	v1 := publish(t, ns, waitDraft(t, ns, "base-v1"))
	var downstreams []string
	for _, repo := range []string{"east", "west"} {
		newDraft(t, ns, repo, repo, "app", "first", kpov1.PackageDraftSource{
			Clone: &kpov1.CloneSource{UpstreamRef: &kpov1.LocalReference{Name: v1.Name}}})
		downstreams = append(downstreams, publish(t, ns, waitDraft(t, ns, repo)).Name)
	}
	deployable := &kpov1.PackageRevisionList{}
	g.Expect(k8sClient.List(context.Background(), deployable, client.InNamespace(ns),
		client.MatchingLabels{kpov1.DeploymentLabel: "true", kpov1.LatestRevisionLabel: "true"})).To(Succeed())
	g.Expect(deployable.Items).To(HaveLen(2), "the published revisions of the deployment repositories are labelled")
	for _, d := range downstreams {
		g.Eventually(func(g Gomega) {
			pr := getRevision(g, ns, d)
			g.Expect(pr.Status.UpstreamRevision).To(Equal(v1.Name))
			g.Expect(pr.Status.LatestUpstreamRevision).To(Equal(v1.Name))
			g.Expect(pr.Labels).NotTo(HaveKey(kpov1.UpstreamBehindLabel))
		}, timeout, interval).Should(Succeed())
	}

	newDraft(t, ns, "base-v2", "blueprints", "base", "v2", copySource(v1.Name))
	v2 := publish(t, ns, waitDraft(t, ns, "base-v2"))
	g.Eventually(func(g Gomega) {
		behind := &kpov1.PackageRevisionList{}
		g.Expect(k8sClient.List(context.Background(), behind, client.InNamespace(ns),
			client.MatchingLabels{kpov1.UpstreamBehindLabel: "true"})).To(Succeed())
		var names []string
		for _, pr := range behind.Items {
			names = append(names, pr.Name)
			g.Expect(pr.Status.LatestUpstreamRevision).To(Equal(v2.Name))
		}
		g.Expect(names).To(ConsistOf(downstreams))
	}, timeout, interval).Should(Succeed())
}
