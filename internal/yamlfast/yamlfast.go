// Package yamlfast holds fast equivalents of the kyaml helpers that render and the built-in
// functions call on every resource (annotation getters and setters, field lookups and
// setters). kyaml implements them as chains of filters that allocate at every step and
// build whole maps to read one key; these walk the yaml.Node tree directly. ReadNodes and
// WriteNodes are kio's package reader and writer with kpt's settings, for render and the
// three-way merge. It also holds ResetEncoderQueue, which keeps a yaml.v3 Encoder writing many documents from growing its
// event queue: kpo's one use of package unsafe, guarded by a test of the library's layout.
//
// Every function here produces exactly what its kyaml counterpart (named in its comment)
// produces, node for node: same styles, tags, field order, and the same quirks (first or
// last duplicate key, null handling). Where the input is unusual (a metadata or annotations
// field that is not a mapping, duplicate keys a kyaml filter would treat specially, path
// parts kyaml reads as list indexes), they fall back to kyaml itself, so errors and edge
// cases stay kyaml's. The tests compare both on a range of such inputs.
//
// It is a leaf: it imports kyaml and yaml.v3, and no kpo package.
package yamlfast

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

const (
	metadataField    = "metadata"
	annotationsField = "annotations"
)

// Field returns the value of the first key named name among the key/value pairs of
// content, as kyaml's single-field visit does, or nil.
func Field(m *yaml.Node, name string) *yaml.Node {
	if m == nil {
		return nil
	}
	c := m.Content
	for i := 0; i+1 < len(c); i += 2 {
		if c[i] != nil && c[i].Value == name {
			return c[i+1]
		}
	}
	return nil
}

// fieldIndex is Field returning the index of the key, or -1.
func fieldIndex(m *yaml.Node, name string) int {
	c := m.Content
	for i := 0; i+1 < len(c); i += 2 {
		if c[i] != nil && c[i].Value == name {
			return i
		}
	}
	return -1
}

// countFields counts the keys named name in mapping m.
func countFields(m *yaml.Node, name string) int {
	n := 0
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i] != nil && m.Content[i].Value == name {
			n++
		}
	}
	return n
}

func isNull(n *yaml.Node) bool { return n != nil && n.Tag == yaml.NodeTagNull }

// isMapping reports whether n is a non-null mapping with key/value pairs (kyaml's
// ErrorIfInvalid for a mapping passes and the node is not skipped as null).
func isMapping(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.MappingNode && !isNull(n) && len(n.Content)%2 == 0
}

// root returns the node kyaml filters start from (a document's content).
func root(rn *yaml.RNode) *yaml.Node {
	if rn == nil {
		return nil
	}
	return rn.YNode()
}

// annotationsNode returns metadata.annotations as RNode.GetAnnotations finds it.
func annotationsNode(rn *yaml.RNode) *yaml.Node {
	n := root(rn)
	if n == nil || isNull(n) {
		return nil
	}
	content := n.Content
	if n.Kind == yaml.DocumentNode {
		content = content[0].Content
	}
	md := Field(&yaml.Node{Content: content}, metadataField)
	if yaml.IsYNodeNilOrEmpty(md) {
		return nil
	}
	return Field(md, annotationsField)
}

// Annotation returns rn.GetAnnotations()[key] and whether the key is there (the last of
// duplicate keys wins, the value is read raw), without building the map.
func Annotation(rn *yaml.RNode, key string) (string, bool) {
	a := annotationsNode(rn)
	if a == nil {
		return "", false
	}
	value, found := "", false
	for i := 0; i+1 < len(a.Content); i += 2 {
		if a.Content[i].Value == key {
			value, found = a.Content[i+1].Value, true
		}
	}
	return value, found
}

// metaNode returns the metadata mapping as RNode.GetMeta reads it, or nil.
func metaNode(rn *yaml.RNode) *yaml.Node {
	n := root(rn)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	md := Field(n, metadataField)
	if yaml.IsYNodeNilOrEmpty(md) || md.Kind != yaml.MappingNode {
		return nil
	}
	return md
}

// metaAnnotationsNode returns metadata.annotations as RNode.GetMeta reads them, or nil.
func metaAnnotationsNode(rn *yaml.RNode) *yaml.Node {
	md := metaNode(rn)
	if md == nil {
		return nil
	}
	a := Field(md, annotationsField)
	if yaml.IsYNodeNilOrEmpty(a) || a.Kind != yaml.MappingNode || len(a.Content)%2 != 0 {
		return nil
	}
	return a
}

// metaValue is kyaml's GetValue: "" for a null node.
func metaValue(n *yaml.Node) string {
	if n == nil || isNull(n) {
		return ""
	}
	return n.Value
}

// MetaAnnotation returns rn.GetMeta().Annotations[key] and whether the key is there (the
// first of duplicate keys wins, a null value reads as "").
func MetaAnnotation(rn *yaml.RNode, key string) (string, bool) {
	if key == "" {
		// GetMeta keys the map by kyaml's GetValue of the key, "" for a null key
		m, _ := rn.GetMeta()
		v, ok := m.Annotations[key]
		return v, ok
	}
	a := metaAnnotationsNode(rn)
	if a == nil {
		return "", false
	}
	for i := 0; i+1 < len(a.Content); i += 2 {
		if k := a.Content[i]; k.Value == key {
			if isNull(k) {
				return "", false
			}
			return metaValue(a.Content[i+1]), true
		}
	}
	return "", false
}

// TypeAndName returns apiVersion, kind and metadata.name as RNode.GetMeta reads them.
func TypeAndName(rn *yaml.RNode) (apiVersion, kind, name string) {
	n := root(rn)
	if n == nil || isNull(n) {
		return "", "", ""
	}
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return "", "", ""
	}
	if f := Field(n, "apiVersion"); !yaml.IsYNodeNilOrEmpty(f) {
		apiVersion = f.Value
	}
	if f := Field(n, "kind"); !yaml.IsYNodeNilOrEmpty(f) {
		kind = f.Value
	}
	if md := metaNode(rn); md != nil {
		if f := Field(md, "name"); !yaml.IsYNodeNilOrEmpty(f) {
			name = f.Value
		}
	}
	return apiVersion, kind, name
}

// FileAnnotations is kioutil.GetFileAnnotations: the path and index annotations, internal
// form first, legacy form when the internal one is absent.
func FileAnnotations(rn *yaml.RNode) (path, index string) {
	path, found := MetaAnnotation(rn, kioutil.PathAnnotation)
	if !found {
		path, _ = MetaAnnotation(rn, kioutil.LegacyPathAnnotation)
	}
	index, found = MetaAnnotation(rn, kioutil.IndexAnnotation)
	if !found {
		index, _ = MetaAnnotation(rn, kioutil.LegacyIndexAnnotation)
	}
	return path, index
}

// annotationValue builds the value node yaml.SetAnnotation sets: a single-quoted string.
func annotationValue(value string) *yaml.Node {
	v := &yaml.Node{Kind: yaml.ScalarNode}
	v.SetString(value)
	v.Style = yaml.SingleQuotedStyle
	return v
}

// SetAnnotation is rn.PipeE(yaml.SetAnnotation(key, value)).
func SetAnnotation(rn *yaml.RNode, key, value string) error {
	n := root(rn)
	if key == "" || !isMapping(n) || countFields(n, metadataField) > 1 {
		return rn.PipeE(yaml.SetAnnotation(key, value))
	}
	mdIndex := fieldIndex(n, metadataField)
	var md, ann *yaml.Node
	if mdIndex >= 0 {
		md = n.Content[mdIndex+1]
		if !isMapping(md) || countFields(md, annotationsField) > 1 {
			return rn.PipeE(yaml.SetAnnotation(key, value))
		}
		if i := fieldIndex(md, annotationsField); i >= 0 {
			ann = md.Content[i+1]
			if !isMapping(ann) {
				return rn.PipeE(yaml.SetAnnotation(key, value))
			}
			// yaml.ClearEmptyAnnotations
			if len(ann.Content) == 0 {
				md.Content = append(md.Content[:i], md.Content[i+2:]...)
				ann = nil
			}
		}
		if len(md.Content) == 0 {
			n.Content = append(n.Content[:mdIndex], n.Content[mdIndex+2:]...)
			md = nil
		}
	}
	if md == nil {
		md = &yaml.Node{Kind: yaml.MappingNode}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: metadataField}, md)
	}
	if ann == nil {
		ann = &yaml.Node{Kind: yaml.MappingNode}
		md.Content = append(md.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: annotationsField}, ann)
	}
	v := annotationValue(value)
	if i := fieldIndex(ann, key); i >= 0 {
		field := ann.Content[i+1]
		v.Style = field.Style
		*field = *v
		return nil
	}
	ann.Content = append(ann.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
	return nil
}

// ClearAnnotation is rn.PipeE(yaml.ClearAnnotation(key)).
func ClearAnnotation(rn *yaml.RNode, key string) error {
	n := root(rn)
	if key == "" || !isMapping(n) {
		return rn.PipeE(yaml.ClearAnnotation(key))
	}
	md := Field(n, metadataField)
	if md == nil || isNull(md) {
		return nil
	}
	if !isMapping(md) {
		return rn.PipeE(yaml.ClearAnnotation(key))
	}
	ann := Field(md, annotationsField)
	if ann == nil || isNull(ann) {
		return nil
	}
	if !isMapping(ann) {
		return rn.PipeE(yaml.ClearAnnotation(key))
	}
	if i := fieldIndex(ann, key); i >= 0 {
		ann.Content = append(ann.Content[:i], ann.Content[i+2:]...)
	}
	return nil
}

// ClearAnnotations clears every key in keys, as ClearAnnotation does one by one.
func ClearAnnotations(rn *yaml.RNode, keys ...string) error {
	for _, k := range keys {
		if err := ClearAnnotation(rn, k); err != nil {
			return err
		}
	}
	return nil
}

// ClearEmptyAnnotations is yaml.ClearEmptyAnnotations: an empty annotations field goes,
// then an empty metadata field.
func ClearEmptyAnnotations(rn *yaml.RNode) error {
	n := root(rn)
	if !isMapping(n) || countFields(n, metadataField) > 1 {
		return yaml.ClearEmptyAnnotations(rn)
	}
	mdIndex := fieldIndex(n, metadataField)
	if mdIndex < 0 {
		return nil
	}
	md := n.Content[mdIndex+1]
	if !isNull(md) {
		if !isMapping(md) || countFields(md, annotationsField) > 1 {
			return yaml.ClearEmptyAnnotations(rn)
		}
		if i := fieldIndex(md, annotationsField); i >= 0 && len(md.Content[i+1].Content) == 0 {
			md.Content = append(md.Content[:i], md.Content[i+2:]...)
		}
	}
	if len(md.Content) == 0 {
		n.Content = append(n.Content[:mdIndex], n.Content[mdIndex+2:]...)
	}
	return nil
}

// CopyLegacyAnnotations is kioutil.CopyLegacyAnnotations: for path, index and id, a value
// present in one form only is copied to the other.
func CopyLegacyAnnotations(rn *yaml.RNode) error {
	var values [6]string
	var found [6]bool
	MetaAnnotations(rn, legacyPairs[:], values[:], found[:])
	for i := 0; i < len(legacyPairs); i += 2 {
		legacyKey, newKey := legacyPairs[i], legacyPairs[i+1]
		legacyValue, newValue := values[i], values[i+1]
		switch {
		case newValue != "" && legacyValue == "":
			if err := SetAnnotation(rn, legacyKey, newValue); err != nil {
				return err
			}
		case newValue == "" && legacyValue != "":
			if err := SetAnnotation(rn, newKey, legacyValue); err != nil {
				return err
			}
		}
	}
	return nil
}

// legacyPairs are the legacy and internal keys of path, index and id.
var legacyPairs = [6]string{
	kioutil.LegacyPathAnnotation, kioutil.PathAnnotation,
	kioutil.LegacyIndexAnnotation, kioutil.IndexAnnotation,
	kioutil.LegacyIdAnnotation, kioutil.IdAnnotation,
}

// PlainFieldName reports whether kyaml's path filters read s as a mapping field name
// (not a list index, "-", "*", "[k=v]", or something they would trim).
func PlainFieldName(s string) bool {
	if s == "" || s == "-" || s == "*" || strings.TrimSpace(s) != s || yaml.IsListIndex(s) {
		return false
	}
	return !isInt(s)
}

// isInt reports whether strconv.Atoi accepts s, without the error allocation of a refusal.
func isInt(s string) bool {
	digits := s
	if digits[0] == '+' || digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	_, err := strconv.Atoi(s)
	return err == nil
}

func plainPath(path []string) bool {
	for _, p := range path {
		if !PlainFieldName(p) {
			return false
		}
	}
	return true
}

// Lookup is rn.Pipe(yaml.Lookup(path...)) for plain field names: the value at path, or nil
// when a field is missing or one on the way is null.
func Lookup(rn *yaml.RNode, path ...string) (*yaml.Node, error) {
	n := root(rn)
	if n == nil || !plainPath(path) {
		return slowLookup(rn, path)
	}
	for _, p := range path {
		if isNull(n) {
			return nil, nil
		}
		if !isMapping(n) {
			return slowLookup(rn, path)
		}
		if n = Field(n, p); n == nil {
			return nil, nil
		}
	}
	// (a null value at the end of the path is returned, as kyaml does)
	return n, nil
}

func slowLookup(rn *yaml.RNode, path []string) (*yaml.Node, error) {
	f, err := rn.Pipe(yaml.Lookup(path...))
	if err != nil || f == nil {
		return nil, err
	}
	return f.YNode(), nil
}

// SetField is rn.PipeE(yaml.LookupCreate(yaml.MappingNode, path[:len(path)-1]...),
// yaml.SetField(path[len(path)-1], yaml.NewRNode(value))) — RNode.SetMapField — for plain
// field names. value becomes part of rn (or is copied into the field it replaces).
func SetField(rn *yaml.RNode, value *yaml.Node, path ...string) error {
	n := root(rn)
	if n == nil || len(path) == 0 || !plainPath(path) || value == nil || isNull(value) {
		return rn.SetMapField(yaml.NewRNode(value), path...)
	}
	for _, p := range path[:len(path)-1] {
		if !isMapping(n) {
			return rn.SetMapField(yaml.NewRNode(value), path...)
		}
		next := Field(n, p)
		switch {
		case next == nil:
			next = &yaml.Node{Kind: yaml.MappingNode}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p}, next)
		case isNull(next):
			return rn.SetMapField(yaml.NewRNode(value), path...)
		}
		n = next
	}
	if !isMapping(n) {
		return rn.SetMapField(yaml.NewRNode(value), path...)
	}
	name := path[len(path)-1]
	if yaml.IsYNodeString(value) && value.Style == 0 && IsValueNonString(value.Value) {
		value.Style = yaml.DoubleQuotedStyle
	}
	if field := Field(n, name); field != nil {
		value.Style = field.Style
		*field = *value
		return nil
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, value)
	return nil
}

// nonString caches yaml.IsValueNonString, which parses the value with a YAML 1.1 parser.
var nonString struct {
	sync.Mutex
	m map[string]bool
}

// IsValueNonString is yaml.IsValueNonString, cached.
func IsValueNonString(value string) bool {
	if value == "" || strings.Contains(value, "\n") {
		return false
	}
	nonString.Lock()
	v, ok := nonString.m[value]
	nonString.Unlock()
	if ok {
		return v
	}
	v = yaml.IsValueNonString(value)
	nonString.Lock()
	if nonString.m == nil || len(nonString.m) >= 1<<14 {
		nonString.m = map[string]bool{}
	}
	nonString.m[value] = v
	nonString.Unlock()
	return v
}

// MissingMeta reports whether RNode.GetMeta would return yaml.ErrMissingMetadata: no
// apiVersion, no kind, and no metadata name, namespace, labels or annotations.
func MissingMeta(rn *yaml.RNode) bool {
	n := root(rn)
	if n == nil || isNull(n) {
		return false
	}
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return true
	}
	if !yaml.IsYNodeNilOrEmpty(Field(n, "apiVersion")) || !yaml.IsYNodeNilOrEmpty(Field(n, "kind")) {
		return false
	}
	md := Field(n, metadataField)
	if yaml.IsYNodeNilOrEmpty(md) || md.Kind != yaml.MappingNode {
		return true
	}
	for _, f := range [...]string{"name", "namespace", "labels", annotationsField} {
		if !yaml.IsYNodeNilOrEmpty(Field(md, f)) {
			return false
		}
	}
	return true
}

// MetaAnnotations is MetaAnnotation for several keys in one pass: values[i] and found[i]
// are those of keys[i].
func MetaAnnotations(rn *yaml.RNode, keys []string, values []string, found []bool) {
	for i := range keys {
		values[i], found[i] = "", false
	}
	if len(keys) > 8 || slices.Contains(keys, "") {
		for i, k := range keys {
			values[i], found[i] = MetaAnnotation(rn, k)
		}
		return
	}
	a := metaAnnotationsNode(rn)
	if a == nil {
		return
	}
	var seen [8]bool
	for i := 0; i+1 < len(a.Content); i += 2 {
		k := a.Content[i]
		for j, key := range keys {
			if seen[j] || k.Value != key {
				continue
			}
			// the first key of a name decides, as in MetaAnnotation
			seen[j] = true
			if !isNull(k) {
				values[j], found[j] = metaValue(a.Content[i+1]), true
			}
		}
	}
}
