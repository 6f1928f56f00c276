package fn_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/testenv"
)

// benchPackage is a package of n resources with a set-namespace + set-labels +
// apply-replacements pipeline.
func benchPackage(n int) map[string][]byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%d # app %d\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.%d\n", i, i, i%30)
	}
	return map[string][]byte{
		"Kptfile": []byte(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: bench
  annotations:
    config.kubernetes.io/local-config: "true"
pipeline:
  mutators:
  - image: gcr.io/kpt-fn/set-namespace:v0.4.1
    configMap:
      namespace: bench
  - image: gcr.io/kpt-fn/set-labels:v0.2.0
    configMap:
      app: bench
  - image: gcr.io/kpt-fn/apply-replacements:v0.1.1
    configPath: replacements.yaml
`),
		"replacements.yaml": []byte(`apiVersion: fn.kpt.dev/v1alpha1
kind: ApplyReplacements
metadata:
  name: replacements
  annotations:
    config.kubernetes.io/local-config: "true"
replacements:
- source:
    kind: ConfigMap
    name: settings
    fieldPath: data.replicas
  targets:
  - select:
      kind: Deployment
    fieldPaths:
    - metadata.annotations.replicas
    options:
      create: true
`),
		"settings.yaml":    []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  replicas: \"3\"\n"),
		"deployments.yaml": []byte(b.String()),
	}
}

func benchRender(b *testing.B, s *fn.Selector, files map[string][]byte) {
	b.Helper()
	for b.Loop() {
		if _, _, err := s.Render(context.Background(), files); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender_1000Resources renders 1,000 resources through set-namespace, set-labels and
// apply-replacements: in process (built-ins), through the exec evaluator with the same
// functions as standalone binaries (kpo-fn), and with the function cache hit every time.
func BenchmarkRender_1000Resources(b *testing.B) {
	files := benchPackage(1000)
	b.Run("builtin", func(b *testing.B) { benchRender(b, fn.NewSelector(nil, nil, 0), files) })

	bin := filepath.Join(b.TempDir(), "kpo-fn")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kpo-fn")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building kpo-fn: %v\n%s", err, out)
	}
	wrappers := map[string]string{}
	for _, name := range []string{"set-namespace", "set-labels", "apply-replacements"} {
		script := filepath.Join(b.TempDir(), name)
		if err := os.WriteFile(script, []byte("#!/bin/sh\nexec "+bin+" "+name+"\n"), 0o755); err != nil {
			b.Fatal(err)
		}
		wrappers[name] = script
	}
	// Non-catalog image names, so the exec binaries run instead of the built-ins.
	execFiles := map[string][]byte{}
	for k, v := range files {
		execFiles[k] = []byte(strings.ReplaceAll(string(v), "gcr.io/kpt-fn/", "example.com/exec/x-"))
	}
	execs := map[string]string{}
	for name, path := range wrappers {
		execs["x-"+name] = path
	}
	b.Run("exec", func(b *testing.B) {
		benchRender(b, fn.NewSelector(&fn.ExecEvaluator{Binaries: execs}, nil, -1), execFiles)
	})
	b.Run("exec-cache-hit", func(b *testing.B) {
		s := fn.NewSelector(&fn.ExecEvaluator{Binaries: execs}, nil, 16)
		if _, _, err := s.Render(context.Background(), execFiles); err != nil {
			b.Fatal(err)
		}
		benchRender(b, s, execFiles)
	})
}
