package controller_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// withPipeline returns the Kptfile text of an init'ed draft with a pipeline appended.
func withPipeline(kptfileText, pipeline string) string {
	return strings.TrimRight(kptfileText, "\n") + "\npipeline:\n" + pipeline
}

const appYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web # the web tier
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  env: production
`

func TestPackageRevision_editWithPipeline_commitsTheRenderedResult(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)

	editContent(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = appYAML
		d["Kptfile"] = withPipeline(d["Kptfile"], `  mutators:
  - image: gcr.io/kpt-fn/set-namespace:v0.4.1
    configMap:
      namespace: web-prod
  - image: ghcr.io/kptdev/krm-functions-catalog/set-labels:latest
    configMap:
      tier: frontend
  - image: gcr.io/kpt-fn/apply-replacements:v0.1.1
    configPath: replacements.yaml
`)
		d["replacements.yaml"] = `apiVersion: fn.kpt.dev/v1alpha1
kind: ApplyReplacements
metadata:
  name: replacements
  annotations:
    config.kubernetes.io/local-config: "true"
replacements:
- source:
    kind: ConfigMap
    name: settings
    fieldPath: data.env
  targets:
  - select:
      kind: Deployment
    fieldPaths:
    - metadata.annotations.env
    options:
      create: true
`
	})
	g.Eventually(func() (string, error) {
		return gitRepo.ReadFile("refs/heads/drafts/web/w", "web/app.yaml")
	}, timeout, interval).Should(SatisfyAll(
		ContainSubstring("namespace: web-prod"),
		ContainSubstring("tier: frontend"),
		ContainSubstring("env: production"),
		ContainSubstring("# the web tier"),
	))
	g.Eventually(func(g Gomega) {
		c := findCondition(getRevision(g, ns, name).Status.Conditions, kpov1.RenderedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(kpov1.RenderSucceededReason))
	}, timeout, interval).Should(Succeed())
	waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	g.Eventually(func(g Gomega) {
		g.Expect(contentOf(g, ns, name).Data["app.yaml"]).To(ContainSubstring("namespace: web-prod"), "the rendered result is written back")
	}, timeout, interval).Should(Succeed())

	// Rendering the same input again changes nothing.
	head, err := gitRepo.RefHash("refs/heads/drafts/web/w")
	g.Expect(err).NotTo(HaveOccurred())
	cm := contentOf(g, ns, name)
	g.Expect(k8sClient.Update(context.Background(), cm)).To(Succeed())
	g.Consistently(func() (string, error) { return gitRepo.RefHash("refs/heads/drafts/web/w") }, "1s", interval).Should(Equal(head))
}

func TestPackageRevision_failingValidator_blocksTheCommitAndSaysWhy(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	head, err := gitRepo.RefHash("refs/heads/drafts/web/w")
	g.Expect(err).NotTo(HaveOccurred())

	editContent(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = appYAML
		d["Kptfile"] = withPipeline(d["Kptfile"], `  validators:
  - image: gcr.io/kpt-fn/starlark:v0.4.3
    configMap:
      source: |
        for r in ctx.resource_list["items"]:
          if r["kind"] == "Deployment" and "namespace" not in r["metadata"]:
            fail("deployment " + r["metadata"]["name"] + " has no namespace")
`)
	})
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		c := findCondition(pr.Status.Conditions, kpov1.RenderedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.FunctionFailedReason))
		g.Expect(c.Message).To(ContainSubstring("deployment web has no namespace"))
		ready := findCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	}, timeout, interval).Should(Succeed())
	g.Expect(gitRepo.RefHash("refs/heads/drafts/web/w")).To(Equal(head), "nothing committed")
}

func TestPackageRevision_jobEvaluatedFunction_rendersEndToEnd(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	runsBefore := functionNode.Runs(jobSetNamespaceImage)

	editContent(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = appYAML
		// A namespace unique to this run, so the function cache cannot answer instead of a Job.
		d["Kptfile"] = withPipeline(d["Kptfile"], "  mutators:\n  - image: "+jobSetNamespaceImage+"\n    configMap:\n      namespace: "+ns+"\n")
	})
	g.Eventually(func() (string, error) {
		return gitRepo.ReadFile("refs/heads/drafts/web/w", "web/app.yaml")
	}, timeout, interval).Should(ContainSubstring("namespace: " + ns))
	g.Expect(functionNode.Runs(jobSetNamespaceImage)).To(BeNumerically(">", runsBefore), "the function ran as a Job")
	g.Eventually(func(g Gomega) {
		jobs := &batchv1.JobList{}
		g.Expect(k8sClient.List(context.Background(), jobs, client.InNamespace(functionNamespace))).To(Succeed())
		g.Expect(jobs.Items).To(BeEmpty(), "the Job was cleaned up")
	}, timeout, interval).Should(Succeed())
}

func TestPackageRevision_imageNotOnTheAllowlist_isRefusedBeforeAnyJob(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	head, err := gitRepo.RefHash("refs/heads/drafts/web/w")
	g.Expect(err).NotTo(HaveOccurred())

	editContent(t, ns, name, func(d map[string]string) {
		d["Kptfile"] = withPipeline(d["Kptfile"], "  mutators:\n  - image: "+notAllowedImage+"\n")
	})
	g.Eventually(func(g Gomega) {
		c := findCondition(getRevision(g, ns, name).Status.Conditions, kpov1.RenderedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.ImageNotAllowedReason))
		g.Expect(c.Message).To(ContainSubstring("--function-image-allowlist"))
		results := getRevision(g, ns, name).Status.RenderResults
		g.Expect(results).To(ContainElement(HaveField("Message", ContainSubstring("--function-image-allowlist"))),
			"the result of a function that never ran says why")
	}, timeout, interval).Should(Succeed())
	jobs := &batchv1.JobList{}
	g.Expect(k8sClient.List(context.Background(), jobs, client.InNamespace(functionNamespace))).To(Succeed())
	for _, j := range jobs.Items {
		g.Expect(j.Spec.Template.Spec.Containers[0].Image).NotTo(Equal(notAllowedImage))
	}
	g.Expect(gitRepo.RefHash("refs/heads/drafts/web/w")).To(Equal(head))
}
