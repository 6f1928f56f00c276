package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
)

// injectionPoint is a resource of the blueprint that a PackageVariant fills from the cluster.
const injectionPoint = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  annotations:\n" +
	"    kpt.dev/config-injection: required\n    config.kubernetes.io/local-config: \"true\"\ndata:\n  color: none\n"

// newVariantFixture registers "blueprints" and the deployment repository "deployments" in a new
// namespace and publishes blueprint "base" v1 (app.yaml and an injection point); it returns
// the namespace and base v1's PackageRevision name.
func newVariantFixture(t *testing.T) (string, string) {
	t.Helper()
	ns, srv := newBlueprintNamespace(t)
	newEmptyRepository(t, srv, ns, "deployments", func(r *kpov1.Repository) { r.Spec.Deployment = true })
	return ns, publishBlueprint(t, ns, map[string]string{"app.yaml": appConfigMap, "settings.yaml": injectionPoint})
}

// newBlueprintNamespace registers "blueprints" in a new namespace with its own Git server.
func newBlueprintNamespace(t *testing.T) (string, *gitserver.Server) {
	t.Helper()
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	newEmptyRepository(t, srv, ns, "blueprints")
	return ns, srv
}

// publishBlueprint publishes blueprint "base" v1 with files and returns its PackageRevision
// name.
func publishBlueprint(t *testing.T, ns string, files map[string]string) string {
	t.Helper()
	newDraft(t, ns, "base-v1", "blueprints", "base", "v1", initSource("base"))
	name := waitDraft(t, ns, "base-v1")
	editAndWait(t, ns, name, func(d map[string]string) {
		for k, v := range files {
			d[k] = v
		}
	})
	return publish(t, ns, name).Name
}

func newVariant(t *testing.T, c client.Client, ns, name string, mutate func(*kpov1.PackageVariant)) {
	t.Helper()
	pv := &kpov1.PackageVariant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kpov1.PackageVariantSpec{
			Upstream:   kpov1.UpstreamPackage{Repo: "blueprints", Package: "base", Revision: "v1"},
			Downstream: kpov1.DownstreamPackage{Repo: "deployments", Package: name},
		},
	}
	if mutate != nil {
		mutate(pv)
	}
	NewWithT(t).Expect(c.Create(context.Background(), pv)).To(Succeed())
}

func getVariant(g Gomega, ns, name string) *kpov1.PackageVariant {
	pv := &kpov1.PackageVariant{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pv)).To(Succeed())
	return pv
}

// variantCondition waits until a PackageVariant's condition of type has status (and reason,
// when given) for its current generation, and returns it.
func variantCondition(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var cond metav1.Condition
	NewWithT(t).Eventually(func(g Gomega) {
		pv := getVariant(g, ns, name)
		c := meta.FindStatusCondition(pv.Status.Conditions, typ)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(pv.Generation))
		g.Expect(c.Status).To(Equal(status), "%s: %s", c.Reason, c.Message)
		if reason != "" {
			g.Expect(c.Reason).To(Equal(reason), c.Message)
		}
		cond = *c
	}, timeout, interval).Should(Succeed())
	return cond
}

// variantTarget waits for the variant to be Ready and returns its only downstream target.
func variantTarget(t *testing.T, ns, name string) string {
	t.Helper()
	variantCondition(t, ns, name, kpov1.ReadyCondition, metav1.ConditionTrue, kpov1.UpToDateReason)
	pv := getVariant(NewWithT(t), ns, name)
	NewWithT(t).Expect(pv.Status.DownstreamTargets).To(HaveLen(1))
	return pv.Status.DownstreamTargets[0].Name
}

func patchVariant(t *testing.T, c client.Client, ns, name string, mutate func(*kpov1.PackageVariant)) error {
	t.Helper()
	pv := getVariant(NewWithT(t), ns, name)
	patch := client.MergeFrom(pv.DeepCopy())
	mutate(pv)
	return c.Patch(context.Background(), pv, patch)
}

func newInjectedConfigMap(t *testing.T, ns, name, color string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string]string{"color": color}}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), cm)).To(Succeed())
}

func TestPackageVariant_clonesCustomisesAndUpgradesKeepingLocalEdits(t *testing.T) {
	g := NewWithT(t)
	ns, v1 := newVariantFixture(t)
	newInjectedConfigMap(t, ns, "east-settings", "red")
	newVariant(t, k8sClient, ns, "app", func(pv *kpov1.PackageVariant) {
		pv.Spec.Labels = map[string]string{"team": "east"}
		pv.Spec.Annotations = map[string]string{"example.com/owner": "east-team"}
		pv.Spec.PackageContext = &kpov1.PackageContext{Data: map[string]string{"region": "east"}}
		pv.Spec.Pipeline = &kpov1.Pipeline{Mutators: []kpov1.Function{{
			Name: "labels", Image: "ghcr.io/kptdev/krm-functions-catalog/set-labels:latest", ConfigMap: map[string]string{"tier": "web"}}}}
		pv.Spec.Injectors = []kpov1.InjectionSelector{{Name: "missing"}, {Name: "east-settings"}}
	})

	// Clone on create, customised in the same draft.
	name := variantTarget(t, ns, "app")
	g.Expect(name).To(Equal("deployments.app.packagevariant-1"))
	pr := waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	g.Expect(pr.Labels).To(HaveKeyWithValue(kpov1.PackageVariantLabel, "app"))
	g.Expect(pr.Labels).To(HaveKeyWithValue("team", "east"))
	g.Expect(pr.Annotations).To(HaveKeyWithValue("example.com/owner", "east-team"))
	g.Expect(pr.Status.UpstreamRevision).To(Equal(v1))
	g.Expect(pr.Spec.ReadinessGates).To(ContainElement(kpov1.ReadinessGate{ConditionType: "config.injection.ConfigMap.settings"}))
	g.Eventually(func(g Gomega) {
		g.Expect(meta.IsStatusConditionTrue(getRevision(g, ns, name).Status.Conditions, "config.injection.ConfigMap.settings")).To(BeTrue(), "mirrored from the Kptfile")
	}, timeout, interval).Should(Succeed())
	data := contentOf(g, ns, name).Data
	g.Expect(data["package-context.yaml"]).To(ContainSubstring("region: east"))
	g.Expect(data["package-context.yaml"]).To(ContainSubstring("name: app"))
	g.Expect(data["Kptfile"]).To(ContainSubstring("name: PackageVariant.app.labels.0"))
	g.Expect(data["app.yaml"]).To(ContainSubstring("tier: web"), "the prepended mutator ran")
	g.Expect(data["settings.yaml"]).To(ContainSubstring("color: red"))
	g.Expect(data["settings.yaml"]).To(ContainSubstring("kpt.dev/injected-resource-name: east-settings"))
	drafts := &kpov1.PackageDraftList{}
	g.Expect(k8sClient.List(context.Background(), drafts, client.InNamespace(ns), client.MatchingLabels{kpov1.PackageVariantLabel: "app"})).To(Succeed())
	g.Expect(drafts.Items).To(HaveLen(1), "one clone PackageDraft")

	// A customisation change edits the existing draft.
	g.Expect(patchVariant(t, k8sClient, ns, "app", func(pv *kpov1.PackageVariant) {
		pv.Spec.PackageContext.Data["region"] = "west"
	})).To(Succeed())
	g.Expect(variantTarget(t, ns, "app")).To(Equal(name))
	data = contentOf(g, ns, name).Data
	g.Expect(data["package-context.yaml"]).To(ContainSubstring("region: west"))
	g.Expect(strings.Count(data["Kptfile"], "PackageVariant.app.")).To(Equal(1), "re-applied, not added again")

	// A local edit, then publication by an approver.
	editAndWait(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "  size: small\n", "  size: small\n  local: kept\n", 1)
	})
	publish(t, ns, name)
	variantCondition(t, ns, "app", kpov1.ReadyCondition, metav1.ConditionTrue, kpov1.UpToDateReason)

	// Upstream v2; the variant moves to it with a three-way merge.
	newDraft(t, ns, "base-v2", "blueprints", "base", "v2", copySource(v1))
	v2name := waitDraft(t, ns, "base-v2")
	editAndWait(t, ns, v2name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "size: small", "size: large", 1)
	})
	v2 := publish(t, ns, v2name)
	g.Expect(patchVariant(t, k8sClient, ns, "app", func(pv *kpov1.PackageVariant) { pv.Spec.Upstream.Revision = "v2" })).To(Succeed())
	upgraded := variantTarget(t, ns, "app")
	g.Expect(upgraded).To(Equal("deployments.app.packagevariant-2"))
	pr = getRevision(g, ns, upgraded)
	g.Expect(pr.Status.UpstreamRevision).To(Equal(v2.Name))
	data = contentOf(g, ns, upgraded).Data
	g.Expect(data["app.yaml"]).To(ContainSubstring("size: large"), "the upstream change is merged")
	g.Expect(data["app.yaml"]).To(ContainSubstring("local: kept"), "the local edit is kept")
	g.Expect(data["package-context.yaml"]).To(ContainSubstring("region: west"))
	g.Expect(strings.Count(data["Kptfile"], "PackageVariant.app.")).To(Equal(1))
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.List(context.Background(), drafts, client.InNamespace(ns), client.MatchingLabels{kpov1.PackageVariantLabel: "app"})).To(Succeed())
		g.Expect(drafts.Items).To(HaveLen(1), "the clone's PackageDraft goes once its revision is published")
		g.Expect(drafts.Items[0].Spec.Source.Upgrade).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())
}

func TestPackageVariant_adoptionAndDeletionPolicies(t *testing.T) {
	g := NewWithT(t)
	ns, v1 := newVariantFixture(t)

	// A hand-made downstream package, published.
	newDraft(t, ns, "by-hand", "deployments", "manual", "first", kpov1.PackageDraftSource{
		Clone: &kpov1.CloneSource{UpstreamRef: &kpov1.LocalReference{Name: v1}}})
	manual := publish(t, ns, waitDraft(t, ns, "by-hand")).Name

	newVariant(t, k8sClient, ns, "manual", nil)
	c := variantCondition(t, ns, "manual", kpov1.StalledCondition, metav1.ConditionTrue, kpov1.DownstreamNotOwnedReason)
	g.Expect(c.Message).To(ContainSubstring("adoptExisting"))
	g.Expect(getRevision(g, ns, manual).Labels).NotTo(HaveKey(kpov1.PackageVariantLabel))

	g.Expect(patchVariant(t, k8sClient, ns, "manual", func(pv *kpov1.PackageVariant) {
		pv.Spec.AdoptionPolicy = kpov1.AdoptionPolicyAdoptExisting
	})).To(Succeed())
	// Adopted; its injection point gets its condition and gate in a new draft (a copy).
	copied := variantTarget(t, ns, "manual")
	g.Expect(copied).To(Equal("deployments.manual.packagevariant-1"))
	g.Expect(getRevision(g, ns, manual).Labels).To(HaveKeyWithValue(kpov1.PackageVariantLabel, "manual"))
	g.Expect(getRevision(g, ns, copied).Spec.ReadinessGates).To(ConsistOf(kpov1.ReadinessGate{ConditionType: "config.injection.ConfigMap.settings"}))
	variantCondition(t, ns, "manual", kpov1.StalledCondition, metav1.ConditionFalse, "")

	// Users cannot take the ownership label off (or put it on).
	pr := getRevision(g, ns, manual)
	patch := client.MergeFrom(pr.DeepCopy())
	delete(pr.Labels, kpov1.PackageVariantLabel)
	g.Expect(userClient(t, ns, "alice", "kpo-approver").Patch(context.Background(), pr, patch)).To(MatchError(ContainSubstring("kpo.dev/package-variant")))

	// deletionPolicy delete: the draft goes, the published revision is proposed for deletion.
	g.Expect(k8sClient.Delete(context.Background(), getVariant(g, ns, "manual"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getRevision(g, ns, manual).Spec.Lifecycle).To(Equal(kpov1.LifecycleDeletionProposed))
		g.Expect(apierrors.IsNotFound(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: copied}, &kpov1.PackageRevision{}))).To(BeTrue())
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "manual"}, &kpov1.PackageVariant{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}, timeout, interval).Should(Succeed())

	// deletionPolicy delete on a draft: the draft goes.
	newVariant(t, k8sClient, ns, "gone", nil)
	gone := variantTarget(t, ns, "gone")
	waitLifecycle(t, ns, gone, kpov1.LifecycleDraft)
	g.Expect(k8sClient.Delete(context.Background(), getVariant(g, ns, "gone"))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: gone}, &kpov1.PackageRevision{}))
	}, timeout, interval).Should(BeTrue())

	// deletionPolicy orphan: the draft stays, no longer owned, and so does its PackageDraft.
	newVariant(t, k8sClient, ns, "kept", func(pv *kpov1.PackageVariant) { pv.Spec.DeletionPolicy = kpov1.DeletionPolicyOrphan })
	kept := variantTarget(t, ns, "kept")
	waitLifecycle(t, ns, kept, kpov1.LifecycleDraft)
	g.Expect(k8sClient.Delete(context.Background(), getVariant(g, ns, "kept"))).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "kept"}, &kpov1.PackageVariant{}))
	}, timeout, interval).Should(BeTrue())
	pr = waitLifecycle(t, ns, kept, kpov1.LifecycleDraft)
	g.Expect(pr.Labels).NotTo(HaveKey(kpov1.PackageVariantLabel))
	g.Consistently(func() error {
		return k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: kept}, &kpov1.PackageRevision{})
	}, "2s", interval).Should(Succeed(), "no garbage collection of the PackageDraft abandons the draft")
}

func TestPackageVariant_approvalPolicyInitial_needsTheApprovePermissionAndTrueGates(t *testing.T) {
	g := NewWithT(t)
	ns, _ := newVariantFixture(t)
	alice := userClient(t, ns, "alice", "kpo-author")
	bob := userClient(t, ns, "bob", "kpo-approver")
	withPolicy := func(pv *kpov1.PackageVariant) {
		pv.Annotations = map[string]string{kpov1.ApprovalPolicyAnnotation: kpov1.ApprovalPolicyInitial, kpov1.ApprovedByAnnotation: "mallory"}
		pv.Spec.Injectors = []kpov1.InjectionSelector{{Name: "site-settings"}}
	}

	pv := &kpov1.PackageVariant{ObjectMeta: metav1.ObjectMeta{Name: "site", Namespace: ns}, Spec: kpov1.PackageVariantSpec{
		Upstream: kpov1.UpstreamPackage{Repo: "blueprints", Package: "base", Revision: "1"}, Downstream: kpov1.DownstreamPackage{Repo: "deployments", Package: "site"}}}
	withPolicy(pv)
	err := alice.Create(context.Background(), pv.DeepCopy())
	g.Expect(err).To(MatchError(ContainSubstring("packagerevisions/approval")), "an author cannot set an approval policy")

	newVariant(t, bob, ns, "site", withPolicy)
	g.Expect(getVariant(g, ns, "site").Annotations).To(HaveKeyWithValue(kpov1.ApprovedByAnnotation, "bob"), "stamped, whatever the client sent")

	// The required injection point has no object yet: the draft waits, unpublished.
	c := variantCondition(t, ns, "site", kpov1.ReadyCondition, metav1.ConditionFalse, "ReadinessGatesPending")
	g.Expect(c.Message).To(ContainSubstring("config.injection.ConfigMap.settings"))
	name := "deployments.site.packagevariant-1"
	g.Expect(getRevision(g, ns, name).Spec.Lifecycle).To(Equal(kpov1.LifecycleDraft))

	// An author may not change the spec of a variant with a policy (it changes what is published).
	err = patchVariant(t, alice, ns, "site", func(pv *kpov1.PackageVariant) { pv.Spec.Labels = map[string]string{"a": "b"} })
	g.Expect(err).To(MatchError(ContainSubstring("packagerevisions/approval")))

	newInjectedConfigMap(t, ns, "site-settings", "green")
	g.Expect(patchVariant(t, k8sClient, ns, "site", func(pv *kpov1.PackageVariant) { pv.Labels = map[string]string{"poke": "1"} })).To(Succeed())
	pr := waitLifecycle(t, ns, name, kpov1.LifecyclePublished)
	g.Expect(pr.Status.PublishedBy).To(Equal("bob"))
	g.Expect(pr.Status.Revision).To(Equal(1))
	variantCondition(t, ns, "site", kpov1.ReadyCondition, metav1.ConditionTrue, kpov1.UpToDateReason)
}

func TestPackageVariant_badInput_givesAClearConditionAndStalls(t *testing.T) {
	g := NewWithT(t)
	ns, _ := newVariantFixture(t)

	newVariant(t, k8sClient, ns, "reserved", func(pv *kpov1.PackageVariant) {
		pv.Spec.PackageContext = &kpov1.PackageContext{Data: map[string]string{"name": "x"}, RemoveKeys: []string{"package-path"}}
		pv.Spec.Labels = map[string]string{kpov1.LatestRevisionLabel: "true"}
		pv.Spec.Annotations = map[string]string{kpov1.ApprovedByAnnotation: "mallory"}
	})
	c := variantCondition(t, ns, "reserved", kpov1.StalledCondition, metav1.ConditionTrue, kpov1.InvalidSpecReason)
	for _, want := range []string{"spec.packageContext.data[name]", "package-path", "spec.labels[kpo.dev/latest-revision]", "spec.annotations[kpo.dev/approved-by]"} {
		g.Expect(c.Message).To(ContainSubstring(want))
	}
	variantCondition(t, ns, "reserved", kpov1.ReadyCondition, metav1.ConditionFalse, kpov1.InvalidSpecReason)

	newVariant(t, k8sClient, ns, "nowhere", func(pv *kpov1.PackageVariant) { pv.Spec.Upstream.Package = "missing" })
	c = variantCondition(t, ns, "nowhere", kpov1.ReadyCondition, metav1.ConditionFalse, kpov1.UpstreamNotFoundReason)
	g.Expect(c.Message).To(ContainSubstring(`"missing"`))

	// Nothing was created for either.
	drafts := &kpov1.PackageDraftList{}
	g.Expect(k8sClient.List(context.Background(), drafts, client.InNamespace(ns), client.HasLabels{kpov1.PackageVariantLabel})).To(Succeed())
	g.Expect(drafts.Items).To(BeEmpty())
	// No hot loop: a terminal failure is not retried, and a missing upstream only after a
	// pause; the manager's reconciles of variants (every test's) stay a handful.
	before := reconciles(t, "packagevariant")
	g.Expect(before).To(BeNumerically(">", 0), "the metric counts this manager's reconciles")
	rv := getVariant(g, ns, "reserved").ResourceVersion
	g.Consistently(func(g Gomega) {
		g.Expect(getVariant(g, ns, "reserved").ResourceVersion).To(Equal(rv))
	}, "2s", interval).Should(Succeed())
	g.Expect(reconciles(t, "packagevariant") - before).To(BeNumerically("<", 20))
}

// reconciles is the number of reconciles the in-process manager's controller has run, from
// controller-runtime's metrics.
func reconciles(t *testing.T, controller string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func TestPackageVariant_crashBeforeLabelling_reclaimsItsDraftWithoutASecondOne(t *testing.T) {
	g := NewWithT(t)
	ns, _ := newVariantFixture(t)
	newVariant(t, k8sClient, ns, "app", nil)
	name := variantTarget(t, ns, "app")

	// The state a SIGKILL between the PackageDraft producing the draft and the variant labelling
	// it leaves: an unlabelled draft (only the manager's identity can remove the label), which
	// an adoptNone variant would otherwise refuse as someone else's package.
	manager := managerClient(t)
	pr := getRevision(g, ns, name)
	patch := client.MergeFrom(pr.DeepCopy())
	delete(pr.Labels, kpov1.PackageVariantLabel)
	g.Expect(manager.Patch(context.Background(), pr, patch)).To(Succeed())
	g.Expect(patchVariant(t, k8sClient, ns, "app", func(pv *kpov1.PackageVariant) { pv.Labels = map[string]string{"poke": "1"} })).To(Succeed())

	g.Eventually(func(g Gomega) {
		g.Expect(getRevision(g, ns, name).Labels).To(HaveKeyWithValue(kpov1.PackageVariantLabel, "app"))
	}, timeout, interval).Should(Succeed())
	g.Expect(variantTarget(t, ns, "app")).To(Equal(name))
	drafts := &kpov1.PackageDraftList{}
	g.Expect(k8sClient.List(context.Background(), drafts, client.InNamespace(ns), client.MatchingLabels{kpov1.PackageVariantLabel: "app"})).To(Succeed())
	g.Expect(drafts.Items).To(HaveLen(1))
	revs := &kpov1.PackageRevisionList{}
	g.Expect(k8sClient.List(context.Background(), revs, client.InNamespace(ns), client.MatchingLabels{kpov1.RepositoryLabel: "deployments"})).To(Succeed())
	g.Expect(revs.Items).To(HaveLen(1), "one draft, never a second")

}

func TestPackageVariant_conflictingUpgrade_isReportedOnTheVariantOrRecordedWithAllowConflicts(t *testing.T) {
	g := NewWithT(t)
	ns, v1 := newVariantFixture(t)
	newInjectedConfigMap(t, ns, "settings", "red")
	newVariant(t, k8sClient, ns, "app", func(pv *kpov1.PackageVariant) {
		pv.Spec.Injectors = []kpov1.InjectionSelector{{Name: "settings"}}
	})
	name := variantTarget(t, ns, "app")
	editAndWait(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "size: small", "size: medium", 1)
	})
	published := publish(t, ns, name).Name

	newDraft(t, ns, "base-v2", "blueprints", "base", "v2", copySource(v1))
	v2name := waitDraft(t, ns, "base-v2")
	editAndWait(t, ns, v2name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "size: small", "size: large", 1)
	})
	v2 := publish(t, ns, v2name)
	g.Expect(patchVariant(t, k8sClient, ns, "app", func(pv *kpov1.PackageVariant) { pv.Spec.Upstream.Revision = "" })).To(Succeed(), "follow the newest")

	c := variantCondition(t, ns, "app", kpov1.StalledCondition, metav1.ConditionTrue, kpov1.MergeConflictReason)
	g.Expect(c.Message).To(And(ContainSubstring("app.yaml"), ContainSubstring("data.size")))
	variantCondition(t, ns, "app", kpov1.ReadyCondition, metav1.ConditionFalse, kpov1.MergeConflictReason)
	g.Expect(getVariant(g, ns, "app").Status.DownstreamTargets).To(Equal([]kpov1.DownstreamTarget{{Name: published, RenderStatus: kpov1.RenderSucceededReason}}))

	// With allowConflicts the upgrade draft is created with its conflict recorded.
	g.Expect(patchVariant(t, k8sClient, ns, "app", func(pv *kpov1.PackageVariant) { pv.Spec.AllowConflicts = true })).To(Succeed())
	var draft *kpov1.PackageRevision
	g.Eventually(func(g Gomega) {
		list := &kpov1.PackageRevisionList{}
		g.Expect(k8sClient.List(context.Background(), list, client.InNamespace(ns),
			client.MatchingLabels{kpov1.PackageVariantLabel: "app"})).To(Succeed())
		draft = nil
		for i := range list.Items {
			if list.Items[i].Status.Lifecycle == kpov1.LifecycleDraft {
				draft = &list.Items[i]
			}
		}
		g.Expect(draft).NotTo(BeNil())
		g.Expect(draft.Status.Conflicts).To(HaveLen(1))
	}, timeout, interval).Should(Succeed())
	g.Expect(draft.Status.Conflicts[0].Field).To(Equal("data.size"))

	// A newer upstream: the draft, with its conflict unresolved, cannot be rebased yet.
	newDraft(t, ns, "base-v3", "blueprints", "base", "v3", copySource(v2.Name))
	v3name := waitDraft(t, ns, "base-v3")
	editAndWait(t, ns, v3name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "color: blue", "color: green", 1)
	})
	v3 := publish(t, ns, v3name)
	variantCondition(t, ns, "app", kpov1.StalledCondition, metav1.ConditionTrue, kpov1.UnresolvedConflictsReason)

	// Resolved, it is rebased onto the newer upstream instead of waiting as DraftBehindUpstream.
	annotateRevision(g, ns, draft.Name, kpov1.ResolveConflictsAnnotation, `{"`+draft.Status.Conflicts[0].ID+`":"local"}`)
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, draft.Name)
		g.Expect(pr.Status.UpstreamRevision).To(Equal(v3.Name))
		g.Expect(pr.Annotations).NotTo(HaveKey(kpov1.RebaseOntoAnnotation))
		g.Expect(pr.Status.Conflicts).To(BeEmpty(), "a clean rebase ends the earlier conflicts")
	}, timeout, interval).Should(Succeed())
	app := contentOf(g, ns, draft.Name).Data["app.yaml"]
	g.Expect(app).To(ContainSubstring("size: medium"), "the chosen local value survives the rebase")
	g.Expect(app).To(ContainSubstring("color: green"), "the newer upstream's change is merged")
}

func TestPackageVariant_approvalPolicyAlways_publishesEveryRevision(t *testing.T) {
	g := NewWithT(t)
	ns, v1 := newVariantFixture(t)
	bob := userClient(t, ns, "bob", "kpo-approver")
	newInjectedConfigMap(t, ns, "fleet-settings", "blue")
	newVariant(t, bob, ns, "fleet", func(pv *kpov1.PackageVariant) {
		pv.Annotations = map[string]string{kpov1.ApprovalPolicyAnnotation: kpov1.ApprovalPolicyAlways}
		pv.Spec.Injectors = []kpov1.InjectionSelector{{Name: "fleet-settings"}}
	})
	first := waitLifecycle(t, ns, "deployments.fleet.packagevariant-1", kpov1.LifecyclePublished)
	g.Expect(first.Status.PublishedBy).To(Equal("bob"))

	newDraft(t, ns, "base-v2", "blueprints", "base", "v2", copySource(v1))
	v2name := waitDraft(t, ns, "base-v2")
	editAndWait(t, ns, v2name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "size: small", "size: large", 1)
	})
	publish(t, ns, v2name)
	g.Expect(patchVariant(t, bob, ns, "fleet", func(pv *kpov1.PackageVariant) { pv.Spec.Upstream.Revision = "v2" })).To(Succeed())

	second := waitLifecycle(t, ns, "deployments.fleet.packagevariant-2", kpov1.LifecyclePublished)
	g.Expect(second.Status.Revision).To(Equal(2))
	g.Expect(second.Status.PublishedBy).To(Equal("bob"))
	g.Expect(contentOf(g, ns, requestContent(t, ns, second.Name, time.Now()).Name).Data["app.yaml"]).To(ContainSubstring("size: large"))
	variantCondition(t, ns, "fleet", kpov1.ReadyCondition, metav1.ConditionTrue, kpov1.UpToDateReason)
}
