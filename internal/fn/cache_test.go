package fn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/kpotest"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// testFunctions are tiny functions, by image, as package render's tests have them.
var testFunctions = map[string]render.EvaluatorFunc{
	// add-label sets every functionConfig data entry as a label on every resource.
	"add-label": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		var data map[string]string
		if rl.FunctionConfig != nil {
			data = rl.FunctionConfig.GetDataMap()
		}
		for _, item := range rl.Items {
			for _, k := range slices.Sorted(maps.Keys(data)) {
				if err := item.PipeE(yaml.SetLabel(k, data[k])); err != nil {
					return err
				}
			}
		}
		rl.Results = append(rl.Results, &framework.Result{Message: fmt.Sprintf("labelled %d resource(s)", len(rl.Items)), Severity: framework.Info})
		return nil
	},
	// count records how many resources it saw, as a result and an annotation on each.
	"count": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		for _, item := range rl.Items {
			if err := item.PipeE(yaml.SetAnnotation("seen", "true")); err != nil {
				return err
			}
		}
		rl.Results = append(rl.Results, &framework.Result{Message: fmt.Sprintf("saw %d resource(s)", len(rl.Items)), Severity: framework.Info})
		return nil
	},
	// fail reports an error result.
	"fail": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		rl.Results = append(rl.Results, &framework.Result{Message: "failing on purpose", Severity: framework.Error})
		return nil
	},
	// crash fails like a container exiting 2.
	"crash": func(_ context.Context, fn kptfile.Function, _ *framework.ResourceList) error {
		return &render.FunctionError{Image: fn.Image, ExitCode: 2, Stderr: "boom", Err: errors.New("crashed")}
	},
}

// countingEvaluator counts runs and otherwise behaves like the test functions.
type countingEvaluator struct{ runs atomic.Int32 }

func (c *countingEvaluator) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	c.runs.Add(1)
	ev, ok := testFunctions[builtin.ImageName(fn.Image)]
	if !ok {
		return fmt.Errorf("no evaluator for image %s", fn.Image)
	}
	return ev.Evaluate(ctx, fn, rl)
}

// functionInput is the functionConfig kpt builds from a function's configMap.
func functionInput(data map[string]string) *yaml.RNode {
	cm := yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: function-input\n")
	cm.SetDataMap(data)
	return cm
}

func TestCachingEvaluator_hitRestoresItemsAndResultsWithoutRunning(t *testing.T) {
	g := NewWithT(t)
	counter := &countingEvaluator{}
	cache := &CachingEvaluator{Next: counter, Size: 16}
	opts := render.Options{Evaluator: func(kptfile.Function) (render.Evaluator, error) { return cache, nil }}
	in := kpotest.ReadTree(t, filepath.Join("testdata", "subpackages"))

	out1, results1, err := render.Render(context.Background(), in, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(3))

	out2, results2, err := render.Render(context.Background(), in, opts)
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
	config := func(v string) *yaml.RNode { return functionInput(map[string]string{"k": v}) }
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

func TestCachingEvaluator_secondRenderOfSameFiles_doesNotRunTheBinaryAgain(t *testing.T) {
	g := NewWithT(t)
	runs := filepath.Join(t.TempDir(), "runs")
	// The function drops comments and reorders fields like any serializing function; the
	// cached output must come back with them restored, exactly as the first render's.
	bin := script(t, "echo run >> "+runs+"\nsed -e 's/ # keep me//' -e 's/value: foo/value: bar/'")
	cache := &CachingEvaluator{Next: ExecEvaluator{Binaries: map[string]string{"sed-foo": bin}}, Size: 8}
	opts := render.Options{Evaluator: func(kptfile.Function) (render.Evaluator, error) { return cache, nil }}
	files := execPackage("image: gcr.io/example/sed-foo:v1")
	countRuns := func() int {
		data, _ := os.ReadFile(runs)
		return strings.Count(string(data), "run\n")
	}

	out1, results1, err := render.Render(context.Background(), files, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(countRuns()).To(Equal(1))
	g.Expect(string(out1["cm.yaml"])).To(Equal("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm # keep me\ndata:\n  value: bar\n"))

	for range 2 {
		out2, results2, err := render.Render(context.Background(), files, opts)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(countRuns()).To(Equal(1), "a render of the same files is served from the cache")
		g.Expect(out2).To(Equal(out1))
		g.Expect(results2).To(Equal(results1))
	}

	// Another input misses.
	files["cm.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  value: foo\n")
	_, _, err = render.Render(context.Background(), files, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(countRuns()).To(Equal(2))
}

func TestCachingEvaluator_negativeSize_cachesNothing(t *testing.T) {
	g := NewWithT(t)
	counter := &countingEvaluator{}
	cache := &CachingEvaluator{Next: counter, Size: -1}
	opts := render.Options{Evaluator: func(kptfile.Function) (render.Evaluator, error) { return cache, nil }}
	in := kpotest.ReadTree(t, filepath.Join("testdata", "subpackages"))
	out1, _, err := render.Render(context.Background(), in, opts)
	g.Expect(err).NotTo(HaveOccurred())
	out2, _, err := render.Render(context.Background(), in, opts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.runs.Load()).To(BeEquivalentTo(6))
	g.Expect(cache.Len()).To(Equal(0))
	g.Expect(out2).To(Equal(out1))
}
