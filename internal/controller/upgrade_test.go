package controller_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

const appConfigMap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  color: blue\n  size: small\n"

// editAndWait edits a draft's content and waits until the edit is committed and Ready.
func editAndWait(t *testing.T, ns, name string, edit func(map[string]string)) {
	t.Helper()
	before := getRevision(NewWithT(t), ns, name).Status.Commit
	editContent(t, ns, name, edit)
	NewWithT(t).Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		g.Expect(pr.Status.Commit).NotTo(Equal(before), "%s: %q", name, contentOf(g, ns, name).Data["app.yaml"])
		g.Expect(findCondition(pr.Status.Conditions, kpov1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
	}, timeout, interval).Should(Succeed())
}

func upgradeSource(oldUp, newUp, current string) kpov1.PackageDraftSource {
	return kpov1.PackageDraftSource{Upgrade: &kpov1.UpgradeSource{
		OldUpstream: kpov1.LocalReference{Name: oldUp}, NewUpstream: kpov1.LocalReference{Name: newUp},
		Current: kpov1.LocalReference{Name: current}}}
}

func TestPackageDraft_upgrade_mergesUpstreamChangesKeepingLocalOnesAndReportsConflicts(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	newEmptyRepository(t, srv, ns, "blueprints")
	downstreamRepos := []string{"east", "west", "south"}
	for _, r := range downstreamRepos {
		newEmptyRepository(t, srv, ns, r, func(r *kpov1.Repository) { r.Spec.Deployment = true })
	}

	newDraft(t, ns, "base-v1", "blueprints", "base", "v1", initSource("base"))
	v1name := waitDraft(t, ns, "base-v1")
	editAndWait(t, ns, v1name, func(d map[string]string) { d["app.yaml"] = appConfigMap })
	v1 := publish(t, ns, v1name)

	current := map[string]string{}
	for _, r := range downstreamRepos {
		newDraft(t, ns, r, r, "app", "first", kpov1.PackageDraftSource{
			Clone: &kpov1.CloneSource{UpstreamRef: &kpov1.LocalReference{Name: v1.Name}}})
		name := waitDraft(t, ns, r)
		local := "  region: " + r + "\n" // a local change the upgrade must keep
		if r == "south" {
			local = "" // south changes what upstream changes: a conflict
		}
		editAndWait(t, ns, name, func(d map[string]string) {
			d["app.yaml"] = strings.Replace(d["app.yaml"], "  size: small\n", "  size: small\n"+local, 1)
			if r == "south" {
				d["app.yaml"] = strings.Replace(d["app.yaml"], "size: small", "size: medium", 1)
			}
		})
		current[r] = publish(t, ns, name).Name
	}

	newDraft(t, ns, "base-v2", "blueprints", "base", "v2", copySource(v1.Name))
	v2name := waitDraft(t, ns, "base-v2")
	editAndWait(t, ns, v2name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "size: small", "size: large", 1)
	})
	v2 := publish(t, ns, v2name)
	g.Eventually(func(g Gomega) {
		behind := &kpov1.PackageRevisionList{}
		g.Expect(k8sClient.List(context.Background(), behind, client.InNamespace(ns),
			client.MatchingLabels{kpov1.UpstreamBehindLabel: "true"})).To(Succeed())
		g.Expect(behind.Items).To(HaveLen(3))
	}, timeout, interval).Should(Succeed())

	for _, r := range []string{"east", "west"} {
		newDraft(t, ns, r+"-up", r, "app", "upgrade", upgradeSource(v1.Name, v2.Name, current[r]))
		name := waitDraft(t, ns, r+"-up")
		cm := contentOf(g, ns, name)
		g.Expect(cm.Data["app.yaml"]).To(ContainSubstring("size: large"), "%s: the upstream change is merged", r)
		g.Expect(cm.Data["app.yaml"]).To(ContainSubstring("region: "+r), "%s: the local change is kept", r)
		pr := publish(t, ns, name)
		g.Expect(pr.Status.UpstreamLock.Git.Ref).To(Equal("base/v2"))
		g.Expect(pr.Status.UpstreamLock.Git.Commit).To(Equal(v2.Status.Commit))
		g.Eventually(func(g Gomega) {
			pr := getRevision(g, ns, name)
			g.Expect(pr.Status.UpstreamRevision).To(Equal(v2.Name))
			g.Expect(pr.Labels).NotTo(HaveKey(kpov1.UpstreamBehindLabel))
		}, timeout, interval).Should(Succeed())
	}

	g.Eventually(func(g Gomega) {
		behind := &kpov1.PackageRevisionList{}
		g.Expect(k8sClient.List(context.Background(), behind, client.InNamespace(ns),
			client.MatchingLabels{kpov1.UpstreamBehindLabel: "true"})).To(Succeed())
		g.Expect(behind.Items).To(HaveLen(1), "only south, not upgraded, is still behind")
		g.Expect(behind.Items[0].Name).To(Equal(current["south"]))
	}, timeout, interval).Should(Succeed())

	newDraft(t, ns, "south-up", "south", "app", "upgrade", upgradeSource(v1.Name, v2.Name, current["south"]))
	c := draftCondition(t, ns, "south-up", metav1.ConditionFalse)
	g.Expect(c.Reason).To(Equal(kpov1.MergeConflictReason))
	g.Expect(c.Message).To(ContainSubstring("app.yaml"))
	g.Expect(c.Message).To(ContainSubstring("data.size"))
	g.Expect(getRevision(g, ns, current["south"]).Status.Lifecycle).To(Equal(kpov1.LifecyclePublished), "the local revision is untouched")
}
