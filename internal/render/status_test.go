package render

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/kptfile"
)

func TestSetRenderStatus_writesTheRenderedConditionAndStepsAsKpt(t *testing.T) {
	g := NewWithT(t)
	kf := []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app # a comment kpt drops\npipeline:\n  mutators:\n  - image: set-labels\n    configMap:\n      tier: backend\n  - exec: ./fn.sh\n")
	results := []Result{
		{Package: ".", Image: "set-labels", Function: kptfile.Function{Image: "set-labels"}, Stderr: "warning"},
		{Package: ".", Image: "./fn.sh", Function: kptfile.Function{Exec: "./fn.sh"}, ExitCode: 2},
	}
	got, err := SetRenderStatus(kf, results, &FunctionError{Package: ".", Image: "./fn.sh", ExitCode: 2}, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(got)).To(Equal(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: app
pipeline:
  mutators:
    - image: set-labels
      configMap:
        tier: backend
    - exec: ./fn.sh
status:
  conditions:
    - type: Rendered
      status: "False"
      reason: RenderFailed
      message: |-
        pkg.render: pkg .:
        	pipeline.run: already handled error
  renderStatus:
    mutationSteps:
      - image: ghcr.io/kptdev/krm-functions-catalog/set-labels:latest
        stderr: warning
        exitCode: 0
      - exec: ./fn.sh
        exitCode: 2
    errorSummary: './fn.sh: exit code 2'
`))

	// A later success replaces the Rendered condition and the steps.
	again, err := SetRenderStatus(got, results[:1], nil, "example.com/fns")
	g.Expect(err).NotTo(HaveOccurred())
	k, err := kptfile.Decode(again)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k.Status.Conditions).To(HaveExactElements(kptfile.Condition{Type: "Rendered", Status: "True", Reason: "RenderSuccess"}))
	g.Expect(k.Status.RenderStatus.MutationSteps).To(HaveLen(1))
	g.Expect(k.Status.RenderStatus.MutationSteps[0].Image).To(Equal("example.com/fns/set-labels:latest"))
	g.Expect(k.Status.RenderStatus.ErrorSummary).To(BeEmpty())
}

func TestWritesStatus_notWhenKptCannotReadThePackage(t *testing.T) {
	g := NewWithT(t)
	_, _, err := Render(context.Background(), map[string][]byte{"Kptfile": []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: a\npipeline:\n  mutators:\n  - image: set-labels\n    configPath: missing.yaml\n")}, Options{})
	g.Expect(err).To(HaveOccurred())
	g.Expect(WritesStatus(err)).To(BeFalse())
	_, _, err = Render(context.Background(), map[string][]byte{"Kptfile": []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: a\npipeline:\n  mutators:\n  - image: set-labels\n")}, Options{})
	g.Expect(err).To(HaveOccurred())
	g.Expect(WritesStatus(err)).To(BeTrue())
	g.Expect(QualifyImage("set-labels", "")).To(Equal("ghcr.io/kptdev/krm-functions-catalog/set-labels:latest"))
	g.Expect(QualifyImage("example.com/x@sha256:abc", "")).To(Equal("example.com/x@sha256:abc"))
}
