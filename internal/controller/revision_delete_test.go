package controller

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/gitserver"
)

// An approver may delete a published revision as soon as its spec says DeletionProposed (the
// deletion guard reads the spec), before the manager carried out the proposal: its tag goes
// all the same, and no other. The crash test found it: `kubectl patch` then `kubectl delete`
// left the tag, and the next sync brought the revision back.
func TestReconcileDelete_deletionProposedInSpecOnly_deletesTheTag(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = srv.Close() })
	gitRepo, err := srv.CreateRepo("repo")
	g.Expect(err).NotTo(HaveOccurred())
	kptfile := "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n"
	commits := map[string]string{}
	for _, ws := range []string{"first", "second"} {
		n := len(commits) + 1
		commits[ws], err = gitRepo.Commit("main", gitserver.Change{Files: map[string]string{"app/Kptfile": kptfile, "app/" + ws: ws},
			Message: "Approve\n\n" + git.KptCommit{Package: "app", WorkspaceName: ws, Revision: n}.Line() + "\n"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(gitRepo.Tag(fmt.Sprintf("app/v%d", n), commits[ws])).To(Succeed())
	}

	repo := &kpov1.Repository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "repo"},
		Spec:       kpov1.RepositorySpec{Git: kpov1.GitRepository{Repo: srv.RepoURL("repo"), Branch: "main"}},
	}
	deleted := &kpov1.PackageRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "repo.app.first", Finalizers: []string{kpov1.PackageRevisionFinalizer},
			DeletionTimestamp: &metav1.Time{Time: metav1.Now().Time}},
		Spec: kpov1.PackageRevisionSpec{Repository: "repo", PackageName: "app", WorkspaceName: "first",
			Lifecycle: kpov1.LifecycleDeletionProposed},
		Status: kpov1.PackageRevisionStatus{Lifecycle: kpov1.LifecyclePublished, Revision: 1, Commit: commits["first"]},
	}
	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(kpov1.AddToScheme(scheme)).To(Succeed())
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(repo, deleted).WithStatusSubresource(deleted).
		WithIndex(&kpov1.PackageRevision{}, revisionIndex, revisionIndexKeys).Build()
	r := &PackageRevisionReconciler{Client: c, git: &gitAccess{apiReader: c, cache: git.NewCache(t.TempDir())}}

	g.Expect(r.reconcileDelete(ctx, deleted.DeepCopy(), repo)).To(Succeed())
	refs, err := gitRepo.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refs).NotTo(HaveKey(git.TagRef("app", 1)), "the deleted revision's tag")
	g.Expect(refs).To(HaveKeyWithValue(git.TagRef("app", 2), commits["second"]), "the other revision's tag")
	err = c.Get(ctx, client.ObjectKeyFromObject(deleted), &kpov1.PackageRevision{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the finalizer released: %v", err)
}
