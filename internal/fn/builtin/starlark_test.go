package builtin

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
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
