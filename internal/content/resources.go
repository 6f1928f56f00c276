package content

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	yaml "go.yaml.in/yaml/v3"
)

// ResourceChange is how one resource (or one non-YAML file) differs between two packages.
type ResourceChange struct {
	// ID names the resource: Kind namespace/name, or "file PATH" for a file that is not YAML.
	ID string `json:"id"`
	// File is the file that holds it (in the newer package, else in the older one).
	File string `json:"file"`
	// Change is added, removed or changed.
	Change string `json:"change"`
	// Diff is the unified diff of the resource as YAML (3 lines of context).
	Diff string `json:"diff"`
}

// The kinds of ResourceChange.
const (
	ResourceAdded   = "added"
	ResourceRemoved = "removed"
	ResourceChanged = "changed"
)

// ResourceDiff compares two packages resource by resource: every document of their .yaml and
// .yml files (Kptfiles included) is matched by apiVersion group, kind, namespace and name,
// wherever it lives, so a resource moved to another file is not reported as removed and
// added; other files are compared whole. It returns the changed ones, sorted by ID, and how
// many were the same. A document that does not parse is compared as its file's text.
func ResourceDiff(from, to map[string][]byte) (changes []ResourceChange, same int, err error) {
	a, err := resources(from)
	if err != nil {
		return nil, 0, err
	}
	b, err := resources(to)
	if err != nil {
		return nil, 0, err
	}
	for _, id := range sortedUnion(a, b) {
		ra, inA := a[id]
		rb, inB := b[id]
		c := ResourceChange{ID: id, File: rb.file, Change: ResourceChanged}
		switch {
		case inA && inB && ra.text == rb.text:
			same++
			continue
		case !inA:
			c.Change = ResourceAdded
		case !inB:
			c.Change, c.File = ResourceRemoved, ra.file
		}
		c.Diff, err = difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: splitLines(ra.text), B: splitLines(rb.text), FromFile: "a/" + id, ToFile: "b/" + id, Context: 3,
		})
		if err != nil {
			return nil, 0, err
		}
		changes = append(changes, c)
	}
	return changes, same, nil
}

type resource struct {
	file, text string
}

// resources indexes a package's resources by identity.
func resources(files map[string][]byte) (map[string]resource, error) {
	out := map[string]resource{}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		ext := path.Ext(p)
		if ext != ".yaml" && ext != ".yml" && path.Base(p) != "Kptfile" {
			out["file "+p] = resource{file: p, text: string(files[p])}
			continue
		}
		docs, err := documents(files[p])
		if err != nil {
			out["file "+p] = resource{file: p, text: string(files[p])}
			continue
		}
		for i, d := range docs {
			id := identity(d)
			if id == "" {
				id = fmt.Sprintf("file %s #%d", p, i+1)
			}
			if _, dup := out[id]; dup {
				id = fmt.Sprintf("%s (%s #%d)", id, p, i+1)
			}
			var buf bytes.Buffer
			enc := yaml.NewEncoder(&buf)
			enc.SetIndent(2)
			if err := enc.Encode(d); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			_ = enc.Close()
			out[id] = resource{file: p, text: buf.String()}
		}
	}
	return out, nil
}

// documents are the non-empty YAML documents of data.
func documents(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode {
			out = append(out, &n)
		}
	}
}

// identity is "Kind namespace/name (group)" of a document, or "" when it has no kind.
func identity(doc *yaml.Node) string {
	m := doc.Content[0]
	get := func(n *yaml.Node, key string) *yaml.Node {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
		return nil
	}
	scalar := func(n *yaml.Node) string {
		if n == nil || n.Kind != yaml.ScalarNode {
			return ""
		}
		return n.Value
	}
	kind := scalar(get(m, "kind"))
	if kind == "" {
		return ""
	}
	var name, ns string
	if md := get(m, "metadata"); md != nil && md.Kind == yaml.MappingNode {
		name, ns = scalar(get(md, "name")), scalar(get(md, "namespace"))
	}
	id := kind + " " + name
	if ns != "" {
		id = kind + " " + ns + "/" + name
	}
	if group, _, ok := strings.Cut(scalar(get(m, "apiVersion")), "/"); ok {
		id += " (" + group + ")"
	}
	return id
}
