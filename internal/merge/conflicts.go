package merge

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// resourceConflicts compares the three inputs of a merged resource with the result and
// reports every field that both sides changed differently and where the result does not have
// the local value: the local change the merge dropped.
func resourceConflicts(pkg string, origin, updated, dest, merged *yaml.RNode) []Conflict {
	p, _, _ := kioutil.GetFileAnnotations(dest)
	c := conflictFinder{file: join(pkg, p), resource: describe(dest), id: FieldRef{
		File: join(pkg, p), APIVersion: dest.GetApiVersion(), Kind: dest.GetKind(), Namespace: dest.GetNamespace(), Name: dest.GetName()}}
	var schema *openapi.ResourceSchema
	if meta, err := dest.GetMeta(); err == nil {
		schema = openapi.SchemaForResourceType(meta.TypeMeta)
	}
	c.walk(origin.YNode(), updated.YNode(), dest.YNode(), merged.YNode(), schema, "", nil)
	return c.found
}

type conflictFinder struct {
	file, resource string
	id             FieldRef
	found          []Conflict
}

// walk descends the four versions of a node together. Maps are compared key by key, lists
// with merge keys (from the schema, or `name` on every item) item by item; anything else is a
// leaf.
func (c *conflictFinder) walk(o, u, d, m *yaml.Node, schema *openapi.ResourceSchema, path string, elems []string) {
	o, u, d, m = value(o), value(u), value(d), value(m)
	if equal(o, d) || equal(o, u) || equal(u, d) {
		return // at most one side changed, or both changed alike
	}
	switch {
	case allKind(yaml.MappingNode, o, u, d):
		for _, k := range mapKeys(o, u, d) {
			if path == "metadata.annotations" && isInternalAnnotation(k) {
				continue
			}
			var s *openapi.ResourceSchema
			if schema != nil {
				s = schema.Field(k)
			}
			c.walk(field(o, k), field(u, k), field(d, k), field(m, k), s, joinField(path, k), append(slices.Clone(elems), k))
		}
		return
	case allKind(yaml.SequenceNode, o, u, d):
		var s *openapi.ResourceSchema
		if schema != nil {
			s = schema.Elements()
		}
		if keys := listKeys(schema, o, u, d); len(keys) > 0 {
			for _, id := range itemIDs(keys, o, u, d) {
				c.walk(item(o, keys, id), item(u, keys, id), item(d, keys, id), item(m, keys, id), s,
					fmt.Sprintf("%s[%s]", path, id), append(slices.Clone(elems), "["+id+"]"))
			}
			return
		}
	}
	if equal(m, d) {
		return // the local value survived
	}
	var msg string
	switch {
	case missing(d):
		msg = fmt.Sprintf("deleted locally but changed upstream to %s; the result has upstream's value", render(u))
	case missing(u):
		msg = fmt.Sprintf("changed locally to %s but deleted upstream; the result drops the field", render(d))
	case equal(m, u):
		msg = fmt.Sprintf("changed locally to %s and upstream to %s; the result has upstream's value", render(d), render(u))
	default:
		msg = fmt.Sprintf("changed locally to %s and upstream to %s; the result is %s", render(d), render(u), render(m))
	}
	if path == "" {
		path = "."
	}
	ref := c.id
	ref.Path = elems
	c.found = append(c.found, Conflict{File: c.file, Resource: c.resource, Field: path, Message: msg,
		Ref: ref, Local: encodeValue(d), Upstream: encodeValue(u)})
}

func value(n *yaml.Node) *yaml.Node {
	for n != nil && (n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) == 1 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	return n
}

// missing treats an absent field and a null one alike.
func missing(n *yaml.Node) bool {
	return n == nil || n.Tag == yaml.NodeTagNull || (n.Kind == yaml.ScalarNode && n.ShortTag() == yaml.NodeTagNull)
}

func equal(a, b *yaml.Node) bool {
	if missing(a) || missing(b) {
		return missing(a) && missing(b)
	}
	return sameContent(a, b)
}

func allKind(kind yaml.Kind, nodes ...*yaml.Node) bool {
	seen := false
	for _, n := range nodes {
		if missing(n) {
			continue
		}
		if n.Kind != kind {
			return false
		}
		seen = true
	}
	return seen
}

func mapKeys(nodes ...*yaml.Node) []string {
	var keys []string
	for _, n := range nodes {
		if missing(n) || n.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !slices.Contains(keys, n.Content[i].Value) {
				keys = append(keys, n.Content[i].Value)
			}
		}
	}
	return keys
}

func field(n *yaml.Node, key string) *yaml.Node {
	if missing(n) || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return value(n.Content[i+1])
		}
	}
	return nil
}

func isInternalAnnotation(k string) bool {
	return slices.Contains(kyamlAnnotations, k) || strings.HasPrefix(k, "internal.config.kubernetes.io/") ||
		k == upstreamIdentifierAnnotation
}

// listKeys returns the merge keys of a list: the schema's when it declares a merge strategy,
// else `name` when every item of every version is a map with a name (kyaml's inference).
func listKeys(schema *openapi.ResourceSchema, lists ...*yaml.Node) []string {
	if schema != nil {
		strategy, keys := schema.PatchStrategyAndKeyList()
		if strings.Contains(strategy, "merge") && len(keys) > 0 && keys[0] != "" {
			return keys
		}
		return nil
	}
	for _, l := range lists {
		if missing(l) {
			continue
		}
		for _, it := range l.Content {
			if value(it) == nil || value(it).Kind != yaml.MappingNode || field(value(it), "name") == nil {
				return nil
			}
		}
	}
	return []string{"name"}
}

func itemID(it *yaml.Node, keys []string) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := field(it, k)
		if v == nil {
			continue
		}
		parts = append(parts, k+"="+v.Value)
	}
	return strings.Join(parts, ",")
}

func itemIDs(keys []string, lists ...*yaml.Node) []string {
	var ids []string
	for _, l := range lists {
		if missing(l) {
			continue
		}
		for _, it := range l.Content {
			if id := itemID(value(it), keys); !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func item(l *yaml.Node, keys []string, id string) *yaml.Node {
	if missing(l) || l.Kind != yaml.SequenceNode {
		return nil
	}
	for _, it := range l.Content {
		if v := value(it); v != nil && v.Kind == yaml.MappingNode && itemID(v, keys) == id {
			return v
		}
	}
	return nil
}

func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// render shows a value in a conflict message: scalars as they are, anything else in flow
// style, shortened.
func render(n *yaml.Node) string {
	if missing(n) {
		return "null"
	}
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q", n.Value)
	}
	c := yaml.CopyYNode(n)
	setFlow(c)
	s, err := yaml.NewRNode(c).String()
	if err != nil {
		return "(unprintable)"
	}
	s = strings.TrimSpace(s)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		setFlow(c)
	}
}
