package builtin

import (
	"fmt"

	"sigs.k8s.io/kustomize/api/filters/replacement"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
)

// ApplyReplacements is the apply-replacements function: kustomize's
// replacements (copy a field of a source resource, or a literal sourceValue,
// into fields of target resources) run over every resource of the list, local
// config included, so package-context values can flow into other configs.
//
// Config: fn.kpt.dev/v1alpha1 ApplyReplacements with replacements, in the
// syntax of kustomize's replacements field.
type ApplyReplacements struct {
	Replacements []types.Replacement `yaml:"replacements,omitempty"`
}

// Process implements framework.ResourceListProcessor.
func (f *ApplyReplacements) Process(rl *framework.ResourceList) error {
	fc := rl.FunctionConfig
	if !isKind(fc, "ApplyReplacements") {
		apiVersion, kind := configMeta(fc)
		if kind == "" {
			return fail(rl, configError("function config is missing: apply-replacements needs an ApplyReplacements (fn.kpt.dev/v1alpha1) with replacements"))
		}
		return fail(rl, configError("function config must be an ApplyReplacements (fn.kpt.dev/v1alpha1), got %s %s", apiVersion, kind))
	}
	if err := decodeConfig(fc, f); err != nil {
		return fail(rl, err)
	}
	if len(f.Replacements) == 0 {
		return fail(rl, configError("ApplyReplacements %s has no replacements: add at least one source and target", fc.GetName()))
	}
	for i, r := range f.Replacements {
		if (r.Source == nil && r.SourceValue == nil) || len(r.Targets) == 0 {
			return fail(rl, configError("replacements[%d] must specify a source (or sourceValue) and at least one target", i))
		}
	}
	items, err := replacement.Filter{Replacements: f.Replacements}.Filter(rl.Items)
	if err != nil {
		return fail(rl, fmt.Errorf("failed to apply replacements: %w", err))
	}
	rl.Items = items
	return nil
}
