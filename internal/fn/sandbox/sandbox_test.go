package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/fn/sandbox"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// kpoFn is the kpo-fn binary the tests run, built once.
var kpoFn string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "kpo-fn-sandbox-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		kpoFn = filepath.Join(dir, sandbox.BinaryName)
		if out, err := exec.Command("go", "build", "-o", kpoFn, "kpo.dev/kpo/cmd/kpo-fn").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building kpo-fn: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// hostileScript takes GBs in one operation, which starlark's step limit cannot see.
const hostileScript = `print("allocating")
s = "b" * 400000000
t = s + s + s
`

var starlarkFn = kptfile.Function{Image: "ghcr.io/kptdev/krm-functions-catalog/starlark:v0.5"}

// starlarkList is a ResourceList with one ConfigMap and a StarlarkRun running source.
func starlarkList(source string) *framework.ResourceList {
	fc := yaml.MustParse("apiVersion: fn.kpt.dev/v1alpha1\nkind: StarlarkRun\nmetadata:\n  name: script\nsource: \"\"\n")
	_ = fc.PipeE(yaml.SetField("source", yaml.NewStringRNode(source)))
	return &framework.ResourceList{FunctionConfig: fc, Items: []*yaml.RNode{
		yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings # kept\ndata:\n  replicas: \"3\"\n"),
	}}
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

func TestEvaluator_hostileScript_failsOnItsMemoryBudgetAndSparesTheCaller(t *testing.T) {
	g := NewWithT(t)
	e := &sandbox.Evaluator{Binary: kpoFn} // the default budget, 512 MiB
	rl := starlarkList(hostileScript)
	before := peakRSS(t)

	err := e.Evaluate(context.Background(), starlarkFn, rl)

	g.Expect(err).To(MatchError(ContainSubstring("function starlark exceeded its memory budget of 512 MiB")))
	var fe *render.FunctionError
	g.Expect(errors.As(err, &fe)).To(BeTrue(), "a failed function: %v", err)
	g.Expect(fe.Stderr).To(Equal("allocating\n"), "the script's own output, without the crash report")
	var me *sandbox.MemoryError
	g.Expect(errors.As(err, &me)).To(BeTrue())
	g.Expect(me.Budget).To(Equal(int64(512 << 20)))
	g.Expect(rl.Results).To(ContainElement(HaveField("Message", "function starlark exceeded its memory budget of 512 MiB")))
	g.Expect(peakRSS(t)-before).To(BeNumerically("<", 100<<20), "the caller's memory did not grow")
}

func TestEvaluator_scripts_runAsInProcess(t *testing.T) {
	for _, source := range []string{
		// Edits, keeping comments.
		`for r in ctx.resource_list["items"]:
  r["data"]["replicas"] = "5"
  r["metadata"]["labels"] = {"b": "2", "a": "1"}
print("edited")`,
		// Generates, with the helper library.
		`load("krmfn.star", "krmfn")
namespaces = []
for r in ctx.resource_list["items"]:
  if krmfn.match_gvk(r, "v1", "ConfigMap") and krmfn.match_name(r, "settings"):
    namespaces.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n" + r["data"]["replicas"]}})
ctx.resource_list["items"].extend(namespaces)`,
	} {
		t.Run(strings.SplitN(source, "\n", 2)[0], func(t *testing.T) {
			g := NewWithT(t)
			want := starlarkList(source)
			p, _ := builtin.Lookup(starlarkFn.Image)
			var wantStderr bytes.Buffer
			p.(builtin.StderrSetter).SetStderr(&wantStderr)
			g.Expect(p.Process(want)).To(Succeed())

			got := starlarkList(source)
			var stderr bytes.Buffer
			err := (&sandbox.Evaluator{Binary: kpoFn}).Evaluate(render.WithStderr(context.Background(), &stderr), starlarkFn, got)

			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(itemsYAML(t, got.Items)).To(Equal(itemsYAML(t, want.Items)))
			g.Expect(got.Results).To(Equal(want.Results))
			// Both evaluators report it without the final newline, as kpt records the catalog's.
			g.Expect(stderr.String()).To(Equal(strings.TrimSuffix(wantStderr.String(), "\n")))
		})
	}
}

func itemsYAML(t *testing.T, items []*yaml.RNode) string {
	t.Helper()
	var b bytes.Buffer
	if err := (&kio.ByteWriter{Writer: &b}).Write(items); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestEvaluator_failingScript_isAFunctionErrorWithItsResults(t *testing.T) {
	g := NewWithT(t)
	rl := starlarkList(`print("checking")
fail("replicas must be set")`)

	err := (&sandbox.Evaluator{Binary: kpoFn}).Evaluate(context.Background(), starlarkFn, rl)

	var fe *render.FunctionError
	g.Expect(errors.As(err, &fe)).To(BeTrue(), "a failed function: %v", err)
	g.Expect(fe.ExitCode).To(Equal(1))
	g.Expect(fe.Stderr).To(ContainSubstring("checking\n"))
	g.Expect(err).To(MatchError(ContainSubstring("fail: replicas must be set")))
	g.Expect(rl.Results).To(ContainElement(HaveField("Severity", framework.Error)))
	g.Expect(errors.As(err, new(*sandbox.MemoryError))).To(BeFalse())
}

func TestEvaluator_endlessLoop_stopsAtItsTimeBudget(t *testing.T) {
	g := NewWithT(t)
	rl := starlarkList("while True:\n  pass\n")
	e := &sandbox.Evaluator{Binary: kpoFn, Timeout: 300 * time.Millisecond}

	start := time.Now()
	err := e.Evaluate(context.Background(), starlarkFn, rl)

	g.Expect(err).To(MatchError(ContainSubstring("was stopped after running for 300ms")))
	g.Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second))
}

func TestEvaluator_processPastItsTimeBudget_isKilledWithItsChildren(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// A function that ignores its budget and leaves a grandchild behind.
	bin := filepath.Join(dir, "hang")
	g.Expect(os.WriteFile(bin, []byte("#!/bin/sh\nsleep 300 &\necho $! > "+pidFile+"\nwait\n"), 0o755)).To(Succeed())
	e := &sandbox.Evaluator{Binary: bin, Timeout: 100 * time.Millisecond}

	err := e.Evaluate(context.Background(), starlarkFn, starlarkList("pass"))

	g.Expect(errors.Is(err, render.ErrTimeout)).To(BeTrue(), "got %v", err)
	g.Expect(err).To(MatchError(ContainSubstring("function starlark ran longer than its time budget of 100ms")))
	pid, err := os.ReadFile(pidFile)
	g.Expect(err).NotTo(HaveOccurred())
	n, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() bool { return running(n) }).Should(BeFalse(), "the grandchild is gone")
}

// running reports whether process pid exists and is not a zombie (which it stays when
// nothing reaps orphans).
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestEvaluator_outputPastItsLimit_fails(t *testing.T) {
	g := NewWithT(t)
	rl := starlarkList(`ctx.resource_list["items"][0]["data"]["big"] = "x" * 100000`)

	err := (&sandbox.Evaluator{Binary: kpoFn, MaxOutput: 64 << 10}).Evaluate(context.Background(), starlarkFn, rl)

	g.Expect(err).To(MatchError(ContainSubstring("function starlark wrote more than 64 KiB of output")))
}

func TestEvaluator_cancelledWhileWaitingForASlot_returnsTheContextError(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "slow")
	g.Expect(os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 300\n"), 0o755)).To(Succeed())
	e := &sandbox.Evaluator{Binary: bin, Parallelism: 1, Timeout: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Evaluate(ctx, starlarkFn, starlarkList("pass")) }() // holds the only slot

	waitCtx, waitCancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer waitCancel()
	err := e.Evaluate(waitCtx, starlarkFn, starlarkList("pass"))

	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	cancel()
	g.Eventually(done).Should(Receive(MatchError(context.Canceled)))
}

func TestEvaluator_runs_onlyUserCodeBuiltinsByDefault(t *testing.T) {
	g := NewWithT(t)
	e := &sandbox.Evaluator{}
	g.Expect(e.Runs("gcr.io/kpt-fn/starlark:v0.4.3")).To(BeTrue())
	g.Expect(e.Runs("starlark")).To(BeTrue())
	g.Expect(e.Runs("gcr.io/kpt-fn/set-namespace:v0.4.1")).To(BeFalse())
	g.Expect(e.Runs("")).To(BeFalse())
	g.Expect((&sandbox.Evaluator{Functions: []string{"set-labels"}}).Runs("set-labels:v1")).To(BeTrue())
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		512 << 20: "512 MiB", 2 << 30: "2 GiB", 1536 << 20: "1536 MiB", 64 << 10: "64 KiB", 1000: "1000 bytes", 0: "0 bytes",
	} {
		NewWithT(t).Expect(sandbox.FormatBytes(n)).To(Equal(want))
	}
}
