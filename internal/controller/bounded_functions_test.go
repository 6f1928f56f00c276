package controller_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/fn/sandbox"
)

// hostileStarlark takes GBs in one operation, which starlark's step limit cannot see: it
// took the manager from 279 MB to 2.6 GB when starlark ran in process.
const hostileStarlark = `  mutators:
  - image: gcr.io/kpt-fn/starlark:v0.4.3
    configMap:
      source: |
        s = "b" * 400000000
        t = s + s + s
`

func TestPackageRevision_starlarkPastItsMemoryBudget_failsTheRenderAndTheManagerCarriesOn(t *testing.T) {
	g := NewWithT(t)
	ns, gitRepo, name := newDraftFixture(t)
	head, err := gitRepo.RefHash("refs/heads/drafts/web/w")
	g.Expect(err).NotTo(HaveOccurred())

	editContent(t, ns, name, func(d map[string]string) {
		d["app.yaml"] = appYAML
		d["Kptfile"] = withPipeline(d["Kptfile"], hostileStarlark)
	})
	budget := "function starlark exceeded its memory budget of " + sandbox.FormatBytes(sandboxMemory)
	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, name)
		c := findCondition(pr.Status.Conditions, kpov1.RenderedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.FunctionFailedReason))
		g.Expect(c.Message).To(ContainSubstring(budget))
		g.Expect(pr.Status.RenderResults).To(ContainElement(HaveField("Message", budget)))
	}, timeout, interval).Should(Succeed())
	g.Expect(gitRepo.RefHash("refs/heads/drafts/web/w")).To(Equal(head), "nothing committed")

	// The manager is unharmed: the next, good edit renders and commits.
	editContent(t, ns, name, func(d map[string]string) {
		d["Kptfile"] = withPipeline(kptfileWithoutPipeline(d["Kptfile"]), `  mutators:
  - image: gcr.io/kpt-fn/starlark:v0.4.3
    configMap:
      source: |
        load("krmfn.star", "krmfn")
        for r in ctx.resource_list["items"]:
          if krmfn.match_gvk(r, "apps/v1", "Deployment") and krmfn.match_name(r, "web"):
            r["spec"]["replicas"] = 2
`)
	})
	g.Eventually(func() (string, error) {
		return gitRepo.ReadFile("refs/heads/drafts/web/w", "web/app.yaml")
	}, timeout, interval).Should(SatisfyAll(ContainSubstring("replicas: 2"), ContainSubstring("# the web tier")))
	g.Eventually(func(g Gomega) {
		c := findCondition(getRevision(g, ns, name).Status.Conditions, kpov1.RenderedCondition)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(kpov1.RenderSucceededReason))
	}, timeout, interval).Should(Succeed())
}

// kptfileWithoutPipeline drops the pipeline withPipeline appended.
func kptfileWithoutPipeline(kptfileText string) string {
	if i := strings.Index(kptfileText, "\npipeline:\n"); i >= 0 {
		return kptfileText[:i+1]
	}
	return kptfileText
}
