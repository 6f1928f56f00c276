package merge

import (
	"fmt"
	"maps"
	"slices"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/kustomize/kyaml/yaml/walk"
)

// kyamlAnnotations are set by readers and tools during a merge; they do not count as changes
// (kpt's list).
var kyamlAnnotations = []string{
	mergeSourceAnnotation,
	kioutil.PathAnnotation,
	kioutil.IndexAnnotation,
	kioutil.LegacyPathAnnotation,
	kioutil.LegacyIndexAnnotation,
	kioutil.InternalAnnotationsMigrationResourceIDAnnotation,
	"cnrm.cloud.google.com/blueprint",
}

// resourceTuple is one resource as origin, upstream and local have it (nil where absent).
type resourceTuple struct {
	origin, updated, dest *yaml.RNode
}

// mergeResources three-way merges the resources of one package. origin, updated and local are
// the package's own files, relative to the package directory pkg. It returns the package's new
// own files: the local non-YAML files untouched, YAML files rewritten from the merged
// resources, and YAML files whose resources are all gone removed.
func mergeResources(cache *parseCache, pkg string, origin, updated, local map[string][]byte) (map[string][]byte, []Conflict, error) {
	var tuples []*resourceTuple
	index := map[string]*resourceTuple{}
	add := func(files map[string][]byte, source string, set func(*resourceTuple, *yaml.RNode) bool) error {
		for _, p := range slices.Sorted(maps.Keys(files)) {
			if !isYAMLFile(p) {
				continue
			}
			nodes, err := cache.read(p, files[p], map[string]string{mergeSourceAnnotation: source})
			if err != nil {
				return err
			}
			for _, n := range nodes {
				id, err := identity(n)
				if err != nil {
					return fmt.Errorf("%w: %s: %w", ErrInvalidInput, join(pkg, p), err)
				}
				t, ok := index[id]
				if !ok {
					t = &resourceTuple{}
					index[id] = t
					tuples = append(tuples, t)
				}
				if !set(t, n) {
					return fmt.Errorf("%w: found duplicate %q resources in file %q: %s appears twice; give each resource a unique kind, namespace and name per file",
						ErrInvalidInput, source, join(pkg, p), describe(n))
				}
			}
		}
		return nil
	}
	setIfFree := func(slot **yaml.RNode) func(*yaml.RNode) bool {
		return func(n *yaml.RNode) bool {
			if *slot != nil {
				return false
			}
			*slot = n
			return true
		}
	}
	if err := add(origin, "original", func(t *resourceTuple, n *yaml.RNode) bool { return setIfFree(&t.origin)(n) }); err != nil {
		return nil, nil, err
	}
	if err := add(updated, "updated", func(t *resourceTuple, n *yaml.RNode) bool { return setIfFree(&t.updated)(n) }); err != nil {
		return nil, nil, err
	}
	localCount := map[string]int{} // resources per local YAML file
	if err := add(local, "dest", func(t *resourceTuple, n *yaml.RNode) bool {
		p, _, _ := kioutil.GetFileAnnotations(n)
		localCount[p]++
		return setIfFree(&t.dest)(n)
	}); err != nil {
		return nil, nil, err
	}

	// Walk the resources changed on both sides in parallel; everything else is cheap.
	type walked struct {
		before, merged *yaml.RNode
		err            error
	}
	walks := make([]walked, len(tuples))
	parallel(len(tuples), func(i int) {
		t := tuples[i]
		if t.origin == nil || t.updated == nil || t.dest == nil || unchangedUpstream(t.origin, t.updated) {
			return
		}
		w := &walks[i]
		w.before = t.dest.Copy()
		if unchangedUpstream(t.origin, t.dest) {
			// Not changed locally: every field the walk visits takes upstream's value.
			w.merged = t.updated.Copy()
			return
		}
		w.merged, w.err = walk.Walker{
			Visitor:               mergeVisitor{},
			VisitKeysAsScalars:    true,
			InferAssociativeLists: true,
			Sources:               []*yaml.RNode{t.dest, t.origin, t.updated},
		}.Walk()
	})

	var out []*yaml.RNode
	var conflicts []Conflict
	untouched := map[*yaml.RNode]bool{} // local resources that come out exactly as they were
	for i, t := range tuples {
		switch {
		case t.origin == nil && t.updated == nil:
			// added locally
			out = append(out, t.dest)
			untouched[t.dest] = true
		case t.origin == nil && t.dest == nil:
			// added upstream
			out = append(out, t.updated)
		case t.updated == nil && t.dest == nil:
			// deleted on both sides
		case t.updated == nil:
			// deleted upstream: delete only when unchanged locally
			if !sameResource(t.origin, t.dest) {
				out = append(out, t.dest)
				untouched[t.dest] = true
			}
		case t.dest == nil:
			// deleted locally: stays deleted
		case unchangedUpstream(t.origin, t.updated):
			// nothing to bring in: the three-way walk would rebuild local as it is
			out = append(out, t.dest)
			untouched[t.dest] = true
		default:
			before, merged, err := walks[i].before, walks[i].merged, walks[i].err
			if err != nil {
				p, _, _ := kioutil.GetFileAnnotations(before)
				return nil, nil, fmt.Errorf("merging %s in %s: %w", describe(before), join(pkg, p), err)
			}
			if merged == nil {
				continue
			}
			conflicts = append(conflicts, resourceConflicts(pkg, t.origin, t.updated, before, merged)...)
			out = append(out, merged)
		}
	}

	// A local file whose resources all come out untouched keeps its bytes; the others are
	// written from the merged resources, and local files left without resources go.
	byPath := map[string][]*yaml.RNode{}
	for _, n := range out {
		p, _, _ := kioutil.GetFileAnnotations(n)
		byPath[p] = append(byPath[p], n)
	}
	var toWrite []*yaml.RNode
	for p, nodes := range byPath {
		if len(nodes) == localCount[p] && !slices.ContainsFunc(nodes, func(n *yaml.RNode) bool { return !untouched[n] }) {
			continue
		}
		toWrite = append(toWrite, nodes...)
	}
	written, err := writeFiles(toWrite)
	if err != nil {
		return nil, nil, err
	}
	result := maps.Clone(local)
	for p := range localCount {
		if _, ok := byPath[p]; !ok {
			delete(result, p)
		}
	}
	maps.Copy(result, written)
	return result, conflicts, nil
}

// unchangedUpstream reports whether upstream left a resource exactly as origin had it, with
// the reader's annotations (index and sequence indentation included), styles and comments.
func unchangedUpstream(origin, updated *yaml.RNode) bool {
	return identicalNode(origin.YNode(), updated.YNode())
}

// identicalNode compares two nodes in everything that serialises (kind, tag, value, style,
// comments), except the merge-source annotation's value.
func identicalNode(a, b *yaml.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind || a.Tag != b.Tag || a.Value != b.Value || a.Style != b.Style ||
		a.HeadComment != b.HeadComment || a.LineComment != b.LineComment || a.FootComment != b.FootComment ||
		len(a.Content) != len(b.Content) || (a.Kind == yaml.AliasNode && a.Alias != b.Alias) {
		return false
	}
	for i := range a.Content {
		if a.Kind == yaml.MappingNode && i%2 == 1 && a.Content[i-1].Value == mergeSourceAnnotation {
			continue
		}
		if !identicalNode(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

// sameResource reports whether two copies of a resource are equal, ignoring the annotations
// that readers add.
func sameResource(a, b *yaml.RNode) bool {
	return stripped(a) == stripped(b)
}

func stripped(n *yaml.RNode) string {
	c := n.Copy()
	for _, a := range kyamlAnnotations {
		_ = c.PipeE(yaml.ClearAnnotation(a))
	}
	return c.MustString()
}
