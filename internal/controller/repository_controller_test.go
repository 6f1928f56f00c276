package controller_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
)

const (
	timeout  = 30 * time.Second
	interval = 100 * time.Millisecond
)

func kptfile(name string) string {
	return "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: " + name +
		"\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\ninfo:\n  description: " + name + "\n"
}

func kptLine(pkg, ws string, rev int) string {
	return "kpt:{\"package\":\"" + pkg + "\",\"workspaceName\":\"" + ws + "\",\"revision\":" + strconv.Itoa(rev) + ",\"task\":{\"type\":\"approve\"}}"
}

// seedPorchLayout writes a repository as Porch leaves it: two packages (one with a nested
// subpackage), a non-package directory, tags basens/v1 and basens/v2, a draft, a proposal and
// a proposed deletion of basens/v1.
func seedPorchLayout(t testing.TB, srv *gitserver.Server, name string) *gitserver.Repo {
	t.Helper()
	g := NewWithT(t)
	repo, err := srv.CreateRepo(name)
	g.Expect(err).NotTo(HaveOccurred())

	_, err = repo.Commit("main", gitserver.Change{Message: "Add docs and web", Files: map[string]string{
		"docs/README.md":         "# not a package\n",
		"apps/web/Kptfile":       kptfile("web"),
		"apps/web/deploy.yaml":   "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
		"apps/web/notes/info.md": "nested, not a package\n",
	}})
	g.Expect(err).NotTo(HaveOccurred())
	v1, err := repo.Commit("main", gitserver.Change{Message: "Approve basens v1\n\n" + kptLine("basens", "ws1", 1), Files: map[string]string{
		"basens/Kptfile":        kptfile("basens"),
		"basens/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: example # v1\n",
		"basens/sub/Kptfile":    kptfile("sub"),
		"basens/sub/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sub\ndata:\n  k: v\n",
	}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Tag("basens/v1", v1)).To(Succeed())
	v2, err := repo.Commit("main", gitserver.Change{Message: "Approve basens v2\n\n" + kptLine("basens", "ws2", 2), Files: map[string]string{
		"basens/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: example # v2\n",
	}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Tag("basens/v2", v2)).To(Succeed())

	g.Expect(repo.Branch("drafts/apps/web/edit1", "main")).To(Succeed())
	_, err = repo.Commit("drafts/apps/web/edit1", gitserver.Change{Message: "Edit web\n\nkpt:{\"package\":\"apps/web\",\"workspaceName\":\"edit1\",\"task\":{\"type\":\"edit\"}}",
		Files: map[string]string{"apps/web/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Branch("proposed/basens/ws3", "main")).To(Succeed())
	g.Expect(repo.Branch("deletionProposed/basens/v1", v1)).To(Succeed())
	return repo
}

func newRepository(t testing.TB, ns, name, url, secret string, mutate ...func(*kpov1.Repository)) *kpov1.Repository {
	t.Helper()
	repo := &kpov1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       kpov1.RepositorySpec{Git: kpov1.GitRepository{Repo: url}},
	}
	if secret != "" {
		repo.Spec.Git.SecretRef = &kpov1.LocalReference{Name: secret}
	}
	for _, m := range mutate {
		m(repo)
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), repo)).To(Succeed())
	return repo
}

func listRevisions(g Gomega, ns, repo string) map[string]kpov1.PackageRevision {
	list := &kpov1.PackageRevisionList{}
	g.Expect(k8sClient.List(context.Background(), list, client.InNamespace(ns),
		client.MatchingLabels{kpov1.RepositoryLabel: repo})).To(Succeed())
	out := map[string]kpov1.PackageRevision{}
	for _, pr := range list.Items {
		out[pr.Name] = pr
	}
	return out
}

func readyCondition(g Gomega, ns, name string) *metav1.Condition {
	repo := &kpov1.Repository{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, repo)).To(Succeed())
	c := meta.FindStatusCondition(repo.Status.Conditions, kpov1.ReadyCondition)
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.ObservedGeneration).To(Equal(repo.Generation))
	return c
}

type revisionFacts struct {
	Package, Workspace string
	Lifecycle          kpov1.Lifecycle
	Revision           int
	Latest             bool
	Ready              bool
}

func factsOf(prs map[string]kpov1.PackageRevision) map[string]revisionFacts {
	out := map[string]revisionFacts{}
	for name, pr := range prs {
		out[name] = revisionFacts{
			Package: pr.Spec.PackageName, Workspace: pr.Spec.WorkspaceName, Lifecycle: pr.Spec.Lifecycle,
			Revision: pr.Status.Revision, Latest: pr.Labels[kpov1.LatestRevisionLabel] == "true",
			Ready: meta.IsStatusConditionTrue(pr.Status.Conditions, kpov1.ReadyCondition),
		}
	}
	return out
}

func TestRepository_registered_discoversEveryRevisionOfThePorchLayout(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	seedPorchLayout(t, srv, "catalog")
	newCredentials(t, ns, "git-creds", gitPassword)
	newRepository(t, ns, "catalog", srv.RepoURL("catalog"), "git-creds")

	want := map[string]revisionFacts{
		"catalog.basens.ws1":     {Package: "basens", Workspace: "ws1", Lifecycle: kpov1.LifecycleDeletionProposed, Revision: 1, Ready: true},
		"catalog.basens.ws2":     {Package: "basens", Workspace: "ws2", Lifecycle: kpov1.LifecyclePublished, Revision: 2, Latest: true, Ready: true},
		"catalog.basens.ws3":     {Package: "basens", Workspace: "ws3", Lifecycle: kpov1.LifecycleProposed, Ready: true},
		"catalog.basens.main":    {Package: "basens", Workspace: "main", Lifecycle: kpov1.LifecyclePublished, Revision: -1, Ready: true},
		"catalog.apps.web.edit1": {Package: "apps/web", Workspace: "edit1", Lifecycle: kpov1.LifecycleDraft, Ready: true},
		"catalog.apps.web.main":  {Package: "apps/web", Workspace: "main", Lifecycle: kpov1.LifecyclePublished, Revision: -1, Ready: true},
	}
	g.Eventually(func(g Gomega) {
		g.Expect(factsOf(listRevisions(g, ns, "catalog"))).To(Equal(want))
	}, timeout, interval).Should(Succeed())

	g.Eventually(func(g Gomega) {
		c := readyCondition(g, ns, "catalog")
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(kpov1.SyncedReason))
	}, timeout, interval).Should(Succeed())
	repo := &kpov1.Repository{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "catalog"}, repo)).To(Succeed())
	g.Expect(repo.Status.PackageCount).To(Equal(2))
	g.Expect(repo.Status.Commit).To(HaveLen(40))
	g.Expect(repo.Status.LastSyncTime).NotTo(BeNil())

	// The content ConfigMap, on request, holds the package's files, the nested subpackage
	// included, byte for byte.
	cm := requestContent(t, ns, "catalog.basens.ws2", time.Now())
	g.Expect(cm.Data).To(Equal(map[string]string{
		"Kptfile":        kptfile("basens"),
		"namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: example # v2\n",
		"sub__Kptfile":   kptfile("sub"),
		"sub__cm.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sub\ndata:\n  k: v\n",
	}))
	cm = requestContent(t, ns, "catalog.basens.ws1", time.Now())
	g.Expect(cm.Data).To(HaveKeyWithValue("namespace.yaml", ContainSubstring("# v1")))
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "catalog.apps.web.edit1"}, cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKey("service.yaml"))
	g.Expect(cm.Data).To(HaveKey("notes__info.md"))

	prs := listRevisions(g, ns, "catalog")
	ws2 := prs["catalog.basens.ws2"]
	g.Expect(ws2.Status.ResourcesRef).NotTo(BeNil())
	g.Expect(ws2.Status.ResourcesRef.Name).To(Equal("catalog.basens.ws2"))
	g.Expect(ws2.Status.PublishedAt).NotTo(BeNil())
	g.Expect(ws2.Status.Ref).To(Equal("refs/tags/basens/v2"))
	g.Expect(ws2.Labels).To(HaveKeyWithValue(kpov1.PackageLabel, "basens"))
}

// requestSync asks for a sync of the fixtures' Repository, catalog, as `kubectl annotate` would,
// and returns the request's token.
func requestSync(g Gomega, ns string) string {
	repo := &kpov1.Repository{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "catalog"}, repo)).To(Succeed())
	patch := client.MergeFrom(repo.DeepCopy())
	token := time.Now().Format(time.RFC3339Nano)
	if repo.Annotations == nil {
		repo.Annotations = map[string]string{}
	}
	repo.Annotations[kpov1.SyncRequestedAnnotation] = token
	g.Expect(k8sClient.Patch(context.Background(), repo, patch)).To(Succeed())
	return token
}

func TestRepository_syncRequested_picksUpNewTagAndDropsDeletedBranch(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	gitRepo := seedPorchLayout(t, srv, "catalog")
	newCredentials(t, ns, "git-creds", gitPassword)
	newRepository(t, ns, "catalog", srv.RepoURL("catalog"), "git-creds")
	g.Eventually(func(g Gomega) {
		g.Expect(listRevisions(g, ns, "catalog")).To(HaveKey("catalog.apps.web.edit1"))
	}, timeout, interval).Should(Succeed())

	web1, err := gitRepo.Commit("main", gitserver.Change{Message: "Approve web v1\n\n" + kptLine("apps/web", "first", 1),
		Files: map[string]string{"apps/web/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web # v1\n"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gitRepo.Tag("apps/web/v1", web1)).To(Succeed())
	g.Expect(gitRepo.DeleteRef("refs/heads/drafts/apps/web/edit1")).To(Succeed())
	token := requestSync(g, ns)

	g.Eventually(func(g Gomega) {
		repo := &kpov1.Repository{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "catalog"}, repo)).To(Succeed())
		g.Expect(repo.Status.LastHandledSyncRequest).To(Equal(token))
		prs := factsOf(listRevisions(g, ns, "catalog"))
		g.Expect(prs).NotTo(HaveKey("catalog.apps.web.edit1"))
		g.Expect(prs).To(HaveKeyWithValue("catalog.apps.web.first", revisionFacts{
			Package: "apps/web", Workspace: "first", Lifecycle: kpov1.LifecyclePublished, Revision: 1, Latest: true, Ready: true,
		}))
	}, timeout, interval).Should(Succeed())
	cm := &corev1.ConfigMap{}
	err = k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "catalog.apps.web.edit1"}, cm)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the vanished draft's ConfigMap is deleted, got %v", err)
}

func TestRepository_wrongPassword_isAuthenticationFailedWithoutLeakingThePassword(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	seedPorchLayout(t, srv, "catalog")
	const wrong = "Wr0ng-Pa55word-must-not-leak"
	newCredentials(t, ns, "bad-creds", wrong)
	newRepository(t, ns, "catalog", srv.RepoURL("catalog"), "bad-creds")

	g.Eventually(func(g Gomega) {
		c := readyCondition(g, ns, "catalog")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.AuthenticationFailedReason))
		g.Expect(c.Message).To(ContainSubstring("check the username, password or token in the Secret named by secretRef"))
	}, timeout, interval).Should(Succeed())

	events := &corev1.EventList{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.List(context.Background(), events, client.InNamespace(ns))).To(Succeed())
		g.Expect(events.Items).NotTo(BeEmpty())
	}, timeout, interval).Should(Succeed())
	for _, e := range events.Items {
		g.Expect(e.Message).NotTo(ContainSubstring(wrong))
	}
	repo := &kpov1.Repository{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "catalog"}, repo)).To(Succeed())
	for _, c := range repo.Status.Conditions {
		g.Expect(c.Message).NotTo(ContainSubstring(wrong))
	}
	g.Expect(managerLog.String()).To(ContainSubstring("catalog"), "the manager logged the failed sync")
	g.Expect(managerLog.String()).NotTo(ContainSubstring(wrong))
	g.Expect(managerLog.String()).NotTo(ContainSubstring(gitPassword))
	g.Expect(listRevisions(g, ns, "catalog")).To(BeEmpty())
}

func TestRepository_unreachableUnknownMissingRepoBranchOrSecret_haveTheirOwnReasons(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	seedPorchLayout(t, srv, "catalog")
	newCredentials(t, ns, "git-creds", gitPassword)

	newRepository(t, ns, "unreachable", "http://127.0.0.1:1/nothing.git", "")
	newRepository(t, ns, "unknownhost", "http://kpo-no-such-host.invalid/catalog.git", "")
	newRepository(t, ns, "missing", srv.RepoURL("no-such-repo"), "git-creds")
	newRepository(t, ns, "nobranch", srv.RepoURL("catalog"), "git-creds", func(r *kpov1.Repository) {
		r.Spec.Git.Branch = "release"
	})
	newRepository(t, ns, "nosecret", srv.RepoURL("catalog"), "absent")

	for name, reason := range map[string]string{
		"unreachable": kpov1.RepositoryUnreachableReason,
		"unknownhost": kpov1.RepositoryUnreachableReason,
		"missing":     kpov1.RepositoryNotFoundReason,
		"nobranch":    kpov1.BranchNotFoundReason,
		"nosecret":    kpov1.SecretNotFoundReason,
	} {
		g.Eventually(func(g Gomega) {
			c := readyCondition(g, ns, name)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(reason), "repository %s: %s", name, c.Message)
		}, timeout, interval).Should(Succeed())
	}
}

func TestRepository_createBranch_createsTheMissingBranchInGit(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	gitRepo, err := srv.CreateRepo("empty")
	g.Expect(err).NotTo(HaveOccurred())
	newCredentials(t, ns, "git-creds", gitPassword)
	newRepository(t, ns, "deploy", srv.RepoURL("empty"), "git-creds", func(r *kpov1.Repository) {
		r.Spec.Git.Branch = "deploy"
		r.Spec.Git.CreateBranch = true
		r.Spec.Deployment = true
	})

	g.Eventually(func(g Gomega) {
		c := readyCondition(g, ns, "deploy")
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, timeout, interval).Should(Succeed())
	head, err := gitRepo.RefHash("refs/heads/deploy")
	g.Expect(err).NotTo(HaveOccurred())
	repo := &kpov1.Repository{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "deploy"}, repo)).To(Succeed())
	g.Expect(repo.Status.Commit).To(Equal(head))
	g.Expect(repo.Status.PackageCount).To(BeZero())
}

func TestRepository_deleted_removesItsObjectsAndLeavesGitUntouched(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	gitRepo := seedPorchLayout(t, srv, "catalog")
	refsBefore, err := gitRepo.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	newCredentials(t, ns, "git-creds", gitPassword)
	repo := newRepository(t, ns, "catalog", srv.RepoURL("catalog"), "git-creds")
	g.Eventually(func(g Gomega) {
		g.Expect(listRevisions(g, ns, "catalog")).To(HaveLen(6))
	}, timeout, interval).Should(Succeed())

	g.Expect(k8sClient.Delete(context.Background(), repo)).To(Succeed())
	g.Eventually(func(g Gomega) {
		err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(repo), &kpov1.Repository{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
		g.Expect(listRevisions(g, ns, "catalog")).To(BeEmpty())
		cms := &corev1.ConfigMapList{}
		g.Expect(k8sClient.List(context.Background(), cms, client.InNamespace(ns),
			client.MatchingLabels{kpov1.RepositoryLabel: "catalog"})).To(Succeed())
		g.Expect(cms.Items).To(BeEmpty())
	}, timeout, interval).Should(Succeed())

	refsAfter, err := gitRepo.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refsAfter).To(Equal(refsBefore))
}

func TestRepository_sameURLDifferentDirectories_seeOnlyTheirOwnPackages(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	seedPorchLayout(t, srv, "catalog")
	newCredentials(t, ns, "git-creds", gitPassword)
	newRepository(t, ns, "apps", srv.RepoURL("catalog"), "git-creds", func(r *kpov1.Repository) { r.Spec.Git.Directory = "/apps" })
	newRepository(t, ns, "all", srv.RepoURL("catalog"), "git-creds")

	g.Eventually(func(g Gomega) {
		g.Expect(factsOf(listRevisions(g, ns, "apps"))).To(Equal(map[string]revisionFacts{
			"apps.web.edit1": {Package: "web", Workspace: "edit1", Lifecycle: kpov1.LifecycleDraft, Ready: true},
			"apps.web.main":  {Package: "web", Workspace: "main", Lifecycle: kpov1.LifecyclePublished, Revision: -1, Ready: true},
		}))
		g.Expect(listRevisions(g, ns, "all")).To(HaveLen(6))
	}, timeout, interval).Should(Succeed())
}
