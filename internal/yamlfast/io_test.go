package yamlfast

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// yamlCorpus returns YAML files to compare ReadNodes and WriteNodes with kyaml's reader and
// writer: the repository's test packages, kpt's conformance fixtures when present, and edge cases.
func yamlCorpus(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"edge/bare-seq.yaml":       []byte("- a\n- b\n"),
		"edge/scalar.yaml":         []byte("foo\n"),
		"edge/empty-docs.yaml":     []byte("---\n---\napiVersion: v1\nkind: A\nmetadata:\n  name: a\n---\n"),
		"edge/crlf.yaml":           []byte("apiVersion: v1\r\nkind: A\r\nmetadata:\r\n  name: a\r\n---\r\napiVersion: v1\r\nkind: B\r\nmetadata:\r\n  name: b\r\n"),
		"edge/comments.yaml":       []byte("# head\napiVersion: v1 # line\nkind: A\nmetadata:\n  name: a\n# foot\n--- # sep\n# only a comment\n---\n# head b\napiVersion: v1\nkind: B\nmetadata:\n  name: b\n  annotations: {}\n"),
		"edge/bad-separator.yaml":  []byte("a: b\n--- c\nd: e\n"),
		"edge/malformed.yaml":      []byte("a: [b\n"),
		"edge/wide.yaml":           []byte("apiVersion: v1\nkind: A\nmetadata:\n  name: a\nlist:\n  - a\n  - b\n---\napiVersion: v1\nkind: B\nmetadata:\n  name: b\nlist:\n- a\n"),
		"edge/literal-keep.yaml":   []byte("apiVersion: v1\nkind: A\nmetadata:\n  name: a\ndata:\n  x: |+\n    keep\n\n---\napiVersion: v1\nkind: B\nmetadata:\n  name: b\n"),
		"edge/annotated.yaml":      []byte("apiVersion: v1\nkind: A\nmetadata:\n  name: a\n  annotations:\n    config.kubernetes.io/path: other.yaml\n    config.kubernetes.io/index: '4'\n"),
		"edge/resource.json":       []byte(`{"apiVersion": "v1", "kind": "A", "metadata": {"name": "a"}}`),
		"edge/no-metadata.yaml":    []byte("apiVersion: v1\nkind: A\n"),
		"edge/metadata-null.yaml":  []byte("apiVersion: v1\nkind: A\nmetadata:\n"),
		"edge/anchors.yaml":        []byte("apiVersion: v1\nkind: A\nmetadata:\n  name: &n a\nspec:\n  x: *n\n"),
		"edge/flow.yaml":           []byte("{apiVersion: v1, kind: A, metadata: {name: a, labels: {x: y}}}\n"),
		"edge/document-start.yaml": []byte("---\napiVersion: v1\nkind: A\nmetadata:\n  name: a\n...\n"),
	}
	dirs := []string{filepath.Join("..", "render", "testdata"), filepath.Join("..", "fn", "builtin", "testdata"), conformanceDir()}
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return filepath.SkipDir // a directory that cannot be read (the conformance suite may be absent) adds nothing
			}
			if d.IsDir() {
				return nil
			}
			if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" && ext != ".json" && d.Name() != "Kptfile" {
				return nil
			}
			data, err := os.ReadFile(p)
			if err == nil {
				files[filepath.ToSlash(p)] = data
			}
			return nil
		})
	}
	if len(files) < 50 {
		t.Fatalf("only %d files in the corpus", len(files))
	}
	return files
}

func kyamlRead(data []byte, rel string) ([]*yaml.RNode, error) {
	r := &kio.ByteReader{
		Reader:            bytes.NewReader(data),
		DisableUnwrapping: true,
		PreserveSeqIndent: true,
		WrapBareSeqNode:   true,
		SetAnnotations:    map[string]string{kioutil.PathAnnotation: rel, kioutil.LegacyPathAnnotation: rel},
	}
	return r.Read()
}

func TestReadNodesAndWriteNodes_matchKyaml(t *testing.T) {
	g := NewWithT(t)
	clear := []string{kioutil.PathAnnotation, kioutil.LegacyPathAnnotation, "internal.config.kubernetes.io/package-path"}
	for p, data := range yamlCorpus(t) {
		rel := filepath.Base(p)
		want, wantErr := kyamlRead(data, rel)
		got, gotErr := ReadNodes(data, rel)
		g.Expect(fmt.Sprint(gotErr)).To(Equal(fmt.Sprint(wantErr)), "reading %s", p)
		g.Expect(len(got)).To(Equal(len(want)), "reading %s", p)
		for i := range want {
			if !reflect.DeepEqual(got[i].Document(), want[i].Document()) {
				w, _ := want[i].String()
				s, _ := got[i].String()
				t.Errorf("reading %s: resource %d differs:\n--- kyaml\n%s\n--- kpo\n%s", p, i, w, s)
			}
		}
		if wantErr != nil {
			continue
		}
		// every resource in the file, and then only the first one (a file of its own)
		for _, nodes := range [][]*yaml.RNode{want, want[:min(1, len(want))]} {
			var wantBuf, gotBuf bytes.Buffer
			wantErr := kio.ByteWriter{Writer: &wantBuf, ClearAnnotations: clear}.Write(nodes)
			gotErr := WriteNodes(&gotBuf, copyNodes(nodes), clear...)
			g.Expect(fmt.Sprint(gotErr)).To(Equal(fmt.Sprint(wantErr)), "writing %s", p)
			g.Expect(gotBuf.String()).To(Equal(wantBuf.String()), "writing %s", p)
		}
	}
}

func TestWriteNodes_manyDocuments(t *testing.T) {
	g := NewWithT(t)
	var b strings.Builder
	for i := range 300 {
		fmt.Fprintf(&b, "---\n# resource %d\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d # name\ndata:\n  text: |+\n    line %d\n\n  list:\n  - 'a'\n  - \"b\"\n", i, i, i)
	}
	nodes, err := ReadNodes([]byte(b.String()), "many.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	var want, got bytes.Buffer
	g.Expect(kio.ByteWriter{Writer: &want}.Write(nodes)).To(Succeed())
	g.Expect(WriteNodes(&got, copyNodes(nodes))).To(Succeed())
	g.Expect(got.String()).To(Equal(want.String()))
}

// conformanceDir returns kpt's fn-render fixtures, as internal/fn's conformance test finds
// them: $KPO_CONFORMANCE_DIR/fn-render, or the shared copy next to the repository.
func conformanceDir() string {
	if d := os.Getenv("KPO_CONFORMANCE_DIR"); d != "" {
		return filepath.Join(d, "fn-render")
	}
	return filepath.Join("..", "..", "..", "shared", "conformance", "kpt", "fn-render")
}

func copyNodes(nodes []*yaml.RNode) []*yaml.RNode {
	out := make([]*yaml.RNode, len(nodes))
	for i, n := range nodes {
		out[i] = n.Copy()
	}
	return out
}
