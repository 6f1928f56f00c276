package builtin

import (
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// RemoveLocalConfigResources is the remove-local-config-resources function: it
// drops every resource annotated config.kubernetes.io/local-config: "true", the
// client-side-only configuration (function configs, package context) that must
// not reach a cluster. It takes no config.
type RemoveLocalConfigResources struct{}

// Process implements framework.ResourceListProcessor.
func (f *RemoveLocalConfigResources) Process(rl *framework.ResourceList) error {
	kept := make([]*yaml.RNode, 0, len(rl.Items))
	removed := 0
	for _, o := range rl.Items {
		if isLocalConfig(o) {
			removed++
			continue
		}
		kept = append(kept, o)
	}
	rl.Items = kept
	info(rl, "removed %d local config resource(s)", removed)
	return nil
}
