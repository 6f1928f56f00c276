package kpoctl

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeBenchPackage writes a package of n resources (Deployments and ConfigMaps, 100 per file)
// whose pipeline runs set-namespace, set-labels and apply-replacements.
func writeBenchPackage(tb testing.TB, dir string, n int) {
	tb.Helper()
	files := map[string]string{
		"Kptfile": `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: bench
pipeline:
  mutators:
    - image: set-namespace:v0.4.3
      configMap:
        namespace: prod
    - image: set-labels:v0.2.5
      configMap:
        app: bench
    - image: apply-replacements:v0.1.1
      configPath: replacements.yaml
`,
		"replacements.yaml": `apiVersion: fn.kpt.dev/v1alpha1
kind: ApplyReplacements
metadata:
  name: r
  annotations:
    config.kubernetes.io/local-config: "true"
replacements:
- source: {kind: ConfigMap, name: cm-0, fieldPath: data.v}
  targets:
  - select: {kind: Deployment}
    fieldPaths:
    - spec.template.spec.containers.[name=app].image
`,
	}
	var b strings.Builder
	for i := 0; i < n/2; i++ {
		if i%50 == 0 && i > 0 {
			files[fmt.Sprintf("r%03d.yaml", i/50)] = b.String()
			b.Reset()
		}
		fmt.Fprintf(&b, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d-%d\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx\n", i)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\ndata:\n  v: img-%d\n", i, i)
	}
	files["last.yaml"] = b.String()
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkFnRender_1000Resources is `kpoctl fn render` in place on 1,000 resources through
// set-namespace, set-labels and apply-replacements, reading and writing the files (the
// command's work without process start-up).
func BenchmarkFnRender_1000Resources(b *testing.B) {
	dir := b.TempDir()
	writeBenchPackage(b, dir, 1000)
	streams := IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
	b.ReportAllocs()
	for b.Loop() {
		if code := Run(context.Background(), []string{"fn", "render", dir}, streams); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
