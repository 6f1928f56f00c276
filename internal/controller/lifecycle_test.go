package controller_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
)

const deployYAML = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web # edited\nspec:\n  replicas: 2\n"

func TestPackageRevision_initEditProposeApprove_publishesV1InPorchLayout(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo := newEmptyRepository(t, srv, ns, "catalog")

	newDraft(t, ns, "web", "catalog", "apps/web", "first", initSource("the web app"))
	name := waitDraft(t, ns, "web")
	g.Expect(name).To(Equal("catalog.apps.web.first"))
	pr := waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	g.Expect(pr.Labels).To(HaveKeyWithValue(kpov1.DraftLabel, "web"))
	cm := contentOf(g, ns, name)
	g.Expect(cm.Data).To(HaveKeyWithValue("Kptfile", ContainSubstring("description: the web app")))
	g.Expect(cm.Data).To(HaveKey("README.md"))
	msg, err := gitOut(t, gitRepo, "log", "-1", "--format=%B", "refs/heads/drafts/apps/web/first")
	g.Expect(err).NotTo(HaveOccurred(), msg)
	g.Expect(msg).To(ContainSubstring(`kpt:{"package":"apps/web","workspaceName":"first","revision":"0","task":{"type":"init"}}`))

	// Editing the content ConfigMap commits to the draft branch.
	editContent(t, ns, name, func(d map[string]string) { d["deploy.yaml"] = deployYAML })
	g.Eventually(func() (string, error) {
		return gitRepo.ReadFile("refs/heads/drafts/apps/web/first", "apps/web/deploy.yaml")
	}, timeout, interval).Should(Equal(deployYAML))
	waitLifecycle(t, ns, name, kpov1.LifecycleDraft)

	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecycleProposed)).To(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	refs, err := gitRepo.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refs).To(HaveKey("refs/heads/proposed/apps/web/first"))
	g.Expect(refs).NotTo(HaveKey("refs/heads/drafts/apps/web/first"))
	proposedHead := refs["refs/heads/proposed/apps/web/first"]
	mainBefore := refs["refs/heads/main"]

	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecyclePublished)).To(Succeed())
	pr = waitLifecycle(t, ns, name, kpov1.LifecyclePublished)
	g.Expect(pr.Status.Revision).To(Equal(1))
	g.Expect(pr.Labels).To(HaveKeyWithValue(kpov1.LatestRevisionLabel, "true"))
	g.Expect(pr.Status.PublishedBy).NotTo(BeEmpty())
	g.Expect(pr.Status.PublishedBy).To(Equal(pr.Annotations[kpov1.ApprovedByAnnotation]), "publishedBy is the identity the admission policy stamped")
	g.Expect(pr.Status.PublishedAt).NotTo(BeNil())

	refs, err = gitRepo.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refs).NotTo(HaveKey("refs/heads/proposed/apps/web/first"))
	g.Expect(refs["refs/tags/apps/web/v1"]).To(Equal(refs["refs/heads/main"]))
	parents, err := gitOut(t, gitRepo, "log", "-1", "--format=%P", "refs/tags/apps/web/v1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Fields(parents)).To(Equal([]string{mainBefore, proposedHead}))
	g.Expect(gitRepo.ReadFile("refs/tags/apps/web/v1", "apps/web/deploy.yaml")).To(Equal(deployYAML))
	g.Expect(gitRepo.ReadFile("refs/tags/apps/web/v1", "README.md")).To(Equal("# catalog\n"), "the rest of main is kept")

	// A fresh Repository over the same Git sees the same state.
	newRepository(t, ns, "again", srv.RepoURL("catalog"), "git-creds")
	g.Eventually(func(g Gomega) {
		again := getRevision(g, ns, "again.apps.web.first")
		g.Expect(again.Status.Lifecycle).To(Equal(kpov1.LifecyclePublished))
		g.Expect(again.Status.Revision).To(Equal(1))
		g.Expect(again.Status.PublishedBy).To(Equal(pr.Status.PublishedBy))
		g.Expect(again.Status.Commit).To(Equal(pr.Status.Commit))
		g.Expect(again.Labels).To(HaveKeyWithValue(kpov1.LatestRevisionLabel, "true"))
	}, timeout, interval).Should(Succeed())
}

func TestPackageDraft_copyOfOlderRevision_rollsBackAsNextRevision(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo := newEmptyRepository(t, srv, ns, "catalog")

	newDraft(t, ns, "v1", "catalog", "web", "v1", initSource("v1"))
	v1 := waitDraft(t, ns, "v1")
	editContent(t, ns, v1, func(d map[string]string) { d["deploy.yaml"] = deployYAML })
	g.Eventually(func() (string, error) { return gitRepo.ReadFile("refs/heads/drafts/web/v1", "web/deploy.yaml") }, timeout, interval).Should(Equal(deployYAML))
	publish(t, ns, v1)

	newDraft(t, ns, "v2", "catalog", "web", "v2", copySource(v1))
	v2 := waitDraft(t, ns, "v2")
	editContent(t, ns, v2, func(d map[string]string) {
		d["deploy.yaml"] = strings.ReplaceAll(deployYAML, "replicas: 2", "replicas: 5")
	})
	g.Eventually(func() (string, error) { return gitRepo.ReadFile("refs/heads/drafts/web/v2", "web/deploy.yaml") }, timeout, interval).Should(ContainSubstring("replicas: 5"))
	g.Expect(publish(t, ns, v2).Status.Revision).To(Equal(2))
	g.Expect(getRevision(g, ns, v1).Labels).NotTo(HaveKey(kpov1.LatestRevisionLabel), "the latest label moved to v2")

	newDraft(t, ns, "rollback", "catalog", "web", "rollback", copySource(v1))
	rollback := waitDraft(t, ns, "rollback")
	pr := publish(t, ns, rollback)
	g.Expect(pr.Status.Revision).To(Equal(3))
	g.Expect(pr.Labels).To(HaveKeyWithValue(kpov1.LatestRevisionLabel, "true"))
	g.Expect(gitRepo.ReadFile("refs/tags/web/v3", "web/deploy.yaml")).To(Equal(deployYAML))
	g.Expect(gitRepo.ReadFile("refs/heads/main", "web/deploy.yaml")).To(Equal(deployYAML))
}

func TestPackageDraft_clone_fromRegisteredRevisionAndFromGitURL_recordsUpstream(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	upstream := seedPorchLayout(t, srv, "blueprints")
	newRepository(t, ns, "blueprints", srv.RepoURL("blueprints"), "git-creds")
	waitRepositoryReady(t, ns, "blueprints")
	newEmptyRepository(t, srv, ns, "deploy", func(r *kpov1.Repository) { r.Spec.Deployment = true })
	v2, err := upstream.RefHash("refs/tags/basens/v2")
	g.Expect(err).NotTo(HaveOccurred())
	v1, err := upstream.RefHash("refs/tags/basens/v1")
	g.Expect(err).NotTo(HaveOccurred())

	newDraft(t, ns, "prod", "deploy", "prod-ns", "w1", kpov1.PackageDraftSource{
		Clone: &kpov1.CloneSource{UpstreamRef: &kpov1.LocalReference{Name: "blueprints.basens.ws2"}}})
	prod := waitDraft(t, ns, "prod")
	pr := waitLifecycle(t, ns, prod, kpov1.LifecycleDraft)
	g.Expect(pr.Status.Upstream).To(Equal(&kpov1.Upstream{Type: "git", Git: &kpov1.UpstreamGit{
		Repo: srv.RepoURL("blueprints"), Directory: "/basens", Ref: "basens/v2"}}))
	g.Expect(pr.Status.UpstreamLock.Git.Commit).To(Equal(v2))
	cm := contentOf(g, ns, prod)
	g.Expect(cm.Data).To(HaveKeyWithValue("namespace.yaml", ContainSubstring("# v2")))
	g.Expect(cm.Data).To(HaveKeyWithValue("Kptfile", ContainSubstring("name: prod-ns")))
	g.Expect(cm.Data).To(HaveKeyWithValue("package-context.yaml", ContainSubstring("name: prod-ns")))
	g.Expect(cm.Data).To(HaveKey("sub__Kptfile"), "the nested subpackage comes along")

	newDraft(t, ns, "raw", "deploy", "raw-ns", "w1", kpov1.PackageDraftSource{Clone: &kpov1.CloneSource{Git: &kpov1.GitSource{
		Repo: srv.RepoURL("blueprints"), Ref: "basens/v1", Directory: "/basens", SecretRef: &kpov1.LocalReference{Name: "git-creds"}}}})
	raw := waitDraft(t, ns, "raw")
	pr = waitLifecycle(t, ns, raw, kpov1.LifecycleDraft)
	g.Expect(pr.Status.UpstreamLock).To(Equal(&kpov1.Upstream{Type: "git", Git: &kpov1.UpstreamGit{
		Repo: srv.RepoURL("blueprints"), Directory: "/basens", Ref: "basens/v1", Commit: v1}}))
	g.Expect(contentOf(g, ns, raw).Data).To(HaveKeyWithValue("namespace.yaml", ContainSubstring("# v1")))
}

func TestPackageDraft_refusals_sayWhatIsWrong(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo := seedPorchLayout(t, srv, "catalog")
	// A package that exists only as a draft branch, not on main.
	g.Expect(gitRepo.Branch("drafts/teams/db/ws", "main")).To(Succeed())
	_, err := gitRepo.Commit("drafts/teams/db/ws", gitserver.Change{Message: "Init db\n\nkpt:{\"package\":\"teams/db\",\"workspaceName\":\"ws\",\"task\":{\"type\":\"init\"}}",
		Files: map[string]string{"teams/db/Kptfile": kptfile("db")}})
	g.Expect(err).NotTo(HaveOccurred())
	newRepository(t, ns, "catalog", srv.RepoURL("catalog"), "git-creds")
	waitRepositoryReady(t, ns, "catalog")

	cases := []struct {
		name, pkg, ws string
		source        kpov1.PackageDraftSource
		reason, says  string
	}{
		{"exists", "basens", "new", initSource(""), kpov1.PackageExistsReason, "with source copy instead"},
		{"clone-exists", "apps/web", "new", kpov1.PackageDraftSource{Clone: &kpov1.CloneSource{UpstreamRef: &kpov1.LocalReference{Name: "catalog.basens.ws2"}}}, kpov1.PackageExistsReason, "already exists"},
		{"nested", "basens/inner", "new", initSource(""), kpov1.NestedPackageReason, `inside package "basens"`},
		{"contains", "apps", "new", initSource(""), kpov1.NestedPackageReason, `contains package "apps/web"`},
		{"contains-draft", "teams", "new", initSource(""), kpov1.NestedPackageReason, `contains package "teams/db"`},
		{"inside-draft", "teams/db/inner", "new", initSource(""), kpov1.NestedPackageReason, `inside package "teams/db"`},
		{"draft-exists", "teams/db", "new", initSource(""), kpov1.PackageExistsReason, "with source copy instead"},
		{"duplicate", "apps/web", "edit1", copySource("catalog.apps.web.main"), kpov1.DuplicateWorkspaceReason, "choose another workspaceName"},
		{"unpublished", "apps/web", "new", copySource("catalog.apps.web.edit1"), kpov1.SourceNotPublishedReason, "not a published revision"},
		{"missing", "basens", "new2", copySource("catalog.basens.nope"), kpov1.SourceNotFoundReason, "does not exist"},
	}
	for _, tc := range cases {
		newDraft(t, ns, tc.name, "catalog", tc.pkg, tc.ws, tc.source)
	}
	for _, tc := range cases {
		c := draftCondition(t, ns, tc.name, metav1.ConditionFalse)
		g.Expect(c.Reason).To(Equal(tc.reason), "%s: %s", tc.name, c.Message)
		g.Expect(c.Message).To(ContainSubstring(tc.says), tc.name)
	}
	g.Expect(listRevisions(g, ns, "catalog")).To(HaveLen(7), "nothing was created")
}

func TestPackageRevision_tenDraftsApprovedConcurrently_getConsecutiveRevisions(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo := newEmptyRepository(t, srv, ns, "catalog")
	newDraft(t, ns, "base", "catalog", "web", "base", initSource("base"))
	base := publish(t, ns, waitDraft(t, ns, "base"))
	g.Expect(base.Status.Revision).To(Equal(1))

	var names []string
	for i := range 10 {
		d := fmt.Sprintf("c%d", i)
		newDraft(t, ns, d, "catalog", "web", d, copySource(base.Name))
		names = append(names, waitDraft(t, ns, d))
	}
	for _, n := range names {
		g.Expect(setLifecycle(k8sClient, ns, n, kpov1.LifecycleProposed)).To(Succeed())
	}
	for _, n := range names {
		waitLifecycle(t, ns, n, kpov1.LifecycleProposed)
	}
	// An outside push to main after kpo last read it must survive the approvals.
	outside, err := gitRepo.Commit("main", gitserver.Change{Message: "Outside change", Files: map[string]string{"OUTSIDE.md": "pushed by someone else\n"}})
	g.Expect(err).NotTo(HaveOccurred())

	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { g.Expect(setLifecycle(k8sClient, ns, n, kpov1.LifecyclePublished)).To(Succeed()) })
	}
	wg.Wait()
	seen := map[int]string{}
	for _, n := range names {
		pr := waitLifecycle(t, ns, n, kpov1.LifecyclePublished)
		seen[pr.Status.Revision] = n
	}
	for rev := 2; rev <= 11; rev++ {
		g.Expect(seen).To(HaveKey(rev), "revision %d assigned", rev)
		tag := fmt.Sprintf("refs/tags/web/v%d", rev)
		out, err := gitOut(t, gitRepo, "merge-base", "--is-ancestor", tag, "refs/heads/main")
		g.Expect(err).NotTo(HaveOccurred(), "%s is on main: %s", tag, out)
	}
	out, err := gitOut(t, gitRepo, "merge-base", "--is-ancestor", outside, "refs/heads/main")
	g.Expect(err).NotTo(HaveOccurred(), "the outside commit is still on main: %s", out)
	latest := &kpov1.PackageRevisionList{}
	g.Expect(k8sClient.List(context.Background(), latest, client.InNamespace(ns), client.MatchingLabels{kpov1.LatestRevisionLabel: "true"})).To(Succeed())
	g.Expect(latest.Items).To(HaveLen(1))
	g.Expect(latest.Items[0].Status.Revision).To(Equal(11))
}

func TestPackageRevision_staleContentUpdate_isConflictAndCommitsNothing(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)

	stale := contentOf(g, ns, name)
	editContent(t, ns, name, func(d map[string]string) { d["deploy.yaml"] = deployYAML })
	stale.Data["other.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n"
	err := k8sClient.Update(context.Background(), stale)
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)

	g.Eventually(func() (string, error) { return gitRepo.ReadFile("refs/heads/drafts/web/w", "web/deploy.yaml") }, timeout, interval).Should(Equal(deployYAML))
	_, err = gitRepo.ReadFile("refs/heads/drafts/web/w", "web/other.yaml")
	g.Expect(err).To(HaveOccurred(), "the stale update was not committed")
}

func TestPackageRevision_invalidContent_isRefusedAndTheLastGoodCommitKept(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	pr := getRevision(NewWithT(t), ns, name)
	head, err := gitRepo.RefHash("refs/heads/drafts/web/w")
	g.Expect(err).NotTo(HaveOccurred())
	good := contentOf(g, ns, name).Data

	for _, tc := range []struct {
		key, value, says string
	}{
		{"broken.yaml", "apiVersion: v1\nkind: [unclosed\n", "broken.yaml"},
		{"Kptfile", "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: web\nbogus: field\n", "bogus"},
		{"_2E_2E__escape.yaml", "a: b\n", "escapes the package"},
	} {
		cm := contentOf(g, ns, name)
		cm.Data[tc.key] = tc.value
		g.Expect(k8sClient.Update(context.Background(), cm)).To(Succeed())
		g.Eventually(func(g Gomega) {
			pr = getRevision(g, ns, name)
			c := findCondition(pr.Status.Conditions, kpov1.ReadyCondition)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(kpov1.InvalidContentReason))
			g.Expect(c.Message).To(ContainSubstring(tc.says))
		}, timeout, interval).Should(Succeed(), tc.key)
		g.Expect(gitRepo.RefHash("refs/heads/drafts/web/w")).To(Equal(head), "nothing committed for %s", tc.key)

		// Undo the bad edit: the draft is Ready again, still at the same commit.
		cm = contentOf(g, ns, name)
		cm.Data = good
		g.Expect(k8sClient.Update(context.Background(), cm)).To(Succeed())
		waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
		g.Expect(gitRepo.RefHash("refs/heads/drafts/web/w")).To(Equal(head), "nothing committed undoing %s", tc.key)
	}
}

func TestPackageRevision_illegalTransitions_areRefusedByTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	ns, _, name := newDraftFixture(t)

	err := setLifecycle(k8sClient, ns, name, kpov1.LifecyclePublished)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("illegal lifecycle transition"))
	g.Expect(getRevision(g, ns, name).Spec.Lifecycle).To(Equal(kpov1.LifecycleDraft))
}

func TestPackageDraft_deleted_abandonsItsDraftBranch(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo := newEmptyRepository(t, srv, ns, "catalog")
	d := newDraft(t, ns, "web", "catalog", "web", "w", initSource(""))
	name := waitDraft(t, ns, "web")
	waitLifecycle(t, ns, name, kpov1.LifecycleDraft)

	g.Expect(k8sClient.Delete(context.Background(), d)).To(Succeed())
	g.Eventually(func(g Gomega) {
		refs, err := gitRepo.Refs()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(refs).NotTo(HaveKey("refs/heads/drafts/web/w"))
		err = k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &kpov1.PackageRevision{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

func findCondition(conds []metav1.Condition, t string) metav1.Condition {
	for _, c := range conds {
		if c.Type == t {
			return c
		}
	}
	return metav1.Condition{}
}

// userClient acts as user, bound in ns to the ClusterRole role (kpo-author, kpo-approver).
func userClient(t *testing.T, ns, user, role string) client.Client {
	t.Helper()
	g := NewWithT(t)
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	g.Expect(k8sClient.Create(context.Background(), binding)).To(Succeed())
	cfg := rest.CopyConfig(adminConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: k8sClient.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() error { // RBAC caches take a moment
		return c.List(context.Background(), &kpov1.PackageRevisionList{}, client.InNamespace(ns))
	}, timeout, interval).Should(Succeed())
	return c
}

func TestPackageRevision_onlyApproversPublish_andPublishedByIsTheApprover(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo := newEmptyRepository(t, srv, ns, "catalog")
	alice := userClient(t, ns, "alice", "kpo-author")
	bob := userClient(t, ns, "bob", "kpo-approver")

	newDraft(t, ns, "web", "catalog", "web", "w", initSource(""))
	name := waitDraft(t, ns, "web")
	waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	g.Expect(setLifecycle(alice, ns, name, kpov1.LifecycleProposed)).To(Succeed(), "authors propose")
	waitLifecycle(t, ns, name, kpov1.LifecycleProposed)

	err := setLifecycle(alice, ns, name, kpov1.LifecyclePublished)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("packagerevisions/approval"))
	g.Expect(err.Error()).To(ContainSubstring("kpo-approver"))
	g.Expect(gitRepo.Refs()).NotTo(HaveKey("refs/tags/web/v1"))

	g.Expect(setLifecycle(bob, ns, name, kpov1.LifecyclePublished)).To(Succeed())
	pr := waitLifecycle(t, ns, name, kpov1.LifecyclePublished)
	g.Expect(pr.Status.PublishedBy).To(Equal("bob"))
	msg, err := gitOut(t, gitRepo, "log", "-1", "--format=%B", "refs/tags/web/v1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(msg).To(ContainSubstring("Approved-by: bob"))

	// Published content is read-only, and a published revision cannot be deleted directly.
	cm := requestContent(t, ns, name, time.Now())
	cm.Data["extra.yaml"] = "a: b\n"
	err = bob.Update(context.Background(), cm)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("only Draft content is writable"))
	err = bob.Delete(context.Background(), pr)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("propose deletion first"))

	// Propose deletion, then an approver deletes: tag and branch go.
	g.Expect(setLifecycle(alice, ns, name, kpov1.LifecycleDeletionProposed)).To(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecycleDeletionProposed)
	g.Expect(gitRepo.Refs()).To(HaveKey("refs/heads/deletionProposed/web/v1"))
	g.Expect(bob.Delete(context.Background(), getRevision(g, ns, name))).To(Succeed())
	g.Eventually(func(g Gomega) {
		refs, err := gitRepo.Refs()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(refs).NotTo(HaveKey("refs/tags/web/v1"))
		g.Expect(refs).NotTo(HaveKey("refs/heads/deletionProposed/web/v1"))
		err = k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &kpov1.PackageRevision{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

func TestPackageDraft_declaredLifecycle_proposesAndPublishesWithTheApprover(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo := newEmptyRepository(t, srv, ns, "catalog")
	alice := userClient(t, ns, "alice", "kpo-author")
	bob := userClient(t, ns, "bob", "kpo-approver")

	d := &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: kpov1.PackageDraftSpec{Repository: "catalog", PackageName: "web", WorkspaceName: "w",
			Source: initSource("gitops"), Lifecycle: kpov1.LifecycleProposed},
	}
	g.Expect(alice.Create(context.Background(), d)).To(Succeed())
	name := waitDraft(t, ns, "web")
	waitLifecycle(t, ns, name, kpov1.LifecycleProposed)

	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"lifecycle":"Published"}}`))
	err := alice.Patch(context.Background(), d.DeepCopy(), patch)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "an author cannot declare publication: %v", err)
	g.Expect(bob.Patch(context.Background(), d.DeepCopy(), patch)).To(Succeed())
	pr := waitLifecycle(t, ns, name, kpov1.LifecyclePublished)
	g.Expect(pr.Status.PublishedBy).To(Equal("bob"))
	g.Expect(gitRepo.Refs()).To(HaveKey("refs/tags/web/v1"))
	draftCondition(t, ns, "web", metav1.ConditionTrue)
}

func TestPackageRevision_readinessGates_blockPublicationUntilTheKptfileSaysTrue(t *testing.T) {
	g := NewWithT(t)
	ns, _, name := newDraftFixture(t)
	pr := getRevision(g, ns, name)
	patch := client.MergeFrom(pr.DeepCopy())
	pr.Spec.ReadinessGates = []kpov1.ReadinessGate{{ConditionType: "Verified"}}
	g.Expect(k8sClient.Patch(context.Background(), pr, patch)).To(Succeed())

	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecycleProposed)).To(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	err := setLifecycle(k8sClient, ns, name, kpov1.LifecyclePublished)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("Verified"))

	// Back to Draft, record the gate as True in the Kptfile's status, and publish.
	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecycleDraft)).To(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	editContent(t, ns, name, func(d map[string]string) {
		// The render's own status (condition Rendered) is already there, as kpt writes it.
		verified := "    - type: Verified\n      status: \"True\"\n      reason: Checked\n"
		if strings.Contains(d["Kptfile"], "\nstatus:\n  conditions:\n") {
			d["Kptfile"] = strings.Replace(d["Kptfile"], "\nstatus:\n  conditions:\n", "\nstatus:\n  conditions:\n"+verified, 1)
		} else {
			d["Kptfile"] += "status:\n  conditions:\n" + verified
		}
	})
	g.Eventually(func(g Gomega) {
		c := findCondition(getRevision(g, ns, name).Status.Conditions, "Verified")
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
	publish(t, ns, name)
}

func TestRepository_packageTooLargeForAConfigMap_isReportedNotDropped(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo, err := srv.CreateRepo("big")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = gitRepo.Commit("main", gitserver.Change{Message: "Big", Files: map[string]string{
		"big/Kptfile":   kptfile("big"),
		"big/data.yaml": "data: " + strings.Repeat("x", 1100*1024) + "\n",
	}})
	g.Expect(err).NotTo(HaveOccurred())
	newRepository(t, ns, "big", srv.RepoURL("big"), "git-creds")
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, "big.big.main")
		c := findCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.PackageTooLargeReason))
		g.Expect(c.Message).To(ContainSubstring("split the package"))
	}, timeout, interval).Should(Succeed())
	waitRepositoryReady(t, ns, "big")
}

func TestRepository_packageCount_followsANewDraftAtOnce(t *testing.T) {
	ns, _, _ := newDraftFixture(t)
	NewWithT(t).Eventually(func(g Gomega) {
		repo := &kpov1.Repository{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "catalog"}, repo)).To(Succeed())
		g.Expect(repo.Status.PackageCount).To(Equal(1))
	}, timeout, interval).Should(Succeed())
}

func TestRepository_fullSync_followsAnotherToolsMove_butNeverANewerIntentOfTheUser(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	pr := waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	g.Expect(pr.Status.LifecycleGeneration).To(Equal(pr.Generation))
	proposeInGit := func() {
		t.Helper()
		head, err := gitRepo.RefHash("refs/heads/drafts/web/w")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(gitRepo.Branch("proposed/web/w", head)).To(Succeed())
		g.Expect(gitRepo.DeleteRef("refs/heads/drafts/web/w")).To(Succeed())
	}

	// What a SIGKILL leaves when it lands after the manager pushed a proposal and before it
	// read the proposal back, once the user has asked for Draft again (a reject): spec and
	// status say Draft, Git says Proposed, and the spec is newer than the last read of Git.
	manager := managerClient(t)
	patch := client.MergeFrom(pr.DeepCopy())
	pr.Status.LifecycleGeneration = pr.Generation - 1
	g.Expect(manager.Status().Patch(context.Background(), pr, patch)).To(Succeed())
	proposeInGit()
	syncNow(t, ns)
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		g.Expect(pr.Spec.Lifecycle).To(Equal(kpov1.LifecycleDraft))
		g.Expect(pr.Status.Lifecycle).To(Equal(kpov1.LifecycleDraft))
		refs, err := gitRepo.Refs()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(refs).To(HaveKey("refs/heads/drafts/web/w"))
		g.Expect(refs).NotTo(HaveKey("refs/heads/proposed/web/w"))
	}, timeout, interval).Should(Succeed())

	// Another tool proposes while no intent of the user is pending: the spec follows Git.
	proposeInGit()
	syncNow(t, ns)
	pr = waitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	g.Expect(pr.Spec.Lifecycle).To(Equal(kpov1.LifecycleProposed))
	g.Expect(pr.Status.LifecycleGeneration).To(Equal(pr.Generation))
}

func TestPackageRevision_publishedContent_appearsOnRequestAndGoesAwayAfter(t *testing.T) {
	g := NewWithT(t)
	ns, _, name := newDraftFixture(t)
	files := contentOf(g, ns, name).Data
	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecycleProposed)).To(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecyclePublished)).To(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecyclePublished)
	contentGone := func(g Gomega) {
		g.Expect(getRevision(g, ns, name).Status.ResourcesRef).To(BeNil())
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "got %v", err)
	}

	// Published, the content is in Git alone.
	g.Eventually(contentGone, timeout, interval).Should(Succeed())

	// On request, the files as published, read-only; gone ContentRequestTTL after the request.
	cm := requestContent(t, ns, name, time.Now().Add(-kpov1.ContentRequestTTL+3*time.Second))
	g.Expect(cm.Data).To(Equal(files))
	g.Expect(cm.Labels).To(HaveKeyWithValue(kpov1.LifecycleLabel, string(kpov1.LifecyclePublished)))
	g.Eventually(contentGone, timeout, interval).Should(Succeed())

	// A request dated in the future asks for nothing, and says why.
	annotateRevision(g, ns, name, kpov1.ContentRequestedAnnotation, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	c := revisionReady(t, ns, name, metav1.ConditionFalse, kpov1.InvalidContentRequestReason)
	g.Expect(c.Message).To(ContainSubstring("RFC 3339"))
	contentGone(g)
}
