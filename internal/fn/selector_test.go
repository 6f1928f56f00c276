package fn_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/sandbox"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// buildKpoFn builds the sandbox's binary into a temporary directory.
func buildKpoFn(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), sandbox.BinaryName)
	if out, err := exec.Command("go", "build", "-o", bin, "kpo.dev/kpo/cmd/kpo-fn").CombinedOutput(); err != nil {
		t.Fatalf("building kpo-fn: %v\n%s", err, out)
	}
	return bin
}

// starlarkPackage is a package whose pipeline runs script with the starlark function.
func starlarkPackage(script string) map[string][]byte {
	indented := ""
	for _, line := range strings.Split(strings.TrimSuffix(script, "\n"), "\n") {
		indented += "  " + line + "\n"
	}
	return map[string][]byte{
		"Kptfile": []byte(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: app
  annotations:
    config.kubernetes.io/local-config: "true"
pipeline:
  mutators:
  - image: ghcr.io/kptdev/krm-functions-catalog/starlark:v0.5
    configPath: script.yaml
`),
		"script.yaml": []byte(`apiVersion: fn.kpt.dev/v1alpha1
kind: StarlarkRun
metadata:
  name: script
  annotations:
    config.kubernetes.io/local-config: "true"
source: |
` + indented),
		"app.yaml": []byte(`# The application.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web # the web tier
spec:
  replicas: 1 # scaled by the pipeline
`),
	}
}

// peakRSS is the peak resident memory of the test process, in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Maxrss << 10
}

func TestSelector_sandbox_hostileStarlarkFailsOnItsMemoryBudget(t *testing.T) {
	g := NewWithT(t)
	s := fn.NewSelector(nil, nil, 0)
	s.Sandbox = &sandbox.Evaluator{Binary: buildKpoFn(t), Memory: 512 << 20}
	files := starlarkPackage("s = \"b\" * 400000000\nt = s + s + s\n")
	before := peakRSS(t)

	out, results, err := s.Render(context.Background(), files)

	g.Expect(out).To(BeNil())
	var fe *render.FunctionError
	g.Expect(errors.As(err, &fe)).To(BeTrue(), "a failed function: %v", err)
	g.Expect(err).To(MatchError(ContainSubstring("function starlark exceeded its memory budget of 512 MiB")))
	g.Expect(errors.As(err, new(*sandbox.MemoryError))).To(BeTrue())
	g.Expect(errors.Is(err, render.ErrTimeout)).To(BeFalse())
	g.Expect(results).To(HaveLen(1))
	g.Expect(results[0].ExitCode).NotTo(BeZero())
	g.Expect(results[0].Results).To(ContainElement(HaveField("Message", "function starlark exceeded its memory budget of 512 MiB")))
	g.Expect(peakRSS(t)-before).To(BeNumerically("<", 100<<20), "the manager's memory did not grow")
}

func TestSelector_sandbox_rendersAsInProcess(t *testing.T) {
	g := NewWithT(t)
	files := starlarkPackage(`load("krmfn.star", "krmfn")
for r in ctx.resource_list["items"]:
  if krmfn.match_gvk(r, "apps/v1", "Deployment"):
    r["spec"]["replicas"] = 3
    r["metadata"]["labels"] = {"tier": "web"}
print("scaled")`)
	inProcess := fn.NewSelector(nil, nil, 0)
	want, wantResults, err := inProcess.Render(context.Background(), files)
	g.Expect(err).NotTo(HaveOccurred())

	sandboxed := fn.NewSelector(nil, nil, 0)
	sandboxed.Sandbox = &sandbox.Evaluator{Binary: buildKpoFn(t)}
	got, gotResults, err := sandboxed.Render(context.Background(), files)

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveKeyWithValue("app.yaml", ContainSubstring("replicas: 3 # scaled by the pipeline")))
	for name := range want {
		g.Expect(string(got[name])).To(Equal(string(want[name])), name)
	}
	g.Expect(got).To(HaveLen(len(want)))
	g.Expect(gotResults).To(Equal(wantResults))
}

func TestSelector_evaluator_sandboxesStarlarkOnly(t *testing.T) {
	g := NewWithT(t)
	starlark := kptfile.Function{Image: "gcr.io/kpt-fn/starlark:v0.4.3"}
	setLabels := kptfile.Function{Image: "gcr.io/kpt-fn/set-labels:v0.2.0"}

	plain := fn.NewSelector(nil, nil, 0)
	ev, err := plain.Evaluator(starlark)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev).To(Equal(fn.BuiltinEvaluator{}), "without a sandbox starlark runs in process")

	boxed := fn.NewSelector(nil, nil, 0)
	boxed.Sandbox = &sandbox.Evaluator{Binary: "/nonexistent/kpo-fn"}
	ev, err = boxed.Evaluator(starlark)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev).NotTo(Equal(fn.BuiltinEvaluator{}))
	ev, err = boxed.Evaluator(setLabels)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev).To(Equal(fn.BuiltinEvaluator{}), "kpo's own Go functions stay in process")
}
