package builtin

import (
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// walkFields visits every mapping and scalar below o depth first, with the path of each
// (".a.b[0].c", starting from path): onMap sees a mapping before its fields are walked, onScalar
// every scalar.
func walkFields(o *yaml.RNode, path string, onMap func(*yaml.RNode, string) error, onScalar func(*yaml.Node, string) error) error {
	switch o.YNode().Kind {
	case yaml.DocumentNode:
		return walkFields(yaml.NewRNode(o.YNode().Content[0]), path, onMap, onScalar)
	case yaml.MappingNode:
		if err := onMap(o, path); err != nil {
			return err
		}
		return o.VisitFields(func(n *yaml.MapNode) error {
			return walkFields(n.Value, path+"."+n.Key.YNode().Value, onMap, onScalar)
		})
	case yaml.SequenceNode:
		items, err := o.Elements()
		if err != nil {
			return err
		}
		for i, item := range items {
			if err := walkFields(item, fmt.Sprintf("%s[%d]", path, i), onMap, onScalar); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		return onScalar(o.YNode(), path)
	}
	return nil
}
