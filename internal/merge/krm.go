package merge

import (
	"bytes"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/yamlfast"
)

const (
	// mergeCommentPrefix starts the line comment kpt puts on `metadata:`.
	mergeCommentPrefix = "kpt-merge:"
	// upstreamIdentifierAnnotation is the annotation kpt writes next to the merge comment.
	upstreamIdentifierAnnotation = "internal.kpt.dev/upstream-identifier"
	// mergeSourceAnnotation marks which tree a resource was read from while merging, as kpt
	// does; it never reaches the output.
	mergeSourceAnnotation = "config.kubernetes.io/merge-source"
)

// readFile parses one YAML file into resources the way kpt's package reader does: sequence
// indentation recorded, bare sequences wrapped, path and index annotations set. extra
// annotations (the merge source) are set too.
func readFile(p string, data []byte, extra map[string]string) ([]*yaml.RNode, error) {
	nodes, err := yamlfast.ReadNodes(data, p)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidInput, p, err)
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		for _, n := range nodes {
			if err := yamlfast.SetAnnotation(n, k, extra[k]); err != nil {
				return nil, err
			}
		}
	}
	return nodes, nil
}

// writeFiles serialises resources into files by their path annotation, each file's resources
// in index order, clearing the reader's annotations, as kpt's package writer does. It edits
// the nodes as it writes them: give it copies of nodes still needed.
func writeFiles(nodes []*yaml.RNode) (map[string][]byte, error) {
	if err := kioutil.DefaultPathAndIndexAnnotation("", nodes); err != nil {
		return nil, err
	}
	byPath := map[string][]*yaml.RNode{}
	for _, n := range nodes {
		p, _, err := kioutil.GetFileAnnotations(n)
		if err != nil {
			return nil, err
		}
		byPath[p] = append(byPath[p], n)
	}
	out := make(map[string][]byte, len(byPath))
	for p, ns := range byPath {
		if err := kioutil.SortNodes(ns); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := yamlfast.WriteNodes(&buf, ns, mergeSourceAnnotation, kioutil.PathAnnotation, kioutil.LegacyPathAnnotation); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		out[p] = buf.Bytes()
	}
	return out, nil
}

// addMergeComments returns a copy of files in which every resource has kpt's merge comment
// (`metadata: # kpt-merge: <namespace>/<name>`, kept when already present) and
// upstream-identifier annotation. Files in which something was added are rewritten through
// kyaml, as kpt does; files that already had both are left byte for byte (kpt would rewrite
// them too, which only re-formats). Like kpt's, it is best effort: when any YAML file of the
// tree does not parse, the tree is returned as is.
func addMergeComments(files map[string][]byte) (map[string][]byte, error) {
	return addMergeCommentsCached(files, nil)
}

// parseCache keeps the resources parsed from a file (path and content) so a later read of the
// same bytes needs no second parse. It also remembers, per path and input content, what
// adding merge comments made of a file, so a file that two trees share (origin and upstream
// usually share most) is parsed and commented once.
type parseCache struct {
	nodes    byFile[[]*yaml.RNode] // by path and content after merge comments
	comments byFile[*commentedFile]
}

// byFile maps a file, its path and its content, to a V. Looking a file up allocates nothing
// (the content is the key of an inner map, converted in place), where a key joining path and
// content would copy every file at every lookup.
type byFile[V any] map[string]map[string]V

func (m byFile[V]) get(p string, data []byte) (V, bool) {
	v, ok := m[p][string(data)]
	return v, ok
}

func (m byFile[V]) set(p string, data []byte, v V) {
	if m[p] == nil {
		m[p] = map[string]V{}
	}
	m[p][string(data)] = v
}

// commentedFile is one file with merge comments added: its resources and its bytes.
type commentedFile struct {
	nodes []*yaml.RNode
	out   []byte
	ok    bool // false when the file did not parse or could not be written
}

func newParseCache() *parseCache {
	return &parseCache{nodes: byFile[[]*yaml.RNode]{}, comments: byFile[*commentedFile]{}}
}

// read returns the resources of a file, from the cache when it has them.
func (c *parseCache) read(p string, data []byte, extra map[string]string) ([]*yaml.RNode, error) {
	cached, ok := c.nodes.get(p, data)
	if !ok {
		return readFile(p, data, extra)
	}
	nodes := make([]*yaml.RNode, len(cached))
	for i, n := range cached {
		nodes[i] = n.Copy()
		for k, v := range extra {
			if err := nodes[i].PipeE(yaml.SetAnnotation(k, v)); err != nil {
				return nil, err
			}
		}
	}
	return nodes, nil
}

// commentFile parses one file and adds the merge comments to its resources; a file that got
// any is re-serialised. Files are independent here: writeFiles groups by path.
func commentFile(p string, data []byte) *commentedFile {
	nodes, err := readFile(p, data, nil)
	if err != nil {
		return &commentedFile{}
	}
	changed := false
	for _, n := range nodes {
		if addMergeComment(n) {
			changed = true
		}
	}
	f := &commentedFile{nodes: nodes, out: data, ok: true}
	if changed {
		copies := make([]*yaml.RNode, len(nodes))
		for i, n := range nodes {
			copies[i] = n.Copy()
		}
		written, err := writeFiles(copies)
		if err != nil {
			return &commentedFile{}
		}
		f.out = written[p]
	}
	return f
}

func addMergeCommentsCached(files map[string][]byte, cache *parseCache) (map[string][]byte, error) {
	if cache == nil {
		cache = newParseCache()
	}
	out := maps.Clone(files)
	if out == nil {
		out = map[string][]byte{}
	}
	var paths, todo []string
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if !isYAMLFile(p) {
			continue
		}
		paths = append(paths, p)
		if _, ok := cache.comments.get(p, files[p]); !ok {
			todo = append(todo, p)
		}
	}
	done := make([]*commentedFile, len(todo))
	parallel(len(todo), func(i int) {
		done[i] = commentFile(todo[i], files[todo[i]])
	})
	for i, p := range todo {
		cache.comments.set(p, files[p], done[i])
	}
	commented := make([]*commentedFile, len(paths))
	for i, p := range paths {
		commented[i], _ = cache.comments.get(p, files[p])
		if !commented[i].ok {
			return out, nil // best effort, as kpt's addmergecomment
		}
	}
	for i, p := range paths {
		out[p] = commented[i].out
		cache.nodes.set(p, out[p], commented[i].nodes)
	}
	return out, nil
}

// addMergeComment adds the merge comment and upstream identifier to one resource and reports
// whether it added anything. Resources without name, namespace and labels are left alone, as
// kpt does.
func addMergeComment(n *yaml.RNode) bool {
	meta, err := n.GetMeta()
	if err != nil {
		return false
	}
	if n.GetName() == "" && n.GetNamespace() == "" && len(n.GetLabels()) == 0 {
		return false
	}
	mf := n.Field(yaml.MetadataField)
	if mf == nil {
		return false
	}
	changed := false
	if !strings.Contains(mf.Key.YNode().LineComment, mergeCommentPrefix) {
		mf.Key.YNode().LineComment = fmt.Sprintf("%s %s/%s", mergeCommentPrefix, meta.Namespace, meta.Name)
		changed = true
	}
	group, _ := resid.ParseGroupVersion(n.GetApiVersion())
	ns, name := meta.Namespace, meta.Name
	if c := commentNsName(mf.Key.YNode().LineComment); c != nil {
		ns, name = c[0], c[1]
	}
	switch {
	case ns == "":
		ns = "default"
	case n.GetNamespace() == resid.TotallyNotANamespace:
		ns = "~C"
	}
	id := fmt.Sprintf("%s|%s|%s|%s", group, n.GetKind(), ns, name)
	if meta.Annotations[upstreamIdentifierAnnotation] != id {
		_ = n.PipeE(yaml.SetAnnotation(upstreamIdentifierAnnotation, id))
		changed = true
	}
	return changed
}

// commentNsName parses "# kpt-merge: <namespace>/<name>" into namespace and name, or nil.
func commentNsName(comment string) []string {
	c := strings.TrimSpace(strings.TrimPrefix(comment, "#"))
	if !strings.HasPrefix(c, mergeCommentPrefix) {
		return nil
	}
	parts := strings.SplitN(strings.TrimSpace(strings.TrimPrefix(c, mergeCommentPrefix)), "/", 2)
	if len(parts) != 2 {
		return nil
	}
	return parts
}

// identity is what makes two resources the same resource across the three trees: API group
// (not version), kind, namespace and name (from the merge comment when present) and file.
func identity(n *yaml.RNode) (string, error) {
	if err := yamlfast.CopyLegacyAnnotations(n); err != nil {
		return "", err
	}
	md, err := yamlfast.Lookup(n, yaml.MetadataField)
	if err != nil {
		return "", err
	}
	if md != nil && md.Kind != yaml.MappingNode && md.Tag != yaml.NodeTagNull {
		return identitySlow(n) // kyaml's errors for a metadata that is not a mapping
	}
	apiVersion, kind, name := yamlfast.TypeAndName(n)
	ns := ""
	if f, _ := yamlfast.Lookup(n, yaml.MetadataField, yaml.NamespaceField); f != nil && f.Tag != yaml.NodeTagNull {
		ns = f.Value
	}
	group, _ := resid.ParseGroupVersion(apiVersion)
	if md != nil {
		if key := metadataKey(n.YNode()); key != nil {
			if c := commentNsName(key.LineComment); c != nil {
				ns, name = c[0], c[1]
			}
		}
	}
	path, _ := yamlfast.MetaAnnotation(n, kioutil.PathAnnotation)
	return strings.Join([]string{group, kind, ns, name, path}, "\x00"), nil
}

// metadataKey is the key node of a resource's metadata field, which carries kpt's merge comment.
func metadataKey(m *yaml.Node) *yaml.Node {
	if m.Kind == yaml.DocumentNode && len(m.Content) > 0 {
		m = m.Content[0]
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i] != nil && m.Content[i].Value == yaml.MetadataField {
			return m.Content[i]
		}
	}
	return nil
}

// identitySlow is identity through kyaml's metadata reader.
func identitySlow(n *yaml.RNode) (string, error) {
	meta, err := n.GetMeta()
	if err != nil {
		return "", err
	}
	group, _ := resid.ParseGroupVersion(meta.APIVersion)
	ns, name := meta.Namespace, meta.Name
	if mf := n.Field(yaml.MetadataField); mf != nil {
		if c := commentNsName(mf.Key.YNode().LineComment); c != nil {
			ns, name = c[0], c[1]
		}
	}
	return strings.Join([]string{group, meta.Kind, ns, name, meta.Annotations[kioutil.PathAnnotation]}, "\x00"), nil
}

// describe names a resource for a Conflict.
func describe(n *yaml.RNode) string {
	s := n.GetApiVersion() + " " + n.GetKind() + " "
	if ns := n.GetNamespace(); ns != "" {
		s += ns + "/"
	}
	return s + n.GetName()
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines. Parsing and merging resources are
// independent per file and per resource, and dominate an update's time.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// AddMergeComments returns files with kpt's merge comment and upstream-identifier annotation on
// every resource, as `kpt pkg get` leaves a fetched package (see addMergeComments).
func AddMergeComments(files map[string][]byte) (map[string][]byte, error) {
	return addMergeComments(files)
}
