package controller_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// requireTeamLabel is a guardrail: every Deployment needs label team.
var requireTeamLabel = kpov1.Function{
	Name:  "require-team-label",
	Image: "gcr.io/kpt-fn/starlark:v0.4.3",
	ConfigMap: map[string]string{"source": `for r in ctx.resource_list["items"]:
  if r["kind"] == "Deployment" and "team" not in r["metadata"].get("labels", {}):
    fail("deployment " + r["metadata"]["name"] + " has no label team")
`},
}

// setGuardrails sets a Repository's spec.guardrails as c.
func setGuardrails(c client.Client, ns, repo string, fns ...kpov1.Function) error {
	r := &kpov1.Repository{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: repo}, r); err != nil {
		return err
	}
	patch := client.MergeFrom(r.DeepCopy())
	r.Spec.Guardrails = fns
	return c.Patch(context.Background(), r, patch)
}

func TestPackageRevision_guardrail_blocksTheProposalUntilTheContentPasses_andOnlyRepositoryAdminsChangeIt(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	alice := userClient(t, ns, "alice", "kpo-author")
	userClient(t, ns, "carol", "kpo-author")
	carol := userClient(t, ns, "carol", "kpo-repository-admin")

	err := setGuardrails(alice, ns, "catalog", requireTeamLabel)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "an author cannot change the guardrails: %v", err)
	g.Eventually(func() error { // RBAC caches take a moment
		return setGuardrails(carol, ns, "catalog", requireTeamLabel)
	}, timeout, interval).Should(Succeed(), "a repository admin can")
	bad := requireTeamLabel
	bad.ConfigPath = "starlark.yaml"
	g.Expect(setGuardrails(carol, ns, "catalog", bad)).To(MatchError(ContainSubstring("cannot use configPath")))

	editContent(t, ns, name, func(d map[string]string) { d["app.yaml"] = appYAML })
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		c := findCondition(pr.Status.Conditions, kpov1.GuardrailsPassedCondition)
		g.Expect(c.Reason).To(Equal(kpov1.GuardrailFailedReason))
		g.Expect(c.Message).To(ContainSubstring(`guardrail "require-team-label" failed`))
		g.Expect(c.Message).To(ContainSubstring("deployment web has no label team"))
		g.Expect(pr.Status.Guardrails).NotTo(BeNil())
		g.Expect(pr.Status.Guardrails.Commit).To(Equal(pr.Status.Commit))
		g.Expect(pr.Status.Guardrails.Failed).To(Equal("require-team-label"))
		g.Expect(pr.Status.Guardrails.Results).NotTo(BeEmpty())
	}, timeout, interval).Should(Succeed())

	g.Expect(setLifecycle(alice, ns, name, kpov1.LifecycleProposed)).To(Succeed())
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		ready := findCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(ready.Reason).To(Equal(kpov1.GuardrailFailedReason))
		g.Expect(ready.Message).To(ContainSubstring("require-team-label"))
		g.Expect(pr.Status.Lifecycle).To(Equal(kpov1.LifecycleDraft))
		g.Expect(pr.Spec.Lifecycle).To(Equal(kpov1.LifecycleProposed), "the intent stays")
	}, timeout, interval).Should(Succeed())
	refs, err := gitRepo.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refs).NotTo(HaveKey("refs/heads/proposed/web/w"))

	// The fixed content passes and the waiting proposal is carried out.
	editContent(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = strings.Replace(appYAML, "  name: web # the web tier\n", "  name: web # the web tier\n  labels:\n    team: shop\n", 1)
	})
	pr := waitLifecycle(t, ns, name, kpov1.LifecycleProposed)
	c := findCondition(pr.Status.Conditions, kpov1.GuardrailsPassedCondition)
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	g.Expect(c.Reason).To(Equal(kpov1.PassedReason))
}

func TestPackageRevision_guardrailThatCannotRun_isAConditionNotALoop(t *testing.T) {
	g := NewWithT(t)
	ns, _, name := newDraftFixture(t)
	g.Expect(setGuardrails(k8sClient, ns, "catalog", kpov1.Function{Image: notAllowedImage})).To(Succeed())
	var pr *kpov1.PackageRevision
	g.Eventually(func(g Gomega) {
		pr = getRevision(g, ns, name)
		c := findCondition(pr.Status.Conditions, kpov1.GuardrailsPassedCondition)
		g.Expect(c.Reason).To(Equal(kpov1.GuardrailErrorReason))
		g.Expect(c.Message).To(ContainSubstring(notAllowedImage))
	}, timeout, interval).Should(Succeed())
	// Recorded once for the commit and these guardrails: nothing is written again.
	g.Consistently(func(g Gomega) {
		g.Expect(getRevision(g, ns, name).ResourceVersion).To(Equal(pr.ResourceVersion))
	}, "2s", interval).Should(Succeed())

	// Removing the guardrails removes the condition from the draft.
	g.Expect(setGuardrails(k8sClient, ns, "catalog")).To(Succeed())
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		g.Expect(findCondition(pr.Status.Conditions, kpov1.GuardrailsPassedCondition).Type).To(BeEmpty())
		g.Expect(pr.Status.Guardrails).To(BeNil())
	}, timeout, interval).Should(Succeed())
}

func TestPackageDraft_declaredProposal_blockedByAGuardrail_saysWhich(t *testing.T) {
	g := NewWithT(t)
	ns, _ := newCatalogFixture(t, func(r *kpov1.Repository) {
		r.Spec.Guardrails = []kpov1.Function{{Name: "needs-a-deployment", Image: "gcr.io/kpt-fn/starlark:v0.4.3",
			ConfigMap: map[string]string{"source": `if not [r for r in ctx.resource_list["items"] if r["kind"] == "Deployment"]:
  fail("the package has no Deployment")
`}}}
	})
	d := newDraftObject(ns, "web", "catalog", "web", "w", initSource(""))
	d.Spec.Lifecycle = kpov1.LifecycleProposed
	g.Expect(k8sClient.Create(context.Background(), d)).To(Succeed())
	g.Eventually(func(g Gomega) {
		d := &kpov1.PackageDraft{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		c := findCondition(d.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c.Reason).To(Equal(kpov1.GuardrailFailedReason), c.Message)
		g.Expect(c.Message).To(ContainSubstring(`guardrail "needs-a-deployment" failed`))
		g.Expect(c.Message).To(ContainSubstring("the package has no Deployment"))
	}, timeout, interval).Should(Succeed())
}
