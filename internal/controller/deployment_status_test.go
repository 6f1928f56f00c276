package controller_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitops"
	"kpo.dev/kpo/internal/gitserver"
)

// The suite's manager starts before any GitOps tool is installed. Config Sync installed later
// (its two CRDs) is found by the manager's periodic look, and a RootSync that syncs a
// published revision shows in that revision's status.
func TestDeploymentStatus_gitOpsToolInstalledAfterTheManager_isWatched(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, srv := newNamespace(t), newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo, err := srv.CreateRepo("deploy")
	g.Expect(err).NotTo(HaveOccurred())
	commit, err := gitRepo.Commit("main", gitserver.Change{Message: "Approve app v1\n\n" + kptLine("app", "v1", 1), Files: map[string]string{
		"app/Kptfile": kptfile("app"),
		"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
	}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gitRepo.Tag("app/v1", commit)).To(Succeed())
	newRepository(t, ns, "deploy", srv.RepoURL("deploy"), "git-creds", func(r *kpov1.Repository) { r.Spec.Deployment = true })
	waitRepositoryReady(t, ns, "deploy")
	published := waitLifecycle(t, ns, "deploy.app.v1", kpov1.LifecyclePublished)
	g.Expect(published.Status.Deployments).To(BeEmpty())

	for _, gvk := range []struct{ kind, plural string }{{gitops.RootSyncGVK.Kind, "rootsyncs"}, {gitops.RepoSyncGVK.Kind, "reposyncs"}} {
		installCRD(t, gitops.RootSyncGVK.Group, gitops.RootSyncGVK.Version, gvk.kind, gvk.plural)
	}
	sync := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{"sourceType": "git", "git": map[string]any{
			"repo": srv.RepoURL("deploy"), "dir": "app", "revision": "app/v1"}},
		"status": map[string]any{
			"sync":       map[string]any{"commit": commit},
			"conditions": []any{map[string]any{"type": "Syncing", "status": "False", "message": "Sync Completed"}},
		},
	}}
	sync.SetGroupVersionKind(gitops.RootSyncGVK)
	sync.SetNamespace(ns)
	sync.SetName("root-sync")
	g.Eventually(func() error { return k8sClient.Create(ctx, sync) }, timeout, interval).Should(Succeed(),
		"the API server serves RootSyncs once their CRD is established")

	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, "deploy.app.v1")
		g.Expect(pr.Status.Deployments).To(Equal([]kpov1.Deployment{{
			Kind: gitops.RootSyncGVK.Kind, Namespace: ns, Name: "root-sync", Revision: commit, Ready: metav1.ConditionTrue,
		}}))
	}, timeout, interval).Should(Succeed(), "the RootSync deploys app v1")
}

// installCRD installs a namespaced kind that keeps any fields, as a GitOps tool's installer
// would install its own (left installed: the manager watches it from now on).
func installCRD(t *testing.T, group, version, kind, plural string) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": plural + "." + group},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"kind": kind, "listKind": kind + "List", "plural": plural},
			"versions": []any{map[string]any{
				"name": version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true,
				}},
			}},
		},
	}}
	if err := k8sClient.Create(context.Background(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("installing %s: %v", crd.GetName(), err)
	}
}
