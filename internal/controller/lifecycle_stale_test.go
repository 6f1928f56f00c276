package controller

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/git"
)

// A lifecycle transition is carried out only for the spec and status the API server holds when
// the repository's lock is taken, never for a copy the cache still shows (the crash test found
// the interleaving: a reject carried out after the user had proposed again, then a kill before
// the read-back). The Repository's Git URL reaches nothing, so any attempt to move Git fails:
// the superseded copies return without one, the current copy makes one.
func TestReconcileLifecycle_supersededSpecOrStatus_movesNothingInGit(t *testing.T) {
	repo := &kpov1.Repository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "repo"},
		Spec:       kpov1.RepositorySpec{Git: kpov1.GitRepository{Repo: "http://127.0.0.1:1/unreachable.git", Branch: "main"}},
	}
	// What the API server holds: the user proposed again after a reject (generation 3).
	current := &kpov1.PackageRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "repo.app.ws", Generation: 3},
		Spec: kpov1.PackageRevisionSpec{Repository: "repo", PackageName: "app", WorkspaceName: "ws",
			Lifecycle: kpov1.LifecycleProposed},
		Status: kpov1.PackageRevisionStatus{Lifecycle: kpov1.LifecycleDraft, LifecycleGeneration: 2},
	}
	scheme := runtime.NewScheme()
	NewWithT(t).Expect(kpov1.AddToScheme(scheme)).To(Succeed())
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(current).WithStatusSubresource(current).Build()
	r := &PackageRevisionReconciler{Client: reader, git: &gitAccess{apiReader: reader, cache: git.NewCache(t.TempDir())}}

	for _, tc := range []struct {
		name   string
		mutate func(*kpov1.PackageRevision)
	}{
		{name: "an older generation asking for a reject", mutate: func(pr *kpov1.PackageRevision) {
			pr.Generation, pr.Spec.Lifecycle, pr.Status.Lifecycle = 2, kpov1.LifecycleDraft, kpov1.LifecycleProposed
		}},
		{name: "the same generation, another lifecycle read from Git", mutate: func(pr *kpov1.PackageRevision) {
			pr.Status.Lifecycle = kpov1.LifecycleDeletionProposed
		}},
		{name: "a newer generation than the API server's", mutate: func(pr *kpov1.PackageRevision) {
			pr.Generation = 4
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stale := current.DeepCopy()
			tc.mutate(stale)
			NewWithT(t).Expect(r.reconcileLifecycle(context.Background(), &revisionScope{pr: stale, repo: repo})).To(Succeed())
		})
	}

	t.Run("the current spec and status", func(t *testing.T) {
		err := r.reconcileLifecycle(context.Background(), &revisionScope{pr: current.DeepCopy(), repo: repo})
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring("unreachable.git")), "the transition should have tried to fetch")
	})
}
