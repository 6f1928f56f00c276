package job

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/fn/job/wrapper"
)

func TestObjects_podIsRestrictedAndOnlyTheUploaderHasAToken(t *testing.T) {
	g := NewWithT(t)
	e := &Evaluator{Namespace: "kpo-fn", WrapperImage: "wrapper:v1", ServiceAccount: "uploader",
		Entrypoints: map[string]string{"custom": "/bin/custom"}}
	in, out, job := e.objects("run-1", "example.com/fns/custom:v2", []byte("input"), time.Minute)
	g.Expect(in.Data).To(HaveKeyWithValue(inputKey, "input"))
	g.Expect(out.Data).To(BeEmpty())
	spec := job.Spec.Template.Spec
	g.Expect(*spec.AutomountServiceAccountToken).To(BeFalse())
	g.Expect(*job.Spec.BackoffLimit).To(BeZero())
	g.Expect(*job.Spec.ActiveDeadlineSeconds).To(BeNumerically(">=", 60))
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		sc := c.SecurityContext
		g.Expect(*sc.RunAsNonRoot).To(BeTrue(), c.Name)
		g.Expect(*sc.AllowPrivilegeEscalation).To(BeFalse(), c.Name)
		g.Expect(*sc.ReadOnlyRootFilesystem).To(BeTrue(), c.Name)
		g.Expect(sc.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")), c.Name)
		g.Expect(c.Resources.Limits).To(HaveKey(corev1.ResourceCPU), c.Name)
		g.Expect(c.Resources.Limits).To(HaveKey(corev1.ResourceMemory), c.Name)
		hasToken := false
		for _, m := range c.VolumeMounts {
			hasToken = hasToken || m.Name == "token"
		}
		g.Expect(hasToken).To(Equal(c.Name == uploaderName), "only the uploader mounts a token: %s", c.Name)
	}
	g.Expect(spec.Containers[0].Image).To(Equal("example.com/fns/custom:v2"))
	g.Expect(spec.Containers[0].Command).To(HaveExactElements(wrapperPath, "run", "--input", "/kpo/input/resourcelist.yaml", "--output-dir", outputDir, "--", "/bin/custom"))
}

func TestAllowed_exactAndPrefixPatterns(t *testing.T) {
	g := NewWithT(t)
	e := &Evaluator{Allowlist: []string{"ghcr.io/kptdev/krm-functions-catalog/*", "example.com/fn:v1"}}
	g.Expect(e.Allowed("ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2")).To(BeTrue())
	g.Expect(e.Allowed("example.com/fn:v1")).To(BeTrue())
	g.Expect(e.Allowed("example.com/fn:v2")).To(BeFalse())
	g.Expect((&Evaluator{}).Allowed("anything")).To(BeFalse())
}

// An image that declares no user runs with group root unless the pod sets the group too: on a
// real node (internal/e2e/node) the function's processes had GID 0 before this.
func TestObjects_podRunsWithANonRootGroup(t *testing.T) {
	g := NewWithT(t)
	e := &Evaluator{Namespace: "kpo-fn", WrapperImage: "wrapper:v1", ServiceAccount: "uploader"}
	_, _, job := e.objects("run-1", "example.com/fns/no-user:v1", nil, time.Minute)
	spec := job.Spec.Template.Spec
	g.Expect(spec.SecurityContext.RunAsGroup).To(HaveValue(BeEquivalentTo(65532)))
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		g.Expect(c.SecurityContext.RunAsUser).To(HaveValue(BeEquivalentTo(65532)), c.Name)
		g.Expect(c.SecurityContext.RunAsGroup).To(HaveValue(BeEquivalentTo(65532)), c.Name)
	}
}

// Older kyaml-framework functions (apply-setters among them) wrap their results in a map; kpt
// reads both forms, and so does the Job evaluator (through render.ParseFunctionOutput).
func TestApply_readsResultsWrappedAsOlderKyamlFunctionsWriteThem(t *testing.T) {
	g := NewWithT(t)
	rl := &framework.ResourceList{}
	err := apply("apply-setters", map[string][]byte{
		wrapper.ExitCodeKey: []byte("0"),
		wrapper.StdoutKey: []byte("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n" +
			"results:\n  name: apply-setters\n  items:\n  - message: set field value to \"foo\"\n    severity: info\n"),
	}, rl)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rl.Items).To(HaveLen(1))
	g.Expect(rl.Results).To(HaveLen(1))
	g.Expect(rl.Results[0].Message).To(Equal(`set field value to "foo"`))
}
