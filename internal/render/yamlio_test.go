package render

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestParseFunctionOutput_readsResultsInBothForms(t *testing.T) {
	const items = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: a\n"
	for name, results := range map[string]string{
		"list": "results:\n- message: set 1 setter\n  severity: info\n- message: bad\n  severity: error\n  resourceRef: {apiVersion: v1, kind: ConfigMap, name: a}\n  field: {path: data.x}\n",
		"wrapped by older kyaml-framework functions": "results:\n  name: apply-setters\n  items:\n  - message: set 1 setter\n    severity: info\n  - message: bad\n    severity: error\n    resourceRef: {apiVersion: v1, kind: ConfigMap, name: a}\n    field: {path: data.x}\n",
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			nodes, got, err := ParseFunctionOutput([]byte(items + results))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(nodes).To(HaveLen(1))
			g.Expect(got).To(HaveLen(2))
			g.Expect(got[0].Message).To(Equal("set 1 setter"))
			g.Expect(string(got[1].Severity)).To(Equal("error"))
			g.Expect(got[1].ResourceRef.Name).To(Equal("a"))
			g.Expect(got[1].Field.Path).To(Equal("data.x"))
		})
	}
	g := NewWithT(t)
	_, got, err := ParseFunctionOutput([]byte(items + "results:\n  name: empty\n"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(BeEmpty())
}
