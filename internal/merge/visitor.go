package merge

import (
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/kustomize/kyaml/yaml/walk"
)

// mergeVisitor decides, field by field, what a three-way merge keeps. It is kpt's rule set
// (kyaml's merge3 visitor as kpt modified it): a field is cleared only when one side set it to
// null where origin had a value, and both-sides changes take upstream's value. On top of that
// it keeps nulls that local has and nobody changed, which kyaml would drop.
type mergeVisitor struct{}

var _ walk.Visitor = mergeVisitor{}

// cleared reports whether side set to null a field that origin had a value for: the
// declarative way to delete a field. (kpt also counts a null added where origin had no field
// as a deletion; kpo keeps such a null.)
func cleared(origin, side *yaml.RNode) bool {
	return !yaml.IsMissingOrNull(origin) && side.IsTaggedNull()
}

// keptNull is a null that the field setter writes out instead of deleting the field.
func keptNull(n *yaml.RNode) *yaml.RNode {
	return yaml.MakePersistentNullNode(n.YNode().Value)
}

// VisitMap handles maps, and fields that are null or missing on every side.
func (mergeVisitor) VisitMap(nodes walk.Sources, _ *openapi.ResourceSchema) (*yaml.RNode, error) {
	o, u, d := nodes.Origin(), nodes.Updated(), nodes.Dest()
	switch {
	case cleared(o, u) || cleared(o, d):
		return walk.ClearNode, nil
	case d == nil && u == nil:
		return walk.ClearNode, nil
	case d == nil && u.IsTaggedNull():
		// upstream added an explicit null
		return keptNull(u), nil
	case d == nil:
		return yaml.NewRNode(&yaml.Node{Kind: yaml.MappingNode}), nil
	case d.IsTaggedNull() && yaml.IsMissingOrNull(u):
		// a local null nobody changed
		return keptNull(d), nil
	case d.IsTaggedNull():
		// upstream gave a value to a field that was null in origin and local
		return yaml.NewRNode(&yaml.Node{Kind: yaml.MappingNode}), nil
	}
	return d, nil
}

// VisitScalar handles scalar fields (and map keys).
func (mergeVisitor) VisitScalar(nodes walk.Sources, _ *openapi.ResourceSchema) (*yaml.RNode, error) {
	o, u, d := nodes.Origin(), nodes.Updated(), nodes.Dest()
	switch {
	case cleared(o, u) || cleared(o, d):
		return nil, nil
	case yaml.IsMissingOrNull(u) != yaml.IsMissingOrNull(o):
		// added or removed upstream
		return u, nil
	case yaml.IsMissingOrNull(u) && yaml.IsMissingOrNull(o):
		if d.IsTaggedNull() {
			return keptNull(d), nil
		}
		return d, nil
	case !sameScalar(o, u):
		return u, nil
	}
	return d, nil
}

// VisitList handles lists: associative ones are merged item by item by the walker.
func (v mergeVisitor) VisitList(nodes walk.Sources, _ *openapi.ResourceSchema, kind walk.ListKind) (*yaml.RNode, error) {
	o, u, d := nodes.Origin(), nodes.Updated(), nodes.Dest()
	if kind == walk.AssociativeList {
		switch {
		case yaml.IsMissingOrNull(u) && !yaml.IsMissingOrNull(o):
			// deleted upstream
			return walk.ClearNode, nil
		case yaml.IsMissingOrNull(d):
			return yaml.NewRNode(&yaml.Node{Kind: yaml.SequenceNode}), nil
		}
		return d, nil
	}
	switch {
	case cleared(o, u) || cleared(o, d):
		return walk.ClearNode, nil
	case yaml.IsMissingOrNull(u) != yaml.IsMissingOrNull(o):
		return u, nil
	case yaml.IsMissingOrNull(u) && yaml.IsMissingOrNull(o):
		return d, nil
	case !sameContent(o.YNode(), u.YNode()):
		return u, nil
	}
	return d, nil
}

// sameScalar compares two scalars by value and tag, ignoring style and comments.
func sameScalar(a, b *yaml.RNode) bool {
	return a.YNode().Value == b.YNode().Value && a.YNode().ShortTag() == b.YNode().ShortTag()
}

// sameContent compares two nodes structurally (kind, tag, value, children), ignoring style
// and comments.
func sameContent(a, b *yaml.Node) bool {
	for a != nil && a.Kind == yaml.AliasNode {
		a = a.Alias
	}
	for b != nil && b.Kind == yaml.AliasNode {
		b = b.Alias
	}
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind == yaml.DocumentNode && len(a.Content) == 1 {
		a = a.Content[0]
	}
	if b.Kind == yaml.DocumentNode && len(b.Content) == 1 {
		b = b.Content[0]
	}
	if a.Kind != b.Kind || a.Value != b.Value || a.ShortTag() != b.ShortTag() || len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		if !sameContent(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}
