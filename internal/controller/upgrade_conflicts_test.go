package controller_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
)

// appData is a ConfigMap of three fields an upgrade test changes on both sides.
func appData(size, color, shape string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  size: " + size + "\n  color: " + color + "\n  shape: " + shape + "\n"
}

func setAppData(size, color, shape string) func(map[string]string) {
	return func(d map[string]string) {
		i := strings.Index(d["app.yaml"], "\ndata:\n")
		if i < 0 {
			d["app.yaml"] = appData(size, color, shape)
			return
		}
		d["app.yaml"] = d["app.yaml"][:i] + "\ndata:\n  size: " + size + "\n  color: " + color + "\n  shape: " + shape + "\n"
	}
}

func conflictByField(pr *kpov1.PackageRevision) map[string]kpov1.MergeConflict {
	out := map[string]kpov1.MergeConflict{}
	for _, c := range pr.Status.Conflicts {
		out[c.Field] = c
	}
	return out
}

// newConflictFixture registers "blueprints" and "south" in a new namespace and publishes
// blueprint base v1 (size small, color blue, shape round); it returns the namespace, south's Git
// repository and base v1.
func newConflictFixture(t *testing.T) (string, *gitserver.Repo, *kpov1.PackageRevision) {
	t.Helper()
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	newEmptyRepository(t, srv, ns, "blueprints")
	southGit := newEmptyRepository(t, srv, ns, "south")
	newDraft(t, ns, "base-v1", "blueprints", "base", "v1", initSource("base"))
	v1name := waitDraft(t, ns, "base-v1")
	editAndWait(t, ns, v1name, setAppData("small", "blue", "round"))
	return ns, southGit, publish(t, ns, v1name)
}

func TestPackageDraft_upgradeWithConflicts_recordsThemBlocksProposalUntilResolvedAndPublishesTheChoices(t *testing.T) {
	g := NewWithT(t)
	ns, southGit, v1 := newConflictFixture(t)

	newDraft(t, ns, "south", "south", "app", "first", kpov1.PackageDraftSource{
		Clone: &kpov1.CloneSource{UpstreamRef: &kpov1.LocalReference{Name: v1.Name}}})
	southName := waitDraft(t, ns, "south")
	editAndWait(t, ns, southName, setAppData("medium", "green", "square"))
	current := publish(t, ns, southName)

	newDraft(t, ns, "base-v2", "blueprints", "base", "v2", copySource(v1.Name))
	v2name := waitDraft(t, ns, "base-v2")
	editAndWait(t, ns, v2name, setAppData("large", "red", "oval"))
	v2 := publish(t, ns, v2name)

	src := upgradeSource(v1.Name, v2.Name, current.Name)
	src.Upgrade.AllowConflicts = true
	newDraft(t, ns, "south-up", "south", "app", "upgrade", src)
	name := waitDraft(t, ns, "south-up")

	// Each conflict is recorded with its file, resource, field and both values; the draft
	// holds upstream's values meanwhile.
	var pr *kpov1.PackageRevision
	g.Eventually(func(g Gomega) {
		pr = getRevision(g, ns, name)
		g.Expect(pr.Status.Conflicts).To(HaveLen(3))
		c := findCondition(pr.Status.Conditions, kpov1.ConflictsResolvedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.UnresolvedConflictsReason))
		g.Expect(c.Message).To(HavePrefix("3 conflict(s) unresolved: "))
	}, timeout, interval).Should(Succeed())
	byField := conflictByField(pr)
	size, color, shape := byField["data.size"], byField["data.color"], byField["data.shape"]
	g.Expect(size).To(Equal(kpov1.MergeConflict{ID: size.ID, File: "app.yaml", APIVersion: "v1", Kind: "ConfigMap", Name: "app",
		Field: "data.size", Local: "medium", Upstream: "large"}))
	g.Expect(color.Local).To(Equal("green"))
	g.Expect(shape.Upstream).To(Equal("oval"))
	g.Expect(contentOf(g, ns, name).Data["app.yaml"]).To(ContainSubstring("  size: large\n  color: red\n  shape: oval\n"))
	log, err := gitOut(t, southGit, "log", "-1", "--format=%B", "refs/heads/drafts/app/upgrade")
	g.Expect(err).NotTo(HaveOccurred(), log)
	g.Expect(strings.Count(log, "Kpo-Conflict: ")).To(Equal(3), "Git says the draft was created with conflicts")

	// Bad choices are refused with a reason and write nothing.
	for _, bad := range []struct{ annotation, want string }{
		{"garbage", "must be a JSON object"},
		{`{"0000000000":"local"}`, "is not a conflict of this draft"},
		{`{"` + size.ID + `":"mine"}`, `is neither "local" nor "upstream"`},
	} {
		annotateRevision(g, ns, name, kpov1.ResolveConflictsAnnotation, bad.annotation)
		g.Eventually(func(g Gomega) {
			c := findCondition(getRevision(g, ns, name).Status.Conditions, kpov1.ReadyCondition)
			g.Expect(c.Reason).To(Equal(kpov1.InvalidConflictResolutionReason))
			g.Expect(c.Message).To(ContainSubstring(bad.want))
		}, timeout, interval).Should(Succeed())
		g.Expect(getRevision(g, ns, name).Status.Commit).To(Equal(pr.Status.Commit), "nothing committed for %s", bad.annotation)
	}

	// The proposal waits for the conflicts.
	annotateRevision(g, ns, name, kpov1.ResolveConflictsAnnotation, "{}")
	g.Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecycleProposed)).To(Succeed())
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		c := findCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c.Reason).To(Equal(kpov1.UnresolvedConflictsReason))
		g.Expect(c.Message).To(ContainSubstring("cannot be proposed: 3 conflict(s) unresolved"))
		g.Expect(pr.Status.Lifecycle).To(Equal(kpov1.LifecycleDraft))
		g.Expect(pr.Annotations).NotTo(HaveKey(kpov1.ResolveConflictsAnnotation), "an empty choice is applied (and removed) too")
	}, timeout, interval).Should(Succeed())

	// One conflict resolved by editing its field, one by choosing local, one upstream; the
	// proposal then goes through.
	editContent(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "shape: oval", "shape: hexagon", 1)
	})
	g.Eventually(func(g Gomega) {
		g.Expect(conflictByField(getRevision(g, ns, name))["data.shape"].Resolution).To(Equal(kpov1.ConflictEdited))
	}, timeout, interval).Should(Succeed())
	// The resolver is whoever the admission policy stamps, never a name the client sends.
	forged := getRevision(g, ns, name)
	patch := client.MergeFrom(forged.DeepCopy())
	forged.Annotations = map[string]string{
		kpov1.ResolveConflictsAnnotation: `{"` + size.ID + `":"local","` + color.ID + `":"upstream"}`,
		kpov1.ResolvedByAnnotation:       "mallory",
	}
	g.Expect(k8sClient.Patch(context.Background(), forged, patch)).To(Succeed())
	g.Expect(forged.Annotations[kpov1.ResolvedByAnnotation]).NotTo(Equal("mallory"), "stamped by kpo-resolve-conflicts-stamp")
	resolver := forged.Annotations[kpov1.ResolvedByAnnotation]
	g.Expect(resolver).NotTo(BeEmpty())
	published := waitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	g.Expect(conflictByField(published)["data.size"].Resolution).To(Equal(kpov1.ConflictLocal))
	g.Expect(conflictByField(published)["data.color"].Resolution).To(Equal(kpov1.ConflictUpstream))
	g.Expect(published.Annotations).NotTo(HaveKey(kpov1.ResolvedByAnnotation))
	log, err = gitOut(t, southGit, "log", "-1", "--format=%an%n%B", "refs/heads/proposed/app/upgrade")
	g.Expect(err).NotTo(HaveOccurred(), log)
	g.Expect(log).To(HavePrefix(resolver+"\n"), "the resolution commit is authored by the resolver")
	g.Expect(log).To(ContainSubstring("Kpo-Resolved: " + size.ID + "=local"))
	g.Expect(log).To(ContainSubstring("Kpo-Resolved: " + color.ID + "=upstream"))

	published = publish(t, ns, name)
	g.Expect(published.Status.Conflicts).To(BeEmpty(), "a published revision has no conflicts left")
	show, err := gitOut(t, southGit, "show", "app/v2:app/app.yaml")
	g.Expect(err).NotTo(HaveOccurred(), show)
	g.Expect(show).To(ContainSubstring("  size: medium\n  color: red\n  shape: hexagon\n"))
}

func TestPackageRevision_rebaseOnto_mergesANewerUpstreamIntoTheDraftWithItsConflicts(t *testing.T) {
	g := NewWithT(t)
	ns, southGit, v1 := newConflictFixture(t)
	newDraft(t, ns, "base-v2", "blueprints", "base", "v2", copySource(v1.Name))
	v2name := waitDraft(t, ns, "base-v2")
	editAndWait(t, ns, v2name, setAppData("large", "red", "round"))
	v2 := publish(t, ns, v2name)

	// A draft cloned from v1 and edited, not published: rebased onto v2.
	newDraft(t, ns, "south", "south", "app", "first", kpov1.PackageDraftSource{
		Clone: &kpov1.CloneSource{UpstreamRef: &kpov1.LocalReference{Name: v1.Name}}})
	name := waitDraft(t, ns, "south")
	editAndWait(t, ns, name, setAppData("medium", "blue", "square"))
	g.Eventually(func(g Gomega) {
		g.Expect(getRevision(g, ns, name).Status.UpstreamRevision).To(Equal(v1.Name))
	}, timeout, interval).Should(Succeed())

	// A revision of another package is refused, and nothing is written.
	before := getRevision(g, ns, name).Status.Commit
	annotateRevision(g, ns, name, kpov1.RebaseOntoAnnotation, name)
	g.Eventually(func(g Gomega) {
		c := findCondition(getRevision(g, ns, name).Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c.Reason).To(Equal(kpov1.SourceNotPublishedReason))
	}, timeout, interval).Should(Succeed())
	g.Expect(getRevision(g, ns, name).Status.Commit).To(Equal(before))

	annotateRevision(g, ns, name, kpov1.RebaseOntoAnnotation, v2.Name)
	var pr *kpov1.PackageRevision
	g.Eventually(func(g Gomega) {
		pr = getRevision(g, ns, name)
		g.Expect(pr.Annotations).NotTo(HaveKey(kpov1.RebaseOntoAnnotation))
		g.Expect(pr.Status.UpstreamRevision).To(Equal(v2.Name))
		g.Expect(pr.Status.Conflicts).To(HaveLen(1))
	}, timeout, interval).Should(Succeed())
	size := pr.Status.Conflicts[0]
	g.Expect(size.Field).To(Equal("data.size"))
	g.Expect(size.Local).To(Equal("medium"))
	g.Expect(size.Upstream).To(Equal("large"))
	g.Expect(contentOf(g, ns, name).Data["app.yaml"]).To(ContainSubstring("  size: large\n  color: red\n  shape: square\n"),
		"upstream's change merged, the local one kept, the conflict at upstream's value")
	log, err := gitOut(t, southGit, "log", "-1", "--format=%B", "refs/heads/drafts/app/first")
	g.Expect(err).NotTo(HaveOccurred(), log)
	g.Expect(log).To(ContainSubstring("Kpo-Rebase: " + v2.Name))
	g.Expect(log).To(ContainSubstring("Kpo-Conflicts: 1"))

	annotateRevision(g, ns, name, kpov1.ResolveConflictsAnnotation, `{"`+size.ID+`":"local"}`)
	published := publish(t, ns, name)
	g.Expect(published.Status.UpstreamLock.Git.Commit).To(Equal(v2.Status.Commit))
	show, err := gitOut(t, southGit, "show", "app/v1:app/app.yaml")
	g.Expect(err).NotTo(HaveOccurred(), show)
	g.Expect(show).To(ContainSubstring("  size: medium\n  color: red\n  shape: square\n"))
}
