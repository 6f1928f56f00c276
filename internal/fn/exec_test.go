package fn

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fn.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func execPackage(fnLine string) map[string][]byte {
	return map[string][]byte{
		"Kptfile": []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\npipeline:\n  mutators:\n    - " + fnLine + "\n"),
		"cm.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm # keep me\ndata:\n  value: foo\n"),
	}
}

func TestExecEvaluator_runsListedBinaryOverTheResourceList(t *testing.T) {
	g := NewWithT(t)
	ev := ExecEvaluator{Binaries: map[string]string{"sed-foo": script(t, "echo working >&2\nsed -e 's/value: foo/value: bar/'")}}
	out, results, err := render.Render(context.Background(), execPackage("image: gcr.io/example/sed-foo:v1"), render.Options{
		Evaluator: func(kptfile.Function) (render.Evaluator, error) { return ev, nil },
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out["cm.yaml"])).To(Equal("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm # keep me\ndata:\n  value: bar\n"))
	g.Expect(results).To(HaveLen(1))
	g.Expect(results[0].Stderr).To(Equal("working\n"))
}

func TestExecEvaluator_execFunctionRunsOnlyWhenListed(t *testing.T) {
	g := NewWithT(t)
	bin := script(t, "cat")
	opts := func(ev ExecEvaluator) render.Options {
		return render.Options{Evaluator: func(kptfile.Function) (render.Evaluator, error) { return ev, nil }}
	}
	_, _, err := render.Render(context.Background(), execPackage("exec: ./my-fn"), opts(ExecEvaluator{}))
	g.Expect(err).To(MatchError(ErrExecNotAllowed))

	_, _, err = render.Render(context.Background(), execPackage("exec: ./my-fn"), opts(ExecEvaluator{Binaries: map[string]string{"./my-fn": bin}}))
	g.Expect(err).NotTo(HaveOccurred())
}

func TestExecEvaluator_nonZeroExit_isFunctionErrorWithExitCodeAndStderrTail(t *testing.T) {
	g := NewWithT(t)
	ev := ExecEvaluator{Binaries: map[string]string{"bad": script(t, "head -c 10000 /dev/zero | tr '\\0' x >&2\necho the real reason >&2\nexit 3")}}
	rl := &framework.ResourceList{Items: []*yaml.RNode{yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")}}
	err := ev.Evaluate(context.Background(), kptfile.Function{Image: "bad"}, rl)
	var fe *render.FunctionError
	g.Expect(errors.As(err, &fe)).To(BeTrue())
	g.Expect(fe.ExitCode).To(Equal(3))
	g.Expect(len(fe.Stderr)).To(BeNumerically("<=", maxStderr+len("…")))
	g.Expect(fe.Stderr).To(HaveSuffix("the real reason\n"))
}

func TestExecEvaluator_reportsResultsOfTheOutputResourceList(t *testing.T) {
	g := NewWithT(t)
	ev := ExecEvaluator{Binaries: map[string]string{"validate": script(t, `cat >/dev/null
cat <<'EOF'
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items: []
results:
  - message: replicas must be set
    severity: error
EOF
exit 1`)}}
	rl := &framework.ResourceList{}
	err := ev.Evaluate(context.Background(), kptfile.Function{Image: "validate"}, rl)
	var fe *render.FunctionError
	g.Expect(errors.As(err, &fe)).To(BeTrue())
	g.Expect(fe.Results).To(HaveLen(1))
	g.Expect(fe.Results[0].Message).To(Equal("replicas must be set"))
	g.Expect(fe.Results[0].Severity).To(Equal(framework.Error))
}

func TestExecEvaluator_timeout_wrapsErrTimeout(t *testing.T) {
	g := NewWithT(t)
	ev := ExecEvaluator{Binaries: map[string]string{"slow": script(t, "exec sleep 10")}, Timeout: 100 * time.Millisecond}
	start := time.Now()
	err := ev.Evaluate(context.Background(), kptfile.Function{Image: "slow"}, &framework.ResourceList{})
	g.Expect(err).To(MatchError(render.ErrTimeout))
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
}

func TestExecEvaluator_acceptsResultsWrappedAsOlderKyamlFunctionsWriteThem(t *testing.T) {
	g := NewWithT(t)
	ev := ExecEvaluator{Binaries: map[string]string{"apply-setters": script(t, `cat >/dev/null
cat <<'EOF'
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items: []
results:
  name: apply-setters
  items:
  - message: set field value to "foo"
    severity: info
EOF`)}}
	rl := &framework.ResourceList{}
	g.Expect(ev.Evaluate(context.Background(), kptfile.Function{Image: "apply-setters"}, rl)).To(Succeed())
	g.Expect(rl.Results).To(HaveLen(1))
	g.Expect(rl.Results[0].Message).To(Equal(`set field value to "foo"`))
}
