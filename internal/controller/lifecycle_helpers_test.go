package controller_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/kpotest"
)

// newEmptyRepository creates a Git repository with one commit on main and registers it.
func newEmptyRepository(t testing.TB, srv *gitserver.Server, ns, name string, mutate ...func(*kpov1.Repository)) *gitserver.Repo {
	t.Helper()
	g := NewWithT(t)
	gitRepo, err := srv.CreateRepo(name)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = gitRepo.Commit("main", gitserver.Change{Message: "Initial commit", Files: map[string]string{"README.md": "# " + name + "\n"}})
	g.Expect(err).NotTo(HaveOccurred())
	newRepository(t, ns, name, srv.RepoURL(name), "git-creds", mutate...)
	waitRepositoryReady(t, ns, name)
	return gitRepo
}

func waitRepositoryReady(t testing.TB, ns, name string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		c := readyCondition(g, ns, name)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, timeout, interval).Should(Succeed())
}

// newDraft applies a PackageDraft.
func newDraft(t testing.TB, ns, name, repo, pkg, ws string, source kpov1.PackageDraftSource) *kpov1.PackageDraft {
	t.Helper()
	d := newDraftObject(ns, name, repo, pkg, ws, source)
	NewWithT(t).Expect(k8sClient.Create(context.Background(), d)).To(Succeed())
	return d
}

// newDraftObject is the PackageDraft newDraft applies, for a test to change before applying.
func newDraftObject(ns, name, repo, pkg, ws string, source kpov1.PackageDraftSource) *kpov1.PackageDraft {
	return &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       kpov1.PackageDraftSpec{Repository: repo, PackageName: pkg, WorkspaceName: ws, Source: source},
	}
}

func initSource(description string) kpov1.PackageDraftSource {
	return kpov1.PackageDraftSource{Init: &kpov1.InitSource{Description: description}}
}

func copySource(from string) kpov1.PackageDraftSource {
	return kpov1.PackageDraftSource{Copy: &kpov1.CopySource{SourceRef: kpov1.LocalReference{Name: from}}}
}

// draftCondition waits for a PackageDraft's Ready condition to have status and returns it.
func draftCondition(t testing.TB, ns, name string, status metav1.ConditionStatus) metav1.Condition {
	t.Helper()
	var cond metav1.Condition
	NewWithT(t).Eventually(func(g Gomega) {
		d := &kpov1.PackageDraft{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
		c := meta.FindStatusCondition(d.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(status), c.Message)
		cond = *c
	}, timeout, interval).Should(Succeed())
	return cond
}

// waitDraft waits for a PackageDraft to produce its revision and returns the revision's name.
func waitDraft(t testing.TB, ns, name string) string {
	t.Helper()
	draftCondition(t, ns, name, metav1.ConditionTrue)
	d := &kpov1.PackageDraft{}
	NewWithT(t).Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
	return d.Status.PackageRevision
}

func contentOf(g Gomega, ns, name string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm)).To(Succeed())
	return cm
}

// requestContent asks for a published revision's content with the time of the request, as
// `kubectl annotate` would, and returns its ConfigMap once the manager wrote it.
func requestContent(t testing.TB, ns, name string, at time.Time) *corev1.ConfigMap {
	t.Helper()
	g := NewWithT(t)
	annotateRevision(g, ns, name, kpov1.ContentRequestedAnnotation, at.UTC().Format(time.RFC3339))
	var cm *corev1.ConfigMap
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		g.Expect(pr.Status.ResourcesRef).NotTo(BeNil())
		cm = contentOf(g, ns, pr.Status.ResourcesRef.Name)
	}, timeout, interval).Should(Succeed())
	return cm
}

// annotateRevision sets one annotation of a PackageRevision.
func annotateRevision(g Gomega, ns, name, key, value string) {
	pr := getRevision(g, ns, name)
	patch := client.MergeFrom(pr.DeepCopy())
	if pr.Annotations == nil {
		pr.Annotations = map[string]string{}
	}
	pr.Annotations[key] = value
	g.Expect(k8sClient.Patch(context.Background(), pr, patch)).To(Succeed())
}

// editContent updates a content ConfigMap as `kubectl edit` would.
func editContent(t testing.TB, ns, name string, edit func(data map[string]string)) {
	t.Helper()
	g := NewWithT(t)
	cm := contentOf(g, ns, name)
	edit(cm.Data)
	g.Expect(k8sClient.Update(context.Background(), cm)).To(Succeed())
}

// gitOut runs the system git on a served bare repository (tests only: the manager never does).
func gitOut(t testing.TB, repo *gitserver.Repo, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("git", append([]string{"--git-dir", repo.Dir}, args...)...).CombinedOutput()
	return string(out), err
}

// newCatalogFixture registers an empty repository "catalog" on a new Git server in a new
// namespace; it returns the namespace and the Git repository.
func newCatalogFixture(t testing.TB, mutate ...func(*kpov1.Repository)) (string, *gitserver.Repo) {
	t.Helper()
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	return ns, newEmptyRepository(t, srv, ns, "catalog", mutate...)
}

// newDraftFixture registers a repository "catalog" on a new Git server in a new namespace and
// creates an init'ed draft of package "web", workspace "w"; it returns the namespace, the Git
// repository and the draft's PackageRevision name.
func newDraftFixture(t testing.TB) (string, *gitserver.Repo, string) {
	t.Helper()
	ns, gitRepo := newCatalogFixture(t)
	newDraft(t, ns, "web", "catalog", "web", "w", initSource(""))
	name := waitDraft(t, ns, "web")
	waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	return ns, gitRepo, name
}

// revisions drives PackageRevisions as the tests' admin.
func revisions() kpotest.Revisions {
	return kpotest.Revisions{Client: k8sClient, Timeout: timeout, Interval: interval}
}

func getRevision(g Gomega, ns, name string) *kpov1.PackageRevision {
	return revisions().Get(g, ns, name)
}

func setLifecycle(c client.Client, ns, name string, l kpov1.Lifecycle) error {
	return kpotest.SetLifecycle(c, ns, name, l)
}

func waitLifecycle(t testing.TB, ns, name string, l kpov1.Lifecycle) *kpov1.PackageRevision {
	t.Helper()
	return revisions().WaitLifecycle(t, ns, name, l)
}

func publish(t testing.TB, ns, name string) *kpov1.PackageRevision {
	t.Helper()
	return revisions().Publish(t, ns, name)
}
