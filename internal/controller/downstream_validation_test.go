package controller_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// downstreamValidation waits until the proposal's downstream validation has summary and
// returns its results by downstream revision.
func downstreamValidation(t *testing.T, ns, name, summary string) map[string]kpov1.DownstreamResult {
	t.Helper()
	out := map[string]kpov1.DownstreamResult{}
	NewWithT(t).Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		g.Expect(pr.Status.DownstreamValidation).NotTo(BeNil())
		g.Expect(pr.Status.DownstreamValidation.Summary).To(Equal(summary), "%+v", pr.Status.DownstreamValidation.Results)
		c := findCondition(pr.Status.Conditions, kpov1.DownstreamsValidatedCondition)
		g.Expect(c.Message).To(Equal(summary))
		for _, r := range pr.Status.DownstreamValidation.Results {
			out[r.PackageVariant] = r
		}
	}, timeout, interval).Should(Succeed())
	return out
}

func TestPackageRevision_proposal_showsHowEachVariantDownstreamWouldUpgrade(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	upstream := newEmptyRepository(t, srv, ns, "blueprints")
	downstream := newEmptyRepository(t, srv, ns, "deployments", func(r *kpov1.Repository) { r.Spec.Deployment = true })
	newDraft(t, ns, "base-v1", "blueprints", "base", "v1", initSource("base"))
	v1 := waitDraft(t, ns, "base-v1")
	editAndWait(t, ns, v1, func(d map[string]string) { d["app.yaml"] = appConfigMap })
	publish(t, ns, v1)

	// Two variants, published; "edited" changed the colour locally.
	for _, name := range []string{"plain", "edited"} {
		newVariant(t, k8sClient, ns, name, nil)
		target := variantTarget(t, ns, name)
		if name == "edited" {
			editAndWait(t, ns, target, func(d map[string]string) {
				d["app.yaml"] = strings.Replace(d["app.yaml"], "color: blue", "color: red", 1)
			})
		}
		publish(t, ns, target)
	}
	downstreamRefs, err := downstream.Refs()
	g.Expect(err).NotTo(HaveOccurred())

	// Upstream proposes another colour: "edited" conflicts on that field, "plain" is clean.
	newDraft(t, ns, "base-v2", "blueprints", "base", "v2", copySource(v1))
	v2 := waitDraft(t, ns, "base-v2")
	editAndWait(t, ns, v2, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(d["app.yaml"], "color: blue", "color: green", 1)
	})
	g.Expect(setLifecycle(k8sClient, ns, v2, kpov1.LifecycleProposed)).To(Succeed())
	waitLifecycle(t, ns, v2, kpov1.LifecycleProposed)
	results := downstreamValidation(t, ns, v2, "1 upgrades cleanly, 1 conflicts")
	g.Expect(results["plain"].Result).To(Equal(kpov1.DownstreamClean))
	g.Expect(results["plain"].PackageRevision).To(Equal("deployments.plain.packagevariant-1"))
	g.Expect(results["edited"].Result).To(Equal(kpov1.DownstreamConflict))
	g.Expect(results["edited"].Message).To(ContainSubstring("app.yaml"))
	g.Expect(results["edited"].Message).To(ContainSubstring("data.color"))
	c := findCondition(getRevision(g, ns, v2).Status.Conditions, kpov1.DownstreamsValidatedCondition)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Reason).To(Equal(kpov1.DownstreamsFailingReason))

	// The downstream repository's guardrails take part.
	g.Expect(setGuardrails(k8sClient, ns, "deployments", kpov1.Function{Name: "no-green", Image: "gcr.io/kpt-fn/starlark:v0.4.3",
		ConfigMap: map[string]string{"source": `for r in ctx.resource_list["items"]:
  if r.get("data", {}).get("color") == "green":
    fail("green is not allowed here")
`}})).To(Succeed())
	results = downstreamValidation(t, ns, v2, "0 upgrade cleanly, 1 conflicts, 1 fails guardrails")
	g.Expect(results["plain"].Result).To(Equal(kpov1.DownstreamGuardrailFailed))
	g.Expect(results["plain"].Message).To(ContainSubstring(`guardrail "no-green" failed`))
	g.Expect(setGuardrails(k8sClient, ns, "deployments")).To(Succeed())
	downstreamValidation(t, ns, v2, "1 upgrades cleanly, 1 conflicts")

	// Sent back to Draft: no validation. Proposed again with a validator that downstreams fail.
	g.Expect(setLifecycle(k8sClient, ns, v2, kpov1.LifecycleDraft)).To(Succeed())
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, v2)
		g.Expect(pr.Status.Lifecycle).To(Equal(kpov1.LifecycleDraft))
		g.Expect(pr.Status.DownstreamValidation).To(BeNil())
		g.Expect(findCondition(pr.Status.Conditions, kpov1.DownstreamsValidatedCondition).Type).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
	editAndWait(t, ns, v2, func(d map[string]string) {
		d["Kptfile"] = withPipeline(d["Kptfile"], `  validators:
  - image: gcr.io/kpt-fn/starlark:v0.4.3
    configMap:
      source: |
        for r in ctx.resource_list["items"]:
          if r["kind"] == "Kptfile" and r["metadata"]["name"] != "base":
            fail("package " + r["metadata"]["name"] + " is not base")
`)
	})
	g.Expect(setLifecycle(k8sClient, ns, v2, kpov1.LifecycleProposed)).To(Succeed())
	waitLifecycle(t, ns, v2, kpov1.LifecycleProposed)
	results = downstreamValidation(t, ns, v2, "0 upgrade cleanly, 1 conflicts, 1 fails render")
	g.Expect(results["plain"].Result).To(Equal(kpov1.DownstreamRenderFailed))
	g.Expect(results["plain"].Message).To(ContainSubstring("package plain is not base"))

	refs, err := upstream.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refs).To(HaveKey("refs/heads/proposed/base/v2"))
	g.Expect(downstream.Refs()).To(Equal(downstreamRefs), "nothing was written to the downstream repository")

	// A variant that goes no longer counts.
	g.Expect(patchVariant(t, k8sClient, ns, "edited", func(pv *kpov1.PackageVariant) {
		pv.Spec.DeletionPolicy = kpov1.DeletionPolicyOrphan
	})).To(Succeed())
	g.Expect(k8sClient.Delete(context.Background(), getVariant(g, ns, "edited"))).To(Succeed())
	downstreamValidation(t, ns, v2, "0 upgrade cleanly, 1 fails render")
}
