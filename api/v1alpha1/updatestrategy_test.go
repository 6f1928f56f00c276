package v1alpha1_test

import (
	"os"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"kpo.dev/kpo/internal/kptfile"
)

// TestUpdateStrategy_enumListsKptfileStrategies keeps the one list of values that cannot refer
// to kptfile's constants, the CRD enum of spec.source.upgrade.strategy, equal to them.
func TestUpdateStrategy_enumListsKptfileStrategies(t *testing.T) {
	g := NewWithT(t)
	data, err := os.ReadFile("../../config/crd/bases/kpo.dev_packagedrafts.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema schema `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	g.Expect(yaml.Unmarshal(data, &crd)).To(Succeed())
	g.Expect(crd.Spec.Versions).To(HaveLen(1))
	s := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	for _, field := range []string{"spec", "source", "upgrade", "strategy"} {
		g.Expect(s.Properties).To(HaveKey(field))
		s = s.Properties[field]
	}
	want := make([]string, len(kptfile.UpdateStrategies))
	for i, v := range kptfile.UpdateStrategies {
		want[i] = string(v)
	}
	g.Expect(s.Enum).To(Equal(want))
	g.Expect(s.Default).To(Equal(string(kptfile.ResourceMerge)))
}

// schema is the part of an OpenAPI schema the test walks.
type schema struct {
	Properties map[string]schema `json:"properties"`
	Enum       []string          `json:"enum"`
	Default    string            `json:"default"`
}
