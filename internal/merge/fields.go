package merge

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// FieldRef locates one field of one resource of a package: what a Conflict is about, and
// what a resolution of it sets.
type FieldRef struct {
	// File is the file's path relative to the package root.
	File string
	// APIVersion, Kind, Namespace and Name identify the resource within the file.
	APIVersion, Kind, Namespace, Name string
	// Path is the field path, one element per step: a map key as it is, a list item as
	// "[key=value]" (several merge keys comma-separated, as in Conflict.Field).
	Path []string
}

// ErrFieldNotFound is returned when a FieldRef's file or resource is not in the package.
var ErrFieldNotFound = errors.New("field not found")

// encodeValue renders a value in YAML flow style, complete; "" for an absent or null one.
func encodeValue(n *yaml.Node) string {
	if missing(n) {
		return ""
	}
	c := yaml.CopyYNode(n)
	setFlow(c)
	s, err := yaml.NewRNode(c).String()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// decodeValue parses a value encodeValue rendered; nil for "".
func decodeValue(s string) (*yaml.Node, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	n, err := yaml.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: value %q: %w", ErrInvalidInput, s, err)
	}
	v := value(n.YNode())
	if v != nil {
		setBlock(v)
	}
	return v, nil
}

// GetField returns the value of a field in YAML flow style, "" when the field is absent.
// ErrFieldNotFound says the file or the resource is missing.
func GetField(files map[string][]byte, ref FieldRef) (string, error) {
	_, n, err := findResource(files, ref)
	if err != nil {
		return "", err
	}
	cur := n.YNode()
	for _, e := range ref.Path {
		cur = step(cur, e)
		if missing(cur) {
			return "", nil
		}
	}
	return encodeValue(cur), nil
}

// SetField returns a copy of files in which the field ref names holds v (YAML, as Conflict
// values are written), or is removed when v is "". Maps and list items on the way are created
// as needed; the file is rewritten as the merge writes files.
func SetField(files map[string][]byte, ref FieldRef, v string) (map[string][]byte, error) {
	if len(ref.Path) == 0 {
		return nil, fmt.Errorf("%w: %s: an empty field path cannot be set", ErrInvalidInput, ref.File)
	}
	nodes, n, err := findResource(files, ref)
	if err != nil {
		return nil, err
	}
	val, err := decodeValue(v)
	if err != nil {
		return nil, err
	}
	parent := n.YNode()
	for _, e := range ref.Path[:len(ref.Path)-1] {
		next := step(parent, e)
		if missing(next) {
			if val == nil {
				return files, nil // nothing to remove
			}
			if next, err = create(parent, e); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", ref.File, strings.Join(ref.Path, "."), err)
			}
		}
		parent = next
	}
	last := ref.Path[len(ref.Path)-1]
	if err := assign(parent, last, val); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", ref.File, strings.Join(ref.Path, "."), err)
	}
	written, err := writeFiles(nodes)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(files))
	for k, b := range files {
		out[k] = b
	}
	out[ref.File] = written[ref.File]
	return out, nil
}

// findResource parses ref's file and returns its resources and the one ref names.
func findResource(files map[string][]byte, ref FieldRef) ([]*yaml.RNode, *yaml.RNode, error) {
	data, ok := files[ref.File]
	if !ok {
		return nil, nil, fmt.Errorf("%w: file %s is not in the package", ErrFieldNotFound, ref.File)
	}
	nodes, err := readFile(ref.File, data, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range nodes {
		if n.GetApiVersion() == ref.APIVersion && n.GetKind() == ref.Kind && n.GetNamespace() == ref.Namespace && n.GetName() == ref.Name {
			return nodes, n, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: %s has no %s %s %s", ErrFieldNotFound, ref.File, ref.APIVersion, ref.Kind, nsName(ref))
}

func nsName(ref FieldRef) string {
	if ref.Namespace == "" {
		return ref.Name
	}
	return ref.Namespace + "/" + ref.Name
}

// listItem parses a "[k=v,k2=v2]" path element into its merge keys and item id.
func listItem(e string) (keys []string, id string, ok bool) {
	if !strings.HasPrefix(e, "[") || !strings.HasSuffix(e, "]") {
		return nil, "", false
	}
	id = e[1 : len(e)-1]
	for _, kv := range strings.Split(id, ",") {
		k, _, found := strings.Cut(kv, "=")
		if !found {
			return nil, "", false
		}
		keys = append(keys, k)
	}
	return keys, id, true
}

// step follows one path element from n; nil when it leads nowhere.
func step(n *yaml.Node, e string) *yaml.Node {
	if keys, id, ok := listItem(e); ok {
		return item(n, keys, id)
	}
	return field(n, e)
}

// create adds the map or list item a path element names to n and returns it.
func create(n *yaml.Node, e string) (*yaml.Node, error) {
	if keys, id, ok := listItem(e); ok {
		if n.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%w: %s is not a list item", ErrInvalidInput, e)
		}
		it := &yaml.Node{Kind: yaml.MappingNode}
		for i, kv := range strings.Split(id, ",") {
			_, v, _ := strings.Cut(kv, "=")
			it.Content = append(it.Content, yaml.NewStringRNode(keys[i]).YNode(), yaml.NewStringRNode(v).YNode())
		}
		n.Content = append(n.Content, it)
		return it, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %s is not in a map", ErrInvalidInput, e)
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	n.Content = append(n.Content, yaml.NewStringRNode(e).YNode(), m)
	return m, nil
}

// assign sets (or, for a nil val, removes) what the path element e names in n.
func assign(n *yaml.Node, e string, val *yaml.Node) error {
	if keys, id, ok := listItem(e); ok {
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%w: %s is not a list item", ErrInvalidInput, e)
		}
		i := slices.IndexFunc(n.Content, func(it *yaml.Node) bool {
			v := value(it)
			return v != nil && v.Kind == yaml.MappingNode && itemID(v, keys) == id
		})
		switch {
		case val == nil && i >= 0:
			n.Content = slices.Delete(n.Content, i, i+1)
		case val != nil && i >= 0:
			n.Content[i] = val
		case val != nil:
			n.Content = append(n.Content, val)
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: %s is not in a map", ErrInvalidInput, e)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != e {
			continue
		}
		if val == nil {
			n.Content = slices.Delete(n.Content, i, i+2)
		} else {
			n.Content[i+1] = val
		}
		return nil
	}
	if val != nil {
		n.Content = append(n.Content, yaml.NewStringRNode(e).YNode(), val)
	}
	return nil
}

// setBlock undoes setFlow, so a value set into a file reads like the file around it.
func setBlock(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	for _, c := range n.Content {
		setBlock(c)
	}
}
