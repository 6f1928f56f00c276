package builtin

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"sigs.k8s.io/kustomize/api/filters/replacement"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/resid"
	kyamlutils "sigs.k8s.io/kustomize/kyaml/utils"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// ApplyReplacements is the apply-replacements function: kustomize's
// replacements (copy a field of a source resource, or a literal sourceValue,
// into fields of target resources) run over every resource of the list, local
// config included, so package-context values can flow into other configs.
//
// Config: fn.kpt.dev/v1alpha1 ApplyReplacements with replacements, in the
// syntax of kustomize's replacements field.
//
// Versions differ where the catalog's do: up to v0.1.1 (built on kustomize api v0.10.1) a
// target field that is absent is skipped; from v0.1.2 (and for latest or no tag) it fails the
// function. Catalog packages pin v0.1.1 and rely on the skip.
type ApplyReplacements struct {
	Replacements []types.Replacement `yaml:"replacements,omitempty"`

	// skipAbsentTargets is v0.1.1's behaviour, set by SetVersion.
	skipAbsentTargets bool
}

// lastSkippingVersion is the last apply-replacements release that skips absent target fields.
var lastSkippingVersion = semver.MustParse("v0.1.1")

// SetVersion selects the semantics of the catalog release tag names (an image's tag: v0.1.1,
// v0.1, latest, or empty).
func (f *ApplyReplacements) SetVersion(tag string) {
	v, err := semver.NewVersion(strings.TrimSpace(tag))
	f.skipAbsentTargets = err == nil && !v.GreaterThan(lastSkippingVersion)
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
	if f.skipAbsentTargets {
		narrowed, err := presentTargetsOnly(f.Replacements, rl.Items)
		if err != nil {
			return fail(rl, fmt.Errorf("failed to apply replacements: %w", err))
		}
		f.Replacements = narrowed
	}
	items, err := replacement.Filter{Replacements: f.Replacements}.Filter(rl.Items)
	if err != nil {
		return fail(rl, fmt.Errorf("failed to apply replacements: %w", err))
	}
	rl.Items = items
	return nil
}

// probeAnnotation marks, on copies of the resources, those a target selects.
const probeAnnotation = "kpo.dev/apply-replacements-probe"

// presentTargetsOnly rewrites replacements so that no target names a field a resource lacks,
// as kustomize api v0.10.1 skipped them: a target whose fields every selected resource has is
// kept as it is; otherwise it becomes one target per selected resource, with the fields that
// resource has (none: dropped). Targets that create fields are kept.
func presentTargetsOnly(replacements []types.Replacement, items []*yaml.RNode) ([]types.Replacement, error) {
	out := make([]types.Replacement, len(replacements))
	for i, r := range replacements {
		out[i] = r
		out[i].Targets = nil
		for _, t := range r.Targets {
			if t == nil || (t.Options != nil && t.Options.Create) {
				out[i].Targets = append(out[i].Targets, t)
				continue
			}
			if !someMayLackAField(t, items) {
				out[i].Targets = append(out[i].Targets, t)
				continue
			}
			selected, err := selectedBy(t, items)
			if err != nil {
				return nil, err
			}
			complete := true
			present := make([][]string, len(selected))
			for j, n := range selected {
				for _, fp := range t.FieldPaths {
					if hasField(n, fp) {
						present[j] = append(present[j], fp)
					} else {
						complete = false
					}
				}
			}
			if complete {
				out[i].Targets = append(out[i].Targets, t)
				continue
			}
			for j, n := range selected {
				if len(present[j]) == 0 {
					continue
				}
				narrowed := *t
				narrowed.Select = &types.Selector{ResId: idOf(n)}
				narrowed.FieldPaths = present[j]
				out[i].Targets = append(out[i].Targets, &narrowed)
			}
		}
		if len(out[i].Targets) == 0 {
			// Nothing left to replace: a target-less replacement would be refused.
			out[i].Targets = []*types.TargetSelector{{Select: &types.Selector{ResId: resid.ResId{Name: probeAnnotation}}, FieldPaths: []string{"metadata.name"}}}
		}
	}
	return out, nil
}

// someMayLackAField reports whether a resource that t may select lacks one of its fields. It
// tells selected resources apart by kind only (a cheap, conservative test), so that the common
// case, every resource of the selected kind has the fields, needs no selection run.
func someMayLackAField(t *types.TargetSelector, items []*yaml.RNode) bool {
	for _, n := range items {
		if t.Select != nil && t.Select.Kind != "" && n.GetKind() != t.Select.Kind {
			continue
		}
		for _, fp := range t.FieldPaths {
			if !hasField(n, fp) {
				return true
			}
		}
	}
	return false
}

// selectedBy returns the resources t selects, found by running t on copies with a field to
// create in place of its own.
func selectedBy(t *types.TargetSelector, items []*yaml.RNode) ([]*yaml.RNode, error) {
	// Selection reads apiVersion, kind and metadata only: probe on copies of those.
	copies := make([]*yaml.RNode, len(items))
	for i, n := range items {
		c := yaml.NewMapRNode(nil)
		for _, key := range []string{yaml.APIVersionField, yaml.KindField, yaml.MetadataField} {
			if f := n.Field(key); f != nil {
				c.YNode().Content = append(c.YNode().Content, f.Key.YNode(), f.Value.Copy().YNode())
			}
		}
		copies[i] = c
	}
	marker := "selected"
	probe := types.Replacement{SourceValue: &marker, Targets: []*types.TargetSelector{{
		Select: t.Select, Reject: t.Reject,
		FieldPaths: []string{"metadata.annotations.[" + probeAnnotation + "]"},
		Options:    &types.FieldOptions{Create: true},
	}}}
	if _, err := (replacement.Filter{Replacements: []types.Replacement{probe}}).Filter(copies); err != nil {
		return nil, err
	}
	var selected []*yaml.RNode
	for i, c := range copies {
		if c.GetAnnotations()[probeAnnotation] == marker {
			selected = append(selected, items[i])
		}
	}
	return selected, nil
}

// hasField reports whether n has the field at kustomize's field path fp.
func hasField(n *yaml.RNode, fp string) bool {
	found, err := n.Pipe(&yaml.PathMatcher{Path: kyamlutils.SmarterPathSplitter(fp, ".")})
	if err != nil || found == nil {
		return false
	}
	elements, err := found.Elements()
	return err == nil && len(elements) > 0
}

// idOf is n's resource id for a selector.
func idOf(n *yaml.RNode) resid.ResId {
	group, version, kind := gvkOf(n)
	return resid.ResId{Gvk: resid.Gvk{Group: group, Version: version, Kind: kind}, Name: n.GetName(), Namespace: n.GetNamespace()}
}
