package controller_test

import (
	"context"
	"fmt"
	"strings"
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

// newFleet registers n deployment Repositories edge-00… labelled fleet=edge (and region, from
// regions in turn) and returns their names.
func newFleet(t *testing.T, srv *gitserver.Server, ns string, n int, regions ...string) []string {
	t.Helper()
	var names []string
	for i := range n {
		name := fmt.Sprintf("edge-%02d", i)
		newEmptyRepository(t, srv, ns, name, func(r *kpov1.Repository) {
			r.Spec.Deployment = true
			r.Labels = map[string]string{"fleet": "edge"}
			if len(regions) > 0 {
				r.Labels["region"] = regions[i%len(regions)]
			}
		})
		names = append(names, name)
	}
	return names
}

func newSet(t *testing.T, ns, name string, mutate func(*kpov1.PackageVariantSet)) {
	t.Helper()
	s := &kpov1.PackageVariantSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kpov1.PackageVariantSetSpec{
			Upstream: kpov1.UpstreamPackage{Repo: "blueprints", Package: "base"},
			Targets:  []kpov1.Target{{RepositorySelector: &metav1.LabelSelector{MatchLabels: map[string]string{"fleet": "edge"}}}},
		},
	}
	if mutate != nil {
		mutate(s)
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), s)).To(Succeed())
}

func getSet(g Gomega, ns, name string) *kpov1.PackageVariantSet {
	s := &kpov1.PackageVariantSet{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
	return s
}

// setConditionTrue waits until a set's condition of type is True with reason for its current
// generation, and returns it.
func setConditionTrue(t *testing.T, ns, name, typ, reason string) metav1.Condition {
	t.Helper()
	var cond metav1.Condition
	NewWithT(t).Eventually(func(g Gomega) {
		s := getSet(g, ns, name)
		c := meta.FindStatusCondition(s.Status.Conditions, typ)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.ObservedGeneration).To(Equal(s.Generation))
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s", c.Reason, c.Message)
		g.Expect(c.Reason).To(Equal(reason), c.Message)
		cond = *c
	}, 2*timeout, interval).Should(Succeed())
	return cond
}

// setVariants lists the PackageVariants a set controls.
func setVariants(g Gomega, ns, set string) []kpov1.PackageVariant {
	list := &kpov1.PackageVariantList{}
	g.Expect(k8sClient.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{kpov1.PackageVariantSetLabel: set})).To(Succeed())
	for _, pv := range list.Items {
		c := metav1.GetControllerOf(&pv)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Kind).To(Equal("PackageVariantSet"))
		g.Expect(c.Name).To(Equal(set))
	}
	return list.Items
}

// publishV2 publishes blueprint base v2 (size: large) as a copy of v1 and returns it.
func publishV2(t *testing.T, ns, v1 string) *kpov1.PackageRevision {
	t.Helper()
	newDraft(t, ns, "base-v2", "blueprints", "base", "v2", copySource(v1))
	name := waitDraft(t, ns, "base-v2")
	editAndWait(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "size: small", "size: large", 1)
	})
	return publish(t, ns, name)
}

func TestPackageVariantSet_fansOutOverSelectedRepositoriesAndUpgradesThem(t *testing.T) {
	g := NewWithT(t)
	start := time.Now()
	ns, srv := newBlueprintNamespace(t)
	v1 := publishBlueprint(t, ns, map[string]string{"app.yaml": appConfigMap})
	repos := newFleet(t, srv, ns, 20)
	t.Logf("fixture (20 Repositories, blueprint v1): %s", time.Since(start).Round(time.Millisecond))

	fanOut := time.Now()
	newSet(t, ns, "fleet", nil)
	setConditionTrue(t, ns, "fleet", kpov1.ReadyCondition, kpov1.UpToDateReason)
	s := getSet(g, ns, "fleet")
	g.Expect(s.Status.Variants).To(BeEquivalentTo(20))
	g.Expect(s.Status.ReadyVariants).To(BeEquivalentTo(20))
	g.Expect(setVariants(g, ns, "fleet")).To(HaveLen(20))
	drafts := map[string]string{}
	for _, repo := range repos {
		pv := "fleet-" + repo + "-base"
		drafts[pv] = variantTarget(t, ns, pv)
		pr := getRevision(g, ns, drafts[pv])
		g.Expect(pr.Spec.Repository).To(Equal(repo))
		g.Expect(pr.Status.UpstreamRevision).To(Equal(v1))
	}
	t.Logf("20 PackageVariants and 20 drafts: %s", time.Since(fanOut).Round(time.Millisecond))

	// A local edit of one downstream, then every draft is published.
	edited := drafts["fleet-edge-07-base"]
	editAndWait(t, ns, edited, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "  size: small\n", "  size: small\n  local: kept\n", 1)
	})
	for _, name := range drafts {
		publish(t, ns, name)
	}

	// Upstream v2: every variant follows it (the set names no revision) with an upgrade draft.
	upgrade := time.Now()
	v2 := publishV2(t, ns, v1)
	for pv, old := range drafts {
		var upgraded string
		g.Eventually(func(g Gomega) {
			upgraded = variantTarget(t, ns, pv)
			g.Expect(upgraded).NotTo(Equal(old))
		}, 2*timeout, interval).Should(Succeed())
		g.Expect(getRevision(g, ns, upgraded).Status.UpstreamRevision).To(Equal(v2.Name))
		data := contentOf(g, ns, upgraded).Data
		g.Expect(data["app.yaml"]).To(ContainSubstring("size: large"))
		if old == edited {
			g.Expect(data["app.yaml"]).To(ContainSubstring("local: kept"), "the local edit is kept")
		}
	}
	t.Logf("20 upgrade drafts: %s (whole test %s)", time.Since(upgrade).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func TestPackageVariantSet_templatesSelectionAndInPlaceUpdates(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, srv := newBlueprintNamespace(t)
	publishBlueprint(t, ns, map[string]string{"app.yaml": appConfigMap})
	newFleet(t, srv, ns, 2, "east", "west")
	newSet(t, ns, "fleet", func(s *kpov1.PackageVariantSet) {
		s.Spec.Targets[0].Template = &kpov1.PackageVariantTemplate{
			Downstream: &kpov1.DownstreamTemplate{PackageExpr: `"app-" + target.repo`},
			LabelExprs: []kpov1.MapExpr{
				{Key: ptr("region"), ValueExpr: ptr(`repository.labels["region"]`)},
				{KeyExpr: ptr(`"upstream." + packageDefault`), ValueExpr: ptr(`upstream.name.split(".")[2]`)},
			},
		}
	})

	// Names and labels from the template.
	setConditionTrue(t, ns, "fleet", kpov1.ReadyCondition, kpov1.UpToDateReason)
	east := getVariant(g, ns, "fleet-edge-00-app-edge-00")
	g.Expect(east.Spec.Downstream).To(Equal(kpov1.DownstreamPackage{Repo: "edge-00", Package: "app-edge-00"}))
	g.Expect(east.Spec.Labels).To(Equal(map[string]string{"region": "east", "upstream.base": "v1"}))
	g.Expect(getVariant(g, ns, "fleet-edge-01-app-edge-01").Spec.Labels).To(HaveKeyWithValue("region", "west"))
	g.Expect(getRevision(g, ns, variantTarget(t, ns, east.Name)).Labels).To(HaveKeyWithValue("region", "east"))

	// A variant edited by hand is updated back in place.
	g.Expect(patchVariant(t, k8sClient, ns, east.Name, func(pv *kpov1.PackageVariant) { pv.Spec.Labels["region"] = "tampered" })).To(Succeed())
	g.Eventually(func(g Gomega) {
		pv := getVariant(g, ns, east.Name)
		g.Expect(pv.Spec.Labels).To(HaveKeyWithValue("region", "east"))
		g.Expect(pv.UID).To(Equal(east.UID), "updated, not recreated")
	}, timeout, interval).Should(Succeed())

	// A Repository relabelled out of the selector: its variant goes, and with it (deletion
	// policy delete) its draft.
	west := getVariant(g, ns, "fleet-edge-01-app-edge-01")
	westDraft := variantTarget(t, ns, west.Name)
	repo := &kpov1.Repository{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "edge-01"}, repo)).To(Succeed())
	patch := client.MergeFrom(repo.DeepCopy())
	repo.Labels["fleet"] = "retired"
	g.Expect(k8sClient.Patch(ctx, repo, patch)).To(Succeed())
	g.Eventually(func(g Gomega) {
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: west.Name}, &kpov1.PackageVariant{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%v", err)
		err = k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: westDraft}, &kpov1.PackageRevision{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%v", err)
	}, timeout, interval).Should(Succeed())
	setConditionTrue(t, ns, "fleet", kpov1.ReadyCondition, kpov1.UpToDateReason)
	g.Expect(getSet(g, ns, "fleet").Status.Variants).To(BeEquivalentTo(1))

	// A PackageVariant of a name the set wants, not the set's, is reported and left alone.
	newVariant(t, k8sClient, ns, "fleet-edge-02-app-edge-02", func(pv *kpov1.PackageVariant) {
		pv.Spec.Downstream = kpov1.DownstreamPackage{Repo: "edge-00", Package: "by-hand"}
	})
	newFleetRepo := func(name string) {
		newEmptyRepository(t, srv, ns, name, func(r *kpov1.Repository) { r.Labels = map[string]string{"fleet": "edge", "region": "north"} })
	}
	newFleetRepo("edge-02")
	c := setConditionTrue(t, ns, "fleet", kpov1.StalledCondition, kpov1.VariantNotOwnedReason)
	g.Expect(c.Message).To(ContainSubstring("fleet-edge-02-app-edge-02"))
	g.Expect(getVariant(g, ns, "fleet-edge-02-app-edge-02").Spec.Downstream.Package).To(Equal("by-hand"))
	g.Expect(k8sClient.Delete(ctx, getVariant(g, ns, "fleet-edge-02-app-edge-02"))).To(Succeed())
	setConditionTrue(t, ns, "fleet", kpov1.ReadyCondition, kpov1.UpToDateReason)

	// An expression that does not compile stalls the set and changes no variant, without a
	// hot loop.
	generation := getVariant(g, ns, east.Name).Generation
	s := getSet(g, ns, "fleet")
	patch = client.MergeFrom(s.DeepCopy())
	s.Spec.Targets[0].Template.LabelExprs[0].ValueExpr = ptr(`repository.labels[`)
	s.Spec.Targets[0].Template.Labels = map[string]string{"new": "label"}
	g.Expect(k8sClient.Patch(ctx, s, patch)).To(Succeed())
	c = setConditionTrue(t, ns, "fleet", kpov1.StalledCondition, kpov1.InvalidTemplateReason)
	g.Expect(c.Message).To(ContainSubstring("spec.targets[0].template.labelExprs[0].valueExpr"))
	g.Expect(c.Message).To(ContainSubstring(`"repository.labels["`))
	before := reconciles(t, "packagevariantset")
	rv := getSet(g, ns, "fleet").ResourceVersion
	g.Consistently(func(g Gomega) {
		g.Expect(getSet(g, ns, "fleet").ResourceVersion).To(Equal(rv))
		g.Expect(getVariant(g, ns, east.Name).Generation).To(Equal(generation))
	}, "2s", interval).Should(Succeed())
	g.Expect(reconciles(t, "packagevariantset") - before).To(BeNumerically("<", 10))

	// A template rendering a label that is kpo's is refused the same way.
	s = getSet(g, ns, "fleet")
	patch = client.MergeFrom(s.DeepCopy())
	s.Spec.Targets[0].Template.LabelExprs[0].ValueExpr = ptr(`repository.labels["region"]`)
	s.Spec.Targets[0].Template.Labels = map[string]string{kpov1.PackageVariantLabel: "someone-else"}
	g.Expect(k8sClient.Patch(ctx, s, patch)).To(Succeed())
	c = setConditionTrue(t, ns, "fleet", kpov1.StalledCondition, kpov1.InvalidTemplateReason)
	g.Expect(c.Message).To(ContainSubstring("spec.labels[kpo.dev/package-variant] is set by the kpo manager"))
	g.Expect(getVariant(g, ns, east.Name).Generation).To(Equal(generation))
}

func TestPackageVariantSet_rolloutMovesAtMostMaxConcurrentAtATime(t *testing.T) {
	g := NewWithT(t)
	ns, srv := newBlueprintNamespace(t)
	v1 := publishBlueprint(t, ns, map[string]string{"app.yaml": appConfigMap})
	repos := newFleet(t, srv, ns, 5)
	newSet(t, ns, "fleet", func(s *kpov1.PackageVariantSet) { s.Spec.Rollout = &kpov1.Rollout{MaxConcurrent: 2} })

	// New variants start on the newest revision at once: nothing to roll yet.
	for _, repo := range repos {
		pv := "fleet-" + repo + "-base"
		g.Eventually(func(g Gomega) { g.Expect(getVariant(g, ns, pv).Spec.Upstream.Revision).To(Equal("v1")) }, timeout, interval).Should(Succeed())
		publish(t, ns, variantTarget(t, ns, pv))
	}
	setConditionTrue(t, ns, "fleet", kpov1.ReadyCondition, kpov1.UpToDateReason)
	g.Expect(getSet(g, ns, "fleet").Status.Rollout).To(Equal(&kpov1.RolloutStatus{Revision: "v1", Done: 5}))

	// Upstream v2 moves two variants at a time; each wave waits for the previous one's
	// downstream revisions to be published.
	v2 := publishV2(t, ns, v1)
	waves, violations := 0, 0
	for {
		var moving []string
		g.Eventually(func(g Gomega) {
			s := getSet(g, ns, "fleet")
			g.Expect(s.Status.Rollout).NotTo(BeNil())
			g.Expect(s.Status.Rollout.Revision).To(Equal("v2"))
			onV2, done := 0, int(s.Status.Rollout.Done)
			for _, pv := range setVariants(g, ns, "fleet") {
				if pv.Spec.Upstream.Revision == "v2" {
					onV2++
				}
			}
			if onV2-done > 2 {
				violations++ // at most maxConcurrent variants move at a time
			}
			g.Expect(len(s.Status.Rollout.Moving)).To(Equal(onV2 - done))
			g.Expect(len(s.Status.Rollout.Moving) == 2 || int(s.Status.Rollout.Waiting) == 0).To(BeTrue(), "the next wave starts once a slot is free")
			moving = s.Status.Rollout.Moving
		}, timeout, interval).Should(Succeed())
		if len(moving) == 0 {
			break
		}
		waves++
		for _, pv := range moving {
			var draft string
			g.Eventually(func(g Gomega) {
				draft = variantTarget(t, ns, pv)
				g.Expect(getRevision(g, ns, draft).Status.UpstreamRevision).To(Equal(v2.Name))
			}, timeout, interval).Should(Succeed())
			publish(t, ns, draft)
		}
		g.Eventually(func(g Gomega) {
			for _, pv := range moving {
				g.Expect(getSet(g, ns, "fleet").Status.Rollout.Moving).NotTo(ContainElement(pv))
			}
		}, timeout, interval).Should(Succeed())
	}
	g.Expect(violations).To(BeZero(), "more than maxConcurrent variants moved at once")
	g.Expect(waves).To(Equal(3), "5 variants, 2 at a time")
	setConditionTrue(t, ns, "fleet", kpov1.ReadyCondition, kpov1.UpToDateReason)
	g.Expect(getSet(g, ns, "fleet").Status.Rollout).To(Equal(&kpov1.RolloutStatus{Revision: "v2", Done: 5}))
}

func TestPackageVariantSet_objectSelector_oneVariantPerObject(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, srv := newBlueprintNamespace(t)
	publishBlueprint(t, ns, map[string]string{"app.yaml": appConfigMap})
	newFleet(t, srv, ns, 1)
	for name, site := range map[string]string{"edge-00": "yes", "other": "no"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"site": site, "tier": "gold"}}}
		g.Expect(k8sClient.Create(ctx, cm)).To(Succeed())
	}
	newSet(t, ns, "objs", func(s *kpov1.PackageVariantSet) {
		s.Spec.Targets = []kpov1.Target{{
			ObjectSelector: &kpov1.ObjectSelector{APIVersion: "v1", Kind: "ConfigMap",
				LabelSelector: metav1.LabelSelector{MatchLabels: map[string]string{"site": "yes"}}},
			Template: &kpov1.PackageVariantTemplate{
				Downstream: &kpov1.DownstreamTemplate{PackageExpr: `target.kind.lowerAscii() + "-" + target.name`},
				LabelExprs: []kpov1.MapExpr{{Key: ptr("tier"), ValueExpr: ptr(`target.labels["tier"]`)}},
			},
		}}
	})

	// The object's name is the default repository.
	setConditionTrue(t, ns, "objs", kpov1.ReadyCondition, kpov1.UpToDateReason)
	variants := setVariants(g, ns, "objs")
	g.Expect(variants).To(HaveLen(1))
	g.Expect(variants[0].Name).To(Equal("objs-edge-00-configmap-edge-00"))
	g.Expect(variants[0].Spec.Downstream).To(Equal(kpov1.DownstreamPackage{Repo: "edge-00", Package: "configmap-edge-00"}))
	g.Expect(variants[0].Spec.Labels).To(Equal(map[string]string{"tier": "gold"}))

	// Secrets are never selected.
	s := getSet(g, ns, "objs")
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Targets[0].ObjectSelector.Kind = "Secret"
	g.Expect(k8sClient.Patch(ctx, s, patch)).To(Succeed())
	c := setConditionTrue(t, ns, "objs", kpov1.StalledCondition, kpov1.InvalidSpecReason)
	g.Expect(c.Message).To(ContainSubstring("Secrets are never selected"))
	g.Expect(setVariants(g, ns, "objs")).To(HaveLen(1), "a stalled set deletes nothing")
}

func ptr(s string) *string { return &s }
