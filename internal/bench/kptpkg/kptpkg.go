// Package kptpkg writes the generated kpt package the render benchmarks share (`make bench`
// and `make bench-kpt`).
package kptpkg

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Images names the pipeline's three functions as the renderer under test knows them: kpo's
// built-ins by short name, kpt's catalog by full image.
type Images struct {
	SetNamespace, SetLabels, ApplyReplacements string
}

// Write writes to dir (created when missing) a package of n resources, Deployments and
// ConfigMaps, 100 per file, whose pipeline runs set-namespace, set-labels and
// apply-replacements.
func Write(dir string, n int, img Images) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	files := map[string]string{
		"Kptfile": fmt.Sprintf(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: bench
pipeline:
  mutators:
    - image: %s
      configMap:
        namespace: prod
    - image: %s
      configMap:
        app: bench
    - image: %s
      configPath: replacements.yaml
`, img.SetNamespace, img.SetLabels, img.ApplyReplacements),
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
			files[fmt.Sprintf("r%04d.yaml", i/50)] = b.String()
			b.Reset()
		}
		fmt.Fprintf(&b, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d-%d\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx\n", i)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\ndata:\n  v: img-%d\n", i, i)
	}
	files["last.yaml"] = b.String()
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}
