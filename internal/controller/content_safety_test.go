package controller_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
)

func TestPackageRevision_editRacingPropose_isInTheProposalOrRefused(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo := newCatalogFixture(t)

	const rounds = 8
	for i := range rounds {
		draftName := fmt.Sprintf("race-%d", i)
		newDraft(t, ns, draftName, "catalog", draftName, "w", initSource(""))
		name := waitDraft(t, ns, draftName)
		waitLifecycle(t, ns, name, kpov1.LifecycleDraft)

		// The edit and the proposal arrive at the same instant.
		marker := fmt.Sprintf("marker-%d", i)
		var editErr, proposeErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			cm := contentOf(g, ns, name)
			cm.Data["edit.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + marker + "\n"
			editErr = k8sClient.Update(context.Background(), cm)
		}()
		go func() {
			defer wg.Done()
			proposeErr = setLifecycle(k8sClient, ns, name, kpov1.LifecycleProposed)
		}()
		wg.Wait()
		g.Expect(proposeErr).NotTo(HaveOccurred())
		pr := waitLifecycle(t, ns, name, kpov1.LifecycleProposed)

		proposed, err := gitOut(t, gitRepo, "show", "refs/heads/proposed/"+draftName+"/w:"+draftName+"/edit.yaml")
		if editErr == nil {
			g.Expect(err).NotTo(HaveOccurred(), "round %d: an accepted edit is missing from the proposal: %s", i, proposed)
			g.Expect(proposed).To(ContainSubstring(marker))
		} else {
			g.Expect(apierrors.IsForbidden(editErr) || apierrors.IsConflict(editErr)).To(BeTrue(), "round %d: %v", i, editErr)
			g.Expect(err).To(HaveOccurred(), "round %d: a refused edit is in the proposal", i)
		}
		// Ready means the ConfigMap shows exactly the proposal.
		cm := contentOf(g, ns, name)
		g.Expect(cm.Annotations[kpov1.ContentCommitAnnotation]).To(Equal(pr.Status.Commit))
		files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(content.Digest(files)).To(Equal(cm.Annotations[kpov1.ContentDigestAnnotation]))
	}
}

func TestPackageRevision_editTooLargeOnceRendered_commitsNothing(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	head, err := gitRepo.RefHash("refs/heads/drafts/web/w")
	g.Expect(err).NotTo(HaveOccurred())

	// A small edit whose pipeline generates more than a ConfigMap holds.
	editContent(t, ns, name, func(d map[string]string) {
		d["Kptfile"] = withPipeline(d["Kptfile"], `  mutators:
  - image: gcr.io/kpt-fn/starlark:v0.4.3
    configMap:
      source: |
        ctx.resource_list["items"].append({"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "big", "annotations": {"config.kubernetes.io/path": "big.yaml"}},
          "data": {"blob": "x" * 1200000}})
`)
	})
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		ready := findCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(Equal(kpov1.PackageTooLargeReason), ready.Message)
		g.Expect(ready.Message).To(ContainSubstring("rendered"))
	}, timeout, interval).Should(Succeed())
	g.Consistently(func() (string, error) { return gitRepo.RefHash("refs/heads/drafts/web/w") }, "1s", interval).Should(Equal(head), "nothing committed")
}

func TestPackageRevision_gitPathElementInAKey_isInvalidContent(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	head, err := gitRepo.RefHash("refs/heads/drafts/web/w")
	g.Expect(err).NotTo(HaveOccurred())

	cm := contentOf(g, ns, name)
	key, err := content.EncodeKey("sub/.git/config")
	if err != nil {
		// Refused already when encoding: the decoded form is what a user would type.
		key = "sub__.git__config"
	}
	cm.Data[key] = "[core]\n"
	g.Expect(k8sClient.Update(context.Background(), cm)).To(Succeed())
	g.Eventually(func(g Gomega) {
		ready := findCondition(getRevision(g, ns, name).Status.Conditions, kpov1.ReadyCondition)
		g.Expect(ready.Reason).To(Equal(kpov1.InvalidContentReason), ready.Message)
		g.Expect(ready.Message).To(ContainSubstring(".git"))
	}, timeout, interval).Should(Succeed())
	g.Expect(gitRepo.RefHash("refs/heads/drafts/web/w")).To(Equal(head))
}

func TestPackageDraft_createdDraft_recordsItsRender(t *testing.T) {
	g := NewWithT(t)
	ns, _, name := newDraftFixture(t)
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		c := findCondition(pr.Status.Conditions, kpov1.RenderedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(kpov1.RenderSucceededReason))
	}, timeout, interval).Should(Succeed())

	// A copy whose pipeline reports results records them too.
	editContent(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = appYAML
		d["Kptfile"] = withPipeline(d["Kptfile"], `  validators:
  - image: gcr.io/kpt-fn/starlark:v0.4.3
    configMap:
      source: |
        print("validated")
`)
	})
	publish(t, ns, name)
	newDraft(t, ns, "web-2", "catalog", "web", "w2", copySource(name))
	copied := waitDraft(t, ns, "web-2")
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, copied)
		c := findCondition(pr.Status.Conditions, kpov1.RenderedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Message).To(ContainSubstring("rendered"))
	}, timeout, interval).Should(Succeed())
}
