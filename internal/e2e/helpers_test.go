package e2e_test

import (
	"context"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/kpotest"
)

const (
	// kpoTimeout bounds what kpo alone does (a commit, a propose, an approve).
	kpoTimeout = time.Minute
	// fluxTimeout bounds what waits on Flux: its objects reconcile every 10s, with jitter and
	// retries after a failure.
	fluxTimeout = 3 * time.Minute
	interval    = 250 * time.Millisecond

	// The credentials of the test Git server: those of `make run`'s local Git server, which
	// testdata/flux-secret.yaml holds for the README.
	gitUser     = "kpo"
	gitPassword = "kpo-local-dev"
)

// newNamespace creates a namespace for one test and deletes it when the test ends.
func newNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kpo-e2e-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), ns) })
	return ns.Name
}

// newGitServer starts a real smart-HTTP Git server with basic auth for one test.
func newGitServer(t testing.TB) *gitserver.Server {
	t.Helper()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Username: gitUser, Password: gitPassword})
	if err != nil {
		t.Fatalf("starting git server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// newDeploymentRepository creates Git repository name with one commit on main and registers
// it in ns as a deployment Repository, with its credentials Secret.
func newDeploymentRepository(t testing.TB, srv *gitserver.Server, ns, name string) *gitserver.Repo {
	t.Helper()
	g := NewWithT(t)
	gitRepo, err := srv.CreateRepo(name)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = gitRepo.Commit("main", gitserver.Change{Message: "Initial commit", Files: map[string]string{"README.md": "# " + name + "\n"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k8sClient.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "git-credentials", Namespace: ns},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{corev1.BasicAuthUsernameKey: gitUser, corev1.BasicAuthPasswordKey: gitPassword},
	})).To(Succeed())
	g.Expect(k8sClient.Create(context.Background(), &kpov1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kpov1.RepositorySpec{
			Deployment: true,
			Git:        kpov1.GitRepository{Repo: srv.RepoURL(name), SecretRef: &kpov1.LocalReference{Name: "git-credentials"}},
		},
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		repo := &kpov1.Repository{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, repo)).To(Succeed())
		c := meta.FindStatusCondition(repo.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, kpoTimeout, interval).Should(Succeed())
	return gitRepo
}

// newDraft applies a PackageDraft and returns the name of the draft PackageRevision it made.
func newDraft(t testing.TB, ns, name, repo, pkg, ws string, source kpov1.PackageDraftSource) string {
	t.Helper()
	g := NewWithT(t)
	g.Expect(k8sClient.Create(context.Background(), &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       kpov1.PackageDraftSpec{Repository: repo, PackageName: pkg, WorkspaceName: ws, Source: source},
	})).To(Succeed())
	var rev string
	g.Eventually(func(g Gomega) {
		d := &kpov1.PackageDraft{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
		c := meta.FindStatusCondition(d.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(d.Status.PackageRevision).NotTo(BeEmpty())
		rev = d.Status.PackageRevision
	}, kpoTimeout, interval).Should(Succeed())
	waitDraft(t, ns, rev)
	return rev
}

// editContent updates a content ConfigMap as `kubectl edit` would.
func editContent(t testing.TB, ns, name string, edit func(data map[string]string)) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(func() error {
		cm := &corev1.ConfigMap{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		edit(cm.Data)
		return k8sClient.Update(context.Background(), cm)
	}, kpoTimeout, interval).Should(Succeed())
}

// revisionNames lists the PackageRevisions of ns matching the labels (and field selector, as
// `kubectl get rpkg -l ... --field-selector ...` does), sorted.
func revisionNames(g Gomega, ns string, labels client.MatchingLabels, fields client.MatchingFields) []string {
	list := &kpov1.PackageRevisionList{}
	opts := []client.ListOption{client.InNamespace(ns), labels}
	if fields != nil {
		opts = append(opts, fields)
	}
	g.Expect(k8sClient.List(context.Background(), list, opts...)).To(Succeed())
	var names []string
	for _, pr := range list.Items {
		names = append(names, pr.Name)
	}
	sort.Strings(names)
	return names
}

// readyCondition returns the status and message of a Flux object's Ready condition.
func readyCondition(g Gomega, obj *unstructured.Unstructured) (string, string) {
	conds, _, err := unstructured.NestedSlice(obj.Object, "status", "conditions")
	g.Expect(err).NotTo(HaveOccurred())
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			status, _ := m["status"].(string)
			msg, _ := m["message"].(string)
			return status, msg
		}
	}
	return "", "no Ready condition yet"
}

// revisions drives PackageRevisions as the admin (an approver).
func revisions() kpotest.Revisions {
	return kpotest.Revisions{Client: k8sClient, Timeout: kpoTimeout, Interval: interval}
}

func getRevision(g Gomega, ns, name string) *kpov1.PackageRevision {
	return revisions().Get(g, ns, name)
}

// waitDraft waits until the revision is a Ready draft.
func waitDraft(t testing.TB, ns, name string) {
	t.Helper()
	revisions().WaitLifecycle(t, ns, name, kpov1.LifecycleDraft)
}

func publish(t testing.TB, ns, name string) *kpov1.PackageRevision {
	t.Helper()
	return revisions().Publish(t, ns, name)
}
