package render

import (
	"context"
	"fmt"
	"testing"

	"kpo.dev/kpo/internal/kptfile"
)

// inPlace marks an in-process evaluator as keeping comments itself.
type inPlace struct{ Evaluator }

func (inPlace) PreservesComments(kptfile.Function) bool { return true }

// BenchmarkRender_1000Resources renders a package of 1000 resources in 10 files through two
// trivial mutators and a validator.
func BenchmarkRender_1000Resources(b *testing.B) {
	files := map[string][]byte{
		"Kptfile": []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: bench\npipeline:\n  mutators:\n    - image: add-label\n      configMap:\n        tier: backend\n    - image: count\n      selectors:\n        - kind: ConfigMap\n  validators:\n    - image: count\n"),
	}
	for f := range 10 {
		var doc []byte
		for i := range 100 {
			if i > 0 {
				doc = append(doc, "---\n"...)
			}
			doc = fmt.Appendf(doc, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d-%d # comment\n  namespace: default\ndata:\n  key: value\n  list: |\n    a\n    b\n", f, i)
		}
		files[fmt.Sprintf("dir%d/resources.yaml", f)] = doc
	}
	opts := Options{Evaluator: func(fn kptfile.Function) (Evaluator, error) {
		ev, err := testEvaluator(fn)
		return inPlace{ev}, err
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Render(context.Background(), files, opts); err != nil {
			b.Fatal(err)
		}
	}
}
