package builtin

import (
	"slices"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	goyaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

func starlarkRun(t *testing.T, source string) *framework.ResourceList {
	t.Helper()
	fc := yaml.MustParse("apiVersion: fn.kpt.dev/v1alpha1\nkind: StarlarkRun\nmetadata:\n  name: looper\nsource: |\n  " + source + "\n")
	return &framework.ResourceList{FunctionConfig: fc, Items: []*yaml.RNode{yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")}}
}

func TestStarlark_endlessLoop_stopsAtStepLimitWithClearError(t *testing.T) {
	g := NewWithT(t)
	f := NewStarlark()
	f.MaxSteps, f.Timeout = 10_000, time.Minute
	rl := starlarkRun(t, "while True:\n    pass")

	err := f.Process(rl)

	g.Expect(err).To(MatchError(ContainSubstring("starlark script looper was stopped after 10000 execution steps: it probably loops forever")))
	g.Expect(rl.Results).To(HaveLen(1))
	g.Expect(rl.Results[0].Severity).To(Equal(framework.Error))
	g.Expect(rl.Items[0].GetName()).To(Equal("a"), "a failed run leaves the items alone")
}

func TestStarlark_endlessLoop_stopsAtWallTimeLimitWithClearError(t *testing.T) {
	g := NewWithT(t)
	f := NewStarlark()
	f.MaxSteps, f.Timeout = 0, 100*time.Millisecond
	rl := starlarkRun(t, "while True:\n    pass")

	start := time.Now()
	err := f.Process(rl)

	g.Expect(err).To(MatchError(ContainSubstring("starlark script looper was stopped after running for 100ms: it probably loops forever")))
	g.Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second))
}

func TestStarlark_defaultLimits_areSet(t *testing.T) {
	g := NewWithT(t)
	p, _ := Lookup("ghcr.io/kptdev/krm-functions-catalog/starlark:v0.5")
	f := p.(*Starlark)
	g.Expect(f.MaxSteps).To(Equal(uint64(DefaultStarlarkMaxSteps)))
	g.Expect(f.Timeout).To(Equal(DefaultStarlarkTimeout))
}

func TestYamlKeyLess_isTheOrderYAMLMarshalsMapKeysIn(t *testing.T) {
	g := NewWithT(t)
	keys := []string{"name", "image", "ports", "a10", "a9", "a09", "B", "b", "_x", "x1y", "x10y", "x2", "env", "", "é", "1", "10", "2a"}
	m := map[string]int{}
	for _, k := range keys {
		m[k] = 0
	}
	out, err := goyaml.Marshal(m)
	g.Expect(err).NotTo(HaveOccurred())
	var doc goyaml.Node
	g.Expect(goyaml.Unmarshal(out, &doc)).To(Succeed())
	var want []string
	for i := 0; i < len(doc.Content[0].Content); i += 2 {
		want = append(want, doc.Content[0].Content[i].Value)
	}
	got := slices.Clone(keys)
	sort.SliceStable(got, func(i, j int) bool { return yamlKeyLess(got[i], got[j]) })
	g.Expect(got).To(Equal(want))
}

func TestStarlark_addedKeys_comeOutSortedAfterTheExistingOnes(t *testing.T) {
	g := NewWithT(t)
	fc := yaml.MustParse("apiVersion: fn.kpt.dev/v1alpha1\nkind: StarlarkRun\nmetadata:\n  name: add\nsource: |\n" +
		"  for r in ctx.resource_list[\"items\"]:\n" +
		"    r[\"data\"][\"zeta\"] = \"z\"\n" +
		"    r[\"data\"][\"alpha\"] = {\"y\": 1, \"x\": 2}\n")
	rl := &framework.ResourceList{FunctionConfig: fc, Items: []*yaml.RNode{
		yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  b: \"1\"\n  a: \"2\"\n"),
	}}
	g.Expect(NewStarlark().Process(rl)).To(Succeed())
	g.Expect(rl.Items[0].MustString()).To(Equal("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  b: \"1\"\n  a: \"2\"\n  alpha:\n    x: 2\n    y: 1\n  zeta: z\n"))
}
