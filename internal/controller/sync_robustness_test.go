package controller_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/gitserver"
)

func TestRepository_packagesThatCannotBePackageRevisions_areReportedAlone_andTheRestSyncs(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo, err := srv.CreateRepo("catalog")
	g.Expect(err).NotTo(HaveOccurred())
	longPath := "deep/" + strings.Repeat("x", 200) // 205 characters: more than spec.packageName holds
	longWorkspace := strings.Repeat("w", 64)       // more than spec.workspaceName holds
	_, err = gitRepo.Commit("main", gitserver.Change{Message: "Add packages", Files: map[string]string{
		"good/Kptfile":        kptfile("good"),
		"good/cm.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\n",
		longPath + "/Kptfile": kptfile("long"),
	}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gitRepo.Branch("drafts/good/"+longWorkspace, "main")).To(Succeed())
	g.Expect(gitRepo.Branch("drafts/good/edit", "main")).To(Succeed())
	newRepository(t, ns, "catalog", srv.RepoURL("catalog"), "git-creds")

	// Ready stays True/Synced; PackagesValid names each bad revision, why, and how to fix it.
	g.Eventually(func(g Gomega) {
		repo := getRepository(g, ns, "catalog")
		ready := meta.FindStatusCondition(repo.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), ready.Message)
		g.Expect(ready.Reason).To(Equal(kpov1.SyncedReason))
		c := meta.FindStatusCondition(repo.Status.Conditions, kpov1.PackagesValidCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.InvalidPackagesReason))
		g.Expect(c.ObservedGeneration).To(Equal(repo.Generation))
		g.Expect(c.Message).To(HavePrefix("2 package revision(s) found in Git are not synced"))
		g.Expect(c.Message).To(ContainSubstring(`package "deep/xxxxxxxxxx`))
		g.Expect(c.Message).To(ContainSubstring("the package path is 205 characters long, more than the 200 a PackageRevision's spec.packageName holds: move the package to a shorter path in Git"))
		g.Expect(c.Message).To(ContainSubstring(`package "good" (ref "refs/heads/drafts/good/` + longWorkspace + `")`))
		g.Expect(c.Message).To(ContainSubstring("is 64 characters long, more than the 63 a PackageRevision's spec.workspaceName holds: rename the branch in Git"))
		g.Expect(repo.Status.PackageCount).To(Equal(1))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(factsOf(listRevisions(g, ns, "catalog"))).To(Equal(map[string]revisionFacts{
			"catalog.good.main": {Package: "good", Workspace: "main", Lifecycle: kpov1.LifecyclePublished, Revision: -1, Ready: true},
			"catalog.good.edit": {Package: "good", Workspace: "edit", Lifecycle: kpov1.LifecycleDraft, Ready: true},
		}))
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		events := &corev1.EventList{}
		g.Expect(k8sClient.List(context.Background(), events, client.InNamespace(ns))).To(Succeed())
		var reasons []string
		for _, e := range events.Items {
			reasons = append(reasons, e.Reason)
		}
		g.Expect(reasons).To(ContainElement(kpov1.InvalidPackagesReason))
	}, timeout, interval).Should(Succeed())

	// Fixed in Git, the next sync says every package is valid.
	_, err = gitRepo.Commit("main", gitserver.Change{Message: "Remove the long path", Delete: []string{"deep"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gitRepo.DeleteRef("refs/heads/drafts/good/" + longWorkspace)).To(Succeed())
	requestSync(g, ns)
	g.Eventually(func(g Gomega) {
		repo := getRepository(g, ns, "catalog")
		c := meta.FindStatusCondition(repo.Status.Conditions, kpov1.PackagesValidCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(c.Reason).To(Equal(kpov1.ValidReason))
		g.Expect(meta.IsStatusConditionTrue(repo.Status.Conditions, kpov1.ReadyCondition)).To(BeTrue())
	}, timeout, interval).Should(Succeed())
}

func TestRepository_packagesWithInvalidOrUnstorableFiles_syncWithAWarningOrAContentError(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo, err := srv.CreateRepo("catalog")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = gitRepo.Commit("main", gitserver.Change{Message: "Add packages", Files: map[string]string{
		"good/Kptfile":      kptfile("good"),
		"badyaml/Kptfile":   kptfile("badyaml"),
		"badyaml/app.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
		"badkpt/Kptfile":    kptfile("badkpt") + "pipline: {}\n",
		"linked/Kptfile":    kptfile("linked"),
		"linked/plain.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n",
	}})
	g.Expect(err).NotTo(HaveOccurred())
	commitSymlink(t, gitRepo, "main", "linked/link.yaml", "../good/Kptfile")
	newRepository(t, ns, "catalog", srv.RepoURL("catalog"), "git-creds")

	contentValid := func(pr kpov1.PackageRevision) *metav1.Condition {
		return meta.FindStatusCondition(pr.Status.Conditions, kpov1.ContentValidCondition)
	}
	g.Eventually(func(g Gomega) {
		c := readyCondition(g, ns, "catalog")
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		prs := listRevisions(g, ns, "catalog")
		g.Expect(prs).To(HaveLen(4))

		good := prs["catalog.good.main"]
		g.Expect(meta.IsStatusConditionTrue(good.Status.Conditions, kpov1.ReadyCondition)).To(BeTrue())
		g.Expect(contentValid(good)).To(PointTo(MatchFields(IgnoreExtras, Fields{
			"Status": Equal(metav1.ConditionTrue), "Reason": Equal(kpov1.ValidReason),
		})))
		g.Expect(good.Status.ContentWarning).To(BeNil())

		// Synced as Git holds it (Ready; published, so its content is in a ConfigMap only on
		// request), with a warning naming the file.
		badYAML := prs["catalog.badyaml.main"]
		g.Expect(meta.IsStatusConditionTrue(badYAML.Status.Conditions, kpov1.ReadyCondition)).To(BeTrue())
		g.Expect(badYAML.Status.ResourcesRef).To(BeNil())
		g.Expect(badYAML.Status.ContentError).To(BeNil())
		g.Expect(badYAML.Status.ContentWarning).NotTo(BeNil())
		g.Expect(badYAML.Status.ContentWarning.Reason).To(Equal(kpov1.InvalidContentReason))
		c = contentValid(badYAML)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.InvalidContentReason))
		g.Expect(c.Message).To(ContainSubstring("app.yaml: invalid YAML: line"))
		g.Expect(c.ObservedGeneration).To(Equal(badYAML.Generation))

		badKpt := prs["catalog.badkpt.main"]
		g.Expect(meta.IsStatusConditionTrue(badKpt.Status.Conditions, kpov1.ReadyCondition)).To(BeTrue())
		g.Expect(badKpt.Status.ResourcesRef).To(BeNil())
		c = contentValid(badKpt)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.InvalidKptfileReason))
		g.Expect(c.Message).To(ContainSubstring(`Kptfile: invalid Kptfile: line`))
		g.Expect(c.Message).To(ContainSubstring(`unknown field "pipline"`))

		// A symlink is this revision's content error, not the repository's.
		linked := prs["catalog.linked.main"]
		g.Expect(linked.Status.ResourcesRef).To(BeNil())
		g.Expect(linked.Status.ContentError).NotTo(BeNil())
		g.Expect(linked.Status.ContentError.Reason).To(Equal(kpov1.InvalidContentReason))
		g.Expect(linked.Status.ContentError.Message).To(ContainSubstring("link.yaml"))
		g.Expect(linked.Status.ContentError.Message).To(ContainSubstring("replace the link with a copy of the file it points to"))
		ready := meta.FindStatusCondition(linked.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(Equal(kpov1.InvalidContentReason))
		g.Expect(contentValid(linked)).To(PointTo(MatchFields(IgnoreExtras, Fields{
			"Status": Equal(metav1.ConditionFalse), "Reason": Equal(kpov1.InvalidContentReason),
		})))
	}, timeout, interval).Should(Succeed())

	// An unchanged resync writes nothing: no PackageRevision or ConfigMap changes.
	before := resourceVersions(g, ns)
	token := requestSync(g, ns)
	g.Eventually(func(g Gomega) {
		g.Expect(getRepository(g, ns, "catalog").Status.LastHandledSyncRequest).To(Equal(token))
	}, timeout, interval).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(resourceVersions(g, ns)).To(Equal(before))
	}, 2*time.Second, interval).Should(Succeed())

	// Fixed in Git, the warning goes.
	_, err = gitRepo.Commit("main", gitserver.Change{Message: "Fix app.yaml", Files: map[string]string{
		"badyaml/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fixed\n",
	}})
	g.Expect(err).NotTo(HaveOccurred())
	requestSync(g, ns)
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, "catalog.badyaml.main")
		g.Expect(pr.Status.ContentWarning).To(BeNil())
		g.Expect(contentValid(*pr)).To(PointTo(MatchFields(IgnoreExtras, Fields{
			"Status": Equal(metav1.ConditionTrue), "Reason": Equal(kpov1.ValidReason),
		})))
	}, timeout, interval).Should(Succeed())
}

func getRepository(g Gomega, ns, name string) *kpov1.Repository {
	repo := &kpov1.Repository{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, repo)).To(Succeed())
	return repo
}

// resourceVersions maps every PackageRevision and ConfigMap of ns to its resourceVersion.
func resourceVersions(g Gomega, ns string) map[string]string {
	out := map[string]string{}
	prs := &kpov1.PackageRevisionList{}
	g.Expect(k8sClient.List(context.Background(), prs, client.InNamespace(ns))).To(Succeed())
	for _, pr := range prs.Items {
		out["packagerevision/"+pr.Name] = pr.ResourceVersion
	}
	cms := &corev1.ConfigMapList{}
	g.Expect(k8sClient.List(context.Background(), cms, client.InNamespace(ns))).To(Succeed())
	for _, cm := range cms.Items {
		out["configmap/"+cm.Name] = cm.ResourceVersion
	}
	return out
}

// commitSymlink commits, with the system git as another client would, a symbolic link at
// path pointing to target on branch of a served repository.
func commitSymlink(t testing.TB, repo *gitserver.Repo, branch, path, target string) {
	t.Helper()
	g := NewWithT(t)
	parent, err := repo.RefHash("refs/heads/" + branch)
	g.Expect(err).NotTo(HaveOccurred())
	env := append(os.Environ(),
		"GIT_INDEX_FILE="+filepath.Join(t.TempDir(), "index"),
		"GIT_AUTHOR_NAME=other", "GIT_AUTHOR_EMAIL=other@example.com",
		"GIT_COMMITTER_NAME=other", "GIT_COMMITTER_EMAIL=other@example.com")
	git := func(stdin string, args ...string) string {
		cmd := exec.Command("git", append([]string{"--git-dir", repo.Dir}, args...)...)
		cmd.Env, cmd.Stdin = env, strings.NewReader(stdin)
		out, err := cmd.Output()
		g.Expect(err).NotTo(HaveOccurred(), "git %v", args)
		return strings.TrimSpace(string(out))
	}
	git("", "read-tree", parent)
	blob := git(target, "hash-object", "-w", "--stdin")
	git("", "update-index", "--add", "--cacheinfo", "120000,"+blob+","+path)
	tree := git("", "write-tree")
	commit := git("Add a symlink\n", "commit-tree", tree, "-p", parent)
	git("", "update-ref", "refs/heads/"+branch, commit, parent)
}

func TestSetRevisionConditions_contentValid_followsTheStatus_andKeepsItsTransitionTime(t *testing.T) {
	kf := kptfile("web") + "status:\n  conditions:\n  - type: example.com/checked\n    status: \"True\"\n    reason: Checked\n"
	cm := &corev1.ConfigMap{Data: map[string]string{"Kptfile": kf}}
	long := metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		name    string
		status  kpov1.PackageRevisionStatus
		want    metav1.ConditionStatus
		reason  string
		message string
	}{
		{"not read yet", kpov1.PackageRevisionStatus{}, metav1.ConditionUnknown, kpov1.ProgressingReason, "not read from Git yet"},
		{"valid", kpov1.PackageRevisionStatus{Commit: "c1"}, metav1.ConditionTrue, kpov1.ValidReason, "the files read from Git are valid"},
		{"synced with a warning", kpov1.PackageRevisionStatus{Commit: "c1",
			ContentWarning: &kpov1.ContentError{Reason: kpov1.InvalidKptfileReason, Message: "Kptfile: invalid Kptfile"}},
			metav1.ConditionFalse, kpov1.InvalidKptfileReason, "Kptfile: invalid Kptfile"},
		{"not stored", kpov1.PackageRevisionStatus{Commit: "c1",
			ContentError: &kpov1.ContentError{Reason: kpov1.InvalidContentReason, Message: "a.yaml: package contains a symlink"}},
			metav1.ConditionFalse, kpov1.InvalidContentReason, "a.yaml: package contains a symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			pr := &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Status: tt.status}
			pr.Status.Lifecycle, pr.Spec.Lifecycle = kpov1.LifecyclePublished, kpov1.LifecyclePublished
			controller.SetRevisionConditions(pr, cm, nil)
			c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ContentValidCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(*c).To(MatchFields(IgnoreExtras, Fields{
				"Status": Equal(tt.want), "Reason": Equal(tt.reason), "Message": Equal(tt.message), "ObservedGeneration": Equal(int64(3)),
			}))
			g.Expect(meta.FindStatusCondition(pr.Status.Conditions, "example.com/checked")).NotTo(BeNil(), "the Kptfile's conditions are still mirrored")

			// Set again on an unchanged revision, nothing changes, not even the transition time.
			c.LastTransitionTime = long
			before := pr.DeepCopy()
			controller.SetRevisionConditions(pr, cm, nil)
			g.Expect(pr.Status.Conditions).To(Equal(before.Status.Conditions))

			// A different status is a transition.
			if tt.want == metav1.ConditionTrue {
				pr.Status.ContentWarning = &kpov1.ContentError{Reason: kpov1.InvalidContentReason, Message: "a.yaml: invalid YAML"}
			} else {
				pr.Status.Commit, pr.Status.ContentError, pr.Status.ContentWarning = "c2", nil, nil
			}
			controller.SetRevisionConditions(pr, cm, nil)
			c = meta.FindStatusCondition(pr.Status.Conditions, kpov1.ContentValidCondition)
			g.Expect(c.Status).NotTo(Equal(tt.want))
			g.Expect(c.LastTransitionTime).NotTo(Equal(long))
		})
	}
}
