package yamlfast

import (
	"fmt"
	"reflect"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// corpus holds resources shaped the usual way and every unusual shape of metadata and
// annotations the fast paths must either handle exactly like kyaml or hand over to it.
var corpus = []string{
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a # c\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    k: v\n    config.kubernetes.io/path: 'p.yaml'\n    internal.config.kubernetes.io/index: \"3\"\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    config.kubernetes.io/path: p.yaml\n    config.kubernetes.io/index: '1'\n    config.k8s.io/id: '2'\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    internal.config.kubernetes.io/path: p.yaml\n    internal.config.kubernetes.io/id: '7'\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    internal.config.kubernetes.io/path: p.yaml\n    config.kubernetes.io/path: q.yaml\n",
	"a: b\n",
	"kind: X\n",
	"metadata:\n",
	"metadata: null\nkind: X\n",
	"metadata: {}\nkind: X\n",
	"metadata: foo\nkind: X\n",
	"metadata: [a, b]\nkind: X\n",
	"metadata: {name: x}\n",
	"metadata: {labels: {a: b}}\n",
	"metadata: {name: x, annotations: {}}\n",
	"metadata: {annotations: {}}\n",
	"metadata: {name: x, annotations: null}\n",
	"metadata: {name: x, annotations: }\n",
	"metadata: {name: x, annotations: foo}\n",
	"metadata: {name: x, annotations: [a, b]}\n",
	"metadata: {name: x, annotations: {a: b, k: \"v\"}}\n",
	"metadata: {name: x, annotations: {k: 'v', k: w}}\n",
	"metadata: {name: x, annotations: {k: , j: ~, ~: z}}\n",
	"metadata: {name: x}\nmetadata: {name: y, annotations: {k: v}}\n",
	"metadata: {name: x, annotations: {}, annotations: {k: v}}\n",
	"metadata: {name: x, annotations: {k: v}, annotations: {}}\n",
	"metadata:\n  name: x\n  annotations:\n    k: |\n      multi\n      line\n",
	"apiVersion: \"\"\nkind: ''\nmetadata: {name: ''}\n",
	"apiVersion: ~\nkind: X\nmetadata: {name: ~, namespace: n}\n",
	"spec:\n  a:\n    b: c\n  l:\n  - x\n  n: null\n  s: str\n",
	"spec: null\n",
	"spec: []\n",
	"foo\n",
	"- a\n- b\n",
}

var keys = []string{"k", "j", "a", "~", "", kioutil.PathAnnotation, kioutil.LegacyPathAnnotation, kioutil.IndexAnnotation, kioutil.IdAnnotation}

var values = []string{"v", "", "yes", "123", "multi\nline", "\xff\xfe", "p.yaml"}

// parseBoth returns two independent parses of doc: as a document node and as its content.
func parseBoth(t *testing.T, doc string) [][2]*yaml.RNode {
	t.Helper()
	parse := func() *yaml.Node {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		return &n
	}
	a, b := parse(), parse()
	c, d := parse(), parse()
	return [][2]*yaml.RNode{
		{yaml.NewRNode(a), yaml.NewRNode(b)},
		{yaml.NewRNode(c.Content[0]), yaml.NewRNode(d.Content[0])},
	}
}

// same expects the two trees and the two errors to be identical.
func same(g Gomega, what string, slow, fast *yaml.RNode, slowErr, fastErr error) {
	g.Expect(fmt.Sprint(fastErr)).To(Equal(fmt.Sprint(slowErr)), what)
	s, _ := slow.String()
	f, _ := fast.String()
	g.Expect(f).To(Equal(s), what)
	g.Expect(reflect.DeepEqual(fast.Document(), slow.Document())).To(BeTrue(), "%s: node trees differ\n%s", what, f)
}

func safe(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

func TestSettersAndClearersMatchKyaml(t *testing.T) {
	g := NewWithT(t)
	for _, doc := range corpus {
		for _, k := range keys {
			for _, v := range values {
				for _, p := range parseBoth(t, doc) {
					slow, fast := p[0], p[1]
					slowErr := safe(func() error { return slow.PipeE(yaml.SetAnnotation(k, v)) })
					fastErr := safe(func() error { return SetAnnotation(fast, k, v) })
					same(g, fmt.Sprintf("SetAnnotation(%q, %q) on %q", k, v, doc), slow, fast, slowErr, fastErr)
				}
			}
			for _, p := range parseBoth(t, doc) {
				slow, fast := p[0], p[1]
				slowErr := safe(func() error { return slow.PipeE(yaml.ClearAnnotation(k)) })
				fastErr := safe(func() error { return ClearAnnotation(fast, k) })
				same(g, fmt.Sprintf("ClearAnnotation(%q) on %q", k, doc), slow, fast, slowErr, fastErr)
			}
		}
		for _, p := range parseBoth(t, doc) {
			slow, fast := p[0], p[1]
			slowErr := safe(func() error { return yaml.ClearEmptyAnnotations(slow) })
			fastErr := safe(func() error { return ClearEmptyAnnotations(fast) })
			same(g, fmt.Sprintf("ClearEmptyAnnotations on %q", doc), slow, fast, slowErr, fastErr)
		}
		for _, p := range parseBoth(t, doc) {
			slow, fast := p[0], p[1]
			slowErr := safe(func() error { return kioutil.CopyLegacyAnnotations(slow) })
			fastErr := safe(func() error { return CopyLegacyAnnotations(fast) })
			same(g, fmt.Sprintf("CopyLegacyAnnotations on %q", doc), slow, fast, slowErr, fastErr)
		}
	}
}

func TestGettersMatchKyaml(t *testing.T) {
	g := NewWithT(t)
	for _, doc := range corpus {
		for _, p := range parseBoth(t, doc) {
			n := p[0]
			annotations := n.GetAnnotations()
			meta, metaErr := n.GetMeta()
			values, found := make([]string, len(keys)), make([]bool, len(keys))
			MetaAnnotations(n, keys, values, found)
			for i, k := range keys {
				want, wantOK := annotations[k]
				got, gotOK := Annotation(n, k)
				g.Expect([]any{got, gotOK}).To(Equal([]any{want, wantOK}), "Annotation(%q) of %q", k, doc)
				want, wantOK = meta.Annotations[k]
				got, gotOK = MetaAnnotation(n, k)
				g.Expect([]any{got, gotOK}).To(Equal([]any{want, wantOK}), "MetaAnnotation(%q) of %q", k, doc)
				g.Expect([]any{values[i], found[i]}).To(Equal([]any{want, wantOK}), "MetaAnnotations[%q] of %q", k, doc)
			}
			apiVersion, kind, name := TypeAndName(n)
			g.Expect([]string{apiVersion, kind, name}).To(Equal([]string{meta.APIVersion, meta.Kind, meta.Name}), "TypeAndName of %q", doc)
			g.Expect(MissingMeta(n)).To(Equal(metaErr == yaml.ErrMissingMetadata), "MissingMeta of %q", doc)
			wantPath, wantIndex, _ := kioutil.GetFileAnnotations(n)
			gotPath, gotIndex := FileAnnotations(n)
			g.Expect([]string{gotPath, gotIndex}).To(Equal([]string{wantPath, wantIndex}), "FileAnnotations of %q", doc)
		}
	}
}

var paths = [][]string{
	{"metadata"}, {"metadata", "name"}, {"metadata", "annotations", "k"}, {"spec", "a", "b"}, {"spec", "l"},
	{"spec", "n"}, {"spec", "n", "x"}, {"spec", "s", "x"}, {"spec", "new", "deep"}, {"spec", "l", "0"},
	{"spec", "l", "-"}, {"spec", "[a=b]"}, {"spec", " a"}, {"spec", "123"}, {"kind"}, {"x"},
}

func TestLookupAndSetFieldMatchKyaml(t *testing.T) {
	g := NewWithT(t)
	for _, doc := range corpus {
		for _, path := range paths {
			for _, p := range parseBoth(t, doc) {
				n := p[0]
				var want *yaml.Node
				wantErr := safe(func() error {
					f, err := n.Pipe(yaml.Lookup(path...))
					if f != nil {
						want = f.YNode()
					}
					return err
				})
				var got *yaml.Node
				gotErr := safe(func() (err error) { got, err = Lookup(n, path...); return err })
				g.Expect(fmt.Sprint(gotErr)).To(Equal(fmt.Sprint(wantErr)), "Lookup(%q) in %q", path, doc)
				g.Expect(got == want).To(BeTrue(), "Lookup(%q) in %q", path, doc)
			}
			for _, v := range values {
				for _, node := range []func() *yaml.Node{
					func() *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} },
					func() *yaml.Node { n := &yaml.Node{Kind: yaml.ScalarNode}; n.SetString(v); return n },
					func() *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagInt, Value: v} },
					func() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} },
				} {
					for _, p := range parseBoth(t, doc) {
						slow, fast := p[0], p[1]
						slowErr := safe(func() error { return slow.SetMapField(yaml.NewRNode(node()), path...) })
						fastErr := safe(func() error { return SetField(fast, node(), path...) })
						same(g, fmt.Sprintf("SetField(%q, %q) on %q", path, v, doc), slow, fast, slowErr, fastErr)
					}
				}
			}
		}
	}
}

func TestIsValueNonString(t *testing.T) {
	g := NewWithT(t)
	for _, v := range []string{"", "a", "yes", "no", "on", "1", "1.5", "0x1F", "1:20", "~", "null", "true", "a\nb", "yes"} {
		g.Expect(IsValueNonString(v)).To(Equal(yaml.IsValueNonString(v)), v)
	}
}
