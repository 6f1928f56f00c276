package builtin

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// RemoveLocalConfigResources is the remove-local-config-resources function: it
// drops every resource annotated config.kubernetes.io/local-config: "true", the
// client-side-only configuration (function configs, package context) that must
// not reach a cluster. It takes no config.
//
// Results are those of catalog v0.1.0: "Number of resources pruned: N" and one
// "Resource name: [name]" per dropped resource (with its file), or a warning when
// nothing carries the annotation.
type RemoveLocalConfigResources struct{}

// Process implements framework.ResourceListProcessor.
func (f *RemoveLocalConfigResources) Process(rl *framework.ResourceList) error {
	kept := make([]*yaml.RNode, 0, len(rl.Items))
	var pruned framework.Results
	for _, o := range rl.Items {
		if !isPrunedLocalConfig(o) {
			kept = append(kept, o)
			continue
		}
		r := &framework.Result{Message: fmt.Sprintf("Resource name: [%s]", o.GetName()), Severity: framework.Info}
		if path, _, _ := kioutil.GetFileAnnotations(o); path != "" {
			// The catalog function names the file only, never the index.
			r.File = &framework.File{Path: path}
		}
		pruned = append(pruned, r)
	}
	rl.Items = kept
	if len(pruned) == 0 {
		rl.Results = append(rl.Results, &framework.Result{
			Message:  "Found no resources to prune with the local config annotation",
			Severity: framework.Warning,
		})
		return nil
	}
	info(rl, "Number of resources pruned: %d", len(pruned))
	rl.Results = append(rl.Results, pruned...)
	return nil
}

// isPrunedLocalConfig reports whether the catalog function drops a resource: its local-config
// annotation is "true" in any letter case (not trimmed, unlike isLocalConfig's reading).
func isPrunedLocalConfig(rn *yaml.RNode) bool {
	return strings.ToLower(rn.GetAnnotations()[localConfigAnnotation]) == "true"
}
