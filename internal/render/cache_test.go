package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/kptfile"
)

// countingEvaluator counts runs and otherwise behaves like the test evaluators.
type countingEvaluator struct{ runs atomic.Int32 }

func (c *countingEvaluator) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	c.runs.Add(1)
	ev, err := testEvaluator(fn)
	if err != nil {
		return err
	}
	return ev.Evaluate(ctx, fn, rl)
}

func TestCachingEvaluator_hitRestoresItemsAndResultsWithoutRunning(t *testing.T) {
	g := NewWithT(t)
	counter := &countingEvaluator{}
	cache := &CachingEvaluator{Next: counter, Size: 16}
	opts := Options{Evaluator: func(kptfile.Function) (Evaluator, error) { return cache, nil }}
	in := readTree(t, filepath.Join("testdata", "subpackages", "input"))

	out1, results1, err := Render(context.Background(), in, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(3))

	out2, results2, err := Render(context.Background(), in, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(3), "the second render is served from the cache")
	g.Expect(out2).To(Equal(out1))
	g.Expect(results2).To(Equal(results1))
}

func TestCachingEvaluator_differentConfigOrInput_misses(t *testing.T) {
	g := NewWithT(t)
	counter := &countingEvaluator{}
	cache := &CachingEvaluator{Next: counter}
	item := func(name string) []*yaml.RNode {
		return []*yaml.RNode{yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n")}
	}
	config := func(v string) *yaml.RNode {
		cm, err := configMapConfig(map[string]string{"k": v})
		g.Expect(err).NotTo(HaveOccurred())
		return cm
	}
	fn := kptfile.Function{Image: "add-label"}
	for _, rl := range []*framework.ResourceList{
		{Items: item("a"), FunctionConfig: config("1")},
		{Items: item("a"), FunctionConfig: config("1")}, // hit
		{Items: item("a"), FunctionConfig: config("2")}, // other config
		{Items: item("b"), FunctionConfig: config("1")}, // other input
	} {
		g.Expect(cache.Evaluate(context.Background(), fn, rl)).To(Succeed())
		g.Expect(rl.Items[0].GetLabels()).To(HaveKey("k"))
	}
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(3))
	g.Expect(cache.Evaluate(context.Background(), kptfile.Function{Image: "count"}, &framework.ResourceList{Items: item("a"), FunctionConfig: config("1")})).To(Succeed())
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(4), "another image misses")
}

func TestCachingEvaluator_evictsLeastRecentlyUsedBeyondSize(t *testing.T) {
	g := NewWithT(t)
	counter := &countingEvaluator{}
	cache := &CachingEvaluator{Next: counter, Size: 2}
	run := func(name string) {
		rl := &framework.ResourceList{Items: []*yaml.RNode{yaml.MustParse(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name))}}
		g.Expect(cache.Evaluate(context.Background(), kptfile.Function{Image: "count"}, rl)).To(Succeed())
	}
	run("a")
	run("b")
	run("a") // hit; b is now the least recently used
	run("c") // evicts b
	g.Expect(cache.Len()).To(Equal(2))
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(3))
	run("a") // still cached
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(3))
	run("b") // evicted: runs again
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(4))
}

func TestCachingEvaluator_failuresAreNotCached(t *testing.T) {
	g := NewWithT(t)
	counter := &countingEvaluator{}
	cache := &CachingEvaluator{Next: counter}
	for range 2 {
		_ = cache.Evaluate(context.Background(), kptfile.Function{Image: "crash"}, &framework.ResourceList{})
		_ = cache.Evaluate(context.Background(), kptfile.Function{Image: "fail"}, &framework.ResourceList{})
	}
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(4))
	g.Expect(cache.Len()).To(Equal(0))
}

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

func TestCachingEvaluator_secondRenderOfSameFiles_doesNotRunTheBinaryAgain(t *testing.T) {
	g := NewWithT(t)
	runs := filepath.Join(t.TempDir(), "runs")
	// The function drops comments and reorders fields like any serializing function; the
	// cached output must come back with them restored, exactly as the first render's.
	bin := script(t, "echo run >> "+runs+"\nsed -e 's/ # keep me//' -e 's/value: foo/value: bar/'")
	cache := &CachingEvaluator{Next: ExecEvaluator{Binaries: map[string]string{"sed-foo": bin}}, Size: 8}
	opts := Options{Evaluator: func(kptfile.Function) (Evaluator, error) { return cache, nil }}
	files := execPackage("image: gcr.io/example/sed-foo:v1")
	countRuns := func() int {
		data, _ := os.ReadFile(runs)
		return strings.Count(string(data), "run\n")
	}

	out1, results1, err := Render(context.Background(), files, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(countRuns()).To(Equal(1))
	g.Expect(string(out1["cm.yaml"])).To(Equal("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm # keep me\ndata:\n  value: bar\n"))

	for range 2 {
		out2, results2, err := Render(context.Background(), files, opts)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(countRuns()).To(Equal(1), "a render of the same files is served from the cache")
		g.Expect(out2).To(Equal(out1))
		g.Expect(results2).To(Equal(results1))
	}

	// Another input misses.
	files["cm.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  value: foo\n")
	_, _, err = Render(context.Background(), files, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(countRuns()).To(Equal(2))
}

func TestCachingEvaluator_negativeSize_cachesNothing(t *testing.T) {
	g := NewWithT(t)
	counter := &countingEvaluator{}
	cache := &CachingEvaluator{Next: counter, Size: -1}
	opts := Options{Evaluator: func(kptfile.Function) (Evaluator, error) { return cache, nil }}
	in := readTree(t, filepath.Join("testdata", "subpackages", "input"))
	out1, _, err := Render(context.Background(), in, opts)
	g.Expect(err).NotTo(HaveOccurred())
	out2, _, err := Render(context.Background(), in, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(6))
	g.Expect(cache.Len()).To(Equal(0))
	g.Expect(out2).To(Equal(out1))
}
