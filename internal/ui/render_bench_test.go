package ui

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkPreview_50Resources is the inner authoring loop's budget (issue 15: at most 200 ms
// from a pause in typing to the preview, for a 50-resource package with built-in functions):
// the server's part of it, the render of the posted files.
func BenchmarkPreview_50Resources(b *testing.B) {
	files := map[string][]byte{"Kptfile": []byte(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: app
pipeline:
  mutators:
  - image: set-namespace:v0.4
    configMap:
      namespace: team-a
  - image: set-labels:v0.2
    configMap:
      team: blue
  validators:
  - image: kubeconform:v0.1
`)}
	for i := range 50 {
		files[fmt.Sprintf("cm-%02d.yaml", i)] = fmt.Appendf(nil, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%02d\ndata:\n  key: value-%d\n", i, i)
	}
	for b.Loop() {
		resp := preview(context.Background(), files)
		if resp.Error != "" || len(resp.Files) != 51 {
			b.Fatalf("preview failed: %s (%d files)", resp.Error, len(resp.Files))
		}
	}
}
