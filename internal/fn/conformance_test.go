package fn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	goyaml "go.yaml.in/yaml/v3"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/kpotest"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// conformanceDir returns kpt's fn-render fixtures: $KPO_CONFORMANCE_DIR/fn-render, or the
// shared copy next to the repository.
func conformanceDir() string {
	if d := os.Getenv("KPO_CONFORMANCE_DIR"); d != "" {
		return filepath.Join(d, "fn-render")
	}
	return filepath.Join("..", "..", "..", "shared", "conformance", "kpt", "fn-render")
}

// caseConfig is the part of a case's .expected/config.yaml this test uses.
type caseConfig struct {
	ExitCode        int    `yaml:"exitCode"`
	StdErr          string `yaml:"stdErr"`
	AllowExec       bool   `yaml:"allowExec"`
	AllowWasm       bool   `yaml:"allowWasm"`
	ImagePullPolicy string `yaml:"imagePullPolicy"`
	Skip            bool   `yaml:"skip"`
}

// pipelineFunction is a loosely read Kptfile function: the fields that decide whether kpo
// can run a case, read without the strict decoder (which refuses old Kptfile schemas).
type pipelineFunction struct {
	Image string `yaml:"image"`
	Exec  string `yaml:"exec"`
	Tag   string `yaml:"tag"`
}

type conformanceSummary struct {
	passed  []string
	failed  []string
	skipped map[string][]string // reason → cases
}

// TestConformance_kptFnRender runs every case of kpt's own `kpt fn render` end-to-end
// fixtures (see shared/conformance/kpt/README.md) through render.Render with the built-in
// functions (Builtin), and compares the rendered tree with the case's input plus .expected/diff.patch.
// Cases that need something kpo does not provide are skipped with the reason.
func TestConformance_kptFnRender(t *testing.T) {
	root, err := filepath.Abs(conformanceDir()) // cases may change the working directory
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Skipf("kpt conformance fixtures not found at %s: set KPO_CONFORMANCE_DIR", root)
	}
	var cases []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".expected" {
			rel, err := filepath.Rel(root, filepath.Dir(p))
			if err != nil {
				return err
			}
			cases = append(cases, filepath.ToSlash(rel))
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(cases)

	sum := &conformanceSummary{skipped: map[string][]string{}}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			reason := ""
			defer func() {
				switch {
				case t.Skipped():
					sum.skipped[reason] = append(sum.skipped[reason], name)
				case t.Failed():
					sum.failed = append(sum.failed, name)
				default:
					sum.passed = append(sum.passed, name)
				}
			}()
			dir := filepath.Join(root, filepath.FromSlash(name))
			reason = skipReason(t, dir)
			if reason != "" {
				t.Skip(reason)
			}
			if scripts, ok := recreatedScripts[name]; ok {
				// The exec path is relative to the working directory, as kpt runs it.
				wd := t.TempDir()
				for p, body := range scripts {
					if err := os.MkdirAll(filepath.Join(wd, filepath.Dir(p)), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(wd, p), []byte(body), 0o755); err != nil { //nolint:gosec // G306: an executable test script
						t.Fatal(err)
					}
				}
				t.Chdir(wd)
			}
			var failures []string
			if script, ok := outOfPlaceScripts[name]; ok {
				failures = outOfPlaceRunner(t, dir, script)
			} else {
				failures = runConformanceCase(t, dir)
			}
			if len(failures) == 0 {
				if gap, ok := knownBuiltinGaps[name]; ok {
					t.Logf("known built-in gap no longer reproduces, remove it from knownBuiltinGaps: %s", gap)
				}
				return
			}
			if gap, ok := knownBuiltinGaps[name]; ok {
				reason = gap
				t.Skipf("%s\n%s", gap, strings.Join(failures, "\n"))
			}
			for _, f := range failures {
				t.Error(f)
			}
		})
	}

	skippedTotal := 0
	var lines []string
	for _, reason := range slices.Sorted(maps.Keys(sum.skipped)) {
		skippedTotal += len(sum.skipped[reason])
		lines = append(lines, fmt.Sprintf("  %d × %s: %s", len(sum.skipped[reason]), reason, strings.Join(sum.skipped[reason], ", ")))
	}
	t.Logf("kpt fn render conformance: %d passed, %d skipped, %d failed (of %d cases)\nskipped by reason:\n%s\nfailed: %s",
		len(sum.passed), skippedTotal, len(sum.failed), len(cases), strings.Join(lines, "\n"), strings.Join(sum.failed, ", "))
}

// outOfPlaceScripts are the commands of the cases whose .expected/exec.sh renders out of
// place (a directory, stdout, or a pipe into `kpt fn eval`), as the fixtures' README describes
// the omitted scripts; each command is a kpoctl command line run in the package directory,
// "|" piping one into the next. They run through kpoctl (outOfPlaceRunner, set by
// conformance_kpoctl_test.go). (The README lists two more exec.sh cases,
// basicpipeline-symlink and default-runtime, whose script amounts to a plain in-place render,
// so they run in process.)
var outOfPlaceScripts = map[string][]string{
	"basicpipeline-out-of-place":          {"fn render -o out"},
	"out-of-place-dir":                    {"fn render -o out"},
	"out-of-place-dir-exists-error":       {"mkdir out", "fn render -o out"},
	"out-of-place-stdout":                 {"fn render -o stdout"},
	"out-of-place-unwrap":                 {"fn render -o stdout --unwrap"},
	"out-of-place-fnchain-stdout":         {"fn render -o stdout | fn eval - --image set-annotations:latest -- foo=bar | fn eval - --image set-labels:latest -- tier=backend"},
	"out-of-place-fnchain-stdout-results": {"fn render -o stdout | fn eval - --image set-annotations:latest -- foo=bar | fn eval - --image set-labels:latest --results-dir ${RESULTS} -- tier=backend"},
	"out-of-place-fnchain-unwrap":         {"fn render -o stdout | fn eval - --image set-annotations:latest -- foo=bar | fn eval - --image set-labels:latest --unwrap -- tier=backend"},
}

// recreatedScripts are exec functions the fixtures leave out (no shell scripts were copied),
// written again from what the case expects of them: exec-function-stderr's function.sh prints
// "Hello world 0!" to "Hello world 20!" on stderr and replaces foo with bar, as its expected
// stderr and diff.patch show. Paths are relative to the working directory the case runs in.
var recreatedScripts = map[string]map[string]string{
	"exec-function-stderr": {
		"testdata/fn-render/exec-function-stderr/function.sh": "#!/bin/sh\nfor i in $(seq 0 20); do echo \"Hello world $i!\" >&2; done\nsed -e 's/foo/bar/'\n",
	},
}

// outOfPlaceRunner runs a case of outOfPlaceScripts through kpoctl and returns the failed
// checks; nil skips those cases.
var outOfPlaceRunner func(t *testing.T, dir string, script []string) []string

// skipReason derives, by rule, why kpo cannot run a case ("" when it can).
func skipReason(t *testing.T, dir string) string {
	t.Helper()
	cfg := readCaseConfig(t, dir)
	exists := func(p string) bool { _, err := os.Stat(filepath.Join(dir, ".expected", p)); return err == nil }
	switch {
	case cfg.Skip:
		return "marked skip in its config.yaml"
	case outOfPlaceScripts[filepath.Base(dir)] != nil && outOfPlaceRunner == nil:
		return "renders out of place (`kpt fn render -o …` in the omitted .expected/exec.sh), which runs through kpoctl"
	case outOfPlaceScripts[filepath.Base(dir)] != nil:
		return ""
	case exists("exec.sh"):
		return "runs a custom command from .expected/exec.sh (left out of the fixtures; out-of-place output, symlinks or fn eval pipes)"
	case exists("setup.sh"):
		return "needs .expected/setup.sh (left out of the fixtures; it pulls images or sets up a runtime)"
	case cfg.AllowWasm:
		return "needs a WASM function runtime, which kpo does not have"
	}
	var fns []pipelineFunction
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != kptfile.FileName {
			return err
		}
		var kf struct {
			Pipeline struct {
				Mutators   []pipelineFunction `yaml:"mutators"`
				Validators []pipelineFunction `yaml:"validators"`
			} `yaml:"pipeline"`
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_ = goyaml.Unmarshal(data, &kf) // an unreadable Kptfile is what some cases test
		fns = append(fns, kf.Pipeline.Mutators...)
		fns = append(fns, kf.Pipeline.Validators...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range fns {
		switch {
		case fn.Exec != "":
			if argv, _ := SplitCommand(fn.Exec); len(argv) == 0 || (strings.HasSuffix(argv[0], ".sh") && recreatedScripts[filepath.Base(dir)] == nil) {
				return "needs an exec function (a local script), which the fixtures leave out"
			}
		case fn.Image != "":
			if _, ok := builtin.Lookup(fn.Image); !ok {
				return fmt.Sprintf("needs image %s which kpo does not build in", builtin.ImageName(fn.Image))
			}
		}
	}
	return ""
}

func readCaseConfig(t *testing.T, dir string) caseConfig {
	t.Helper()
	var cfg caseConfig
	data, err := os.ReadFile(filepath.Join(dir, ".expected", "config.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		return cfg
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := goyaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	return cfg
}

// knownBuiltinGaps are covered cases that fail because a built-in function does not yet
// behave exactly like its catalog image; render itself produces what kpt does. A gap that is
// fixed shows up in the log and the case counts as passed.
var knownBuiltinGaps = map[string]string{}

func init() {
	knownBuiltinGaps["krm-check-exclude-kustomize"] = "built-in set-labels labels only metadata of a kind-less kustomization.yaml, where the catalog image " +
		"also creates spec.selector and spec.selector.matchLabels in it (and drops a blank line of its head comment); it reports " +
		"`set 5 labels in total` where the catalog image reports 8"
}

// runConformanceCase renders one case and checks it against the expectations; it returns
// the failed checks.
func runConformanceCase(t *testing.T, dir string) (failures []string) {
	g := NewGomega(func(message string, _ ...int) { failures = append(failures, message) })
	cfg := readCaseConfig(t, dir)
	input := kpotest.ReadTree(t, dir)
	expected := maps.Clone(input)
	if patch, err := os.ReadFile(filepath.Join(dir, ".expected", "diff.patch")); err == nil {
		expected, err = applyGitDiff(input, string(patch))
		g.Expect(err).NotTo(HaveOccurred(), "applying diff.patch")
	}
	expectedKptfile := decodeLoosely(t, expected[kptfile.FileName])

	local := LocalEvaluator{AllowExec: cfg.AllowExec}
	out, results, err := render.Render(context.Background(), input, render.Options{Evaluator: local.Evaluator, ResolveTag: builtin.ResolveTag})
	if err != nil {
		t.Logf("render error: %v", err)
	}

	if cfg.ExitCode != 0 {
		g.Expect(err).To(HaveOccurred(), "kpt exits %d: rendering must fail", cfg.ExitCode)
	} else {
		g.Expect(err).NotTo(HaveOccurred())
	}
	checkRenderStatus(g, expectedKptfile, results)
	// The root Kptfile with the status kpoctl fn render (and the server) writes into it must be
	// kpt's, byte for byte; when kpt cannot read the package it writes none.
	kf := input[kptfile.FileName]
	if out != nil {
		kf = out[kptfile.FileName]
	}
	withStatus := kf
	if render.WritesStatus(err) {
		var serr error
		withStatus, serr = render.SetRenderStatus(kf, results, err, "")
		g.Expect(serr).NotTo(HaveOccurred(), "writing the Kptfile status")
	}
	g.Expect(string(withStatus)).To(Equal(string(expected[kptfile.FileName])), "root Kptfile with its status")

	if out == nil {
		// Render returns nothing on failure; kpt then changes only the root Kptfile (its
		// status). Check that this is all the expectation holds.
		for p, data := range expected {
			if p == kptfile.FileName || strings.HasPrefix(p, ".expected/") {
				continue
			}
			g.Expect(string(input[p])).To(Equal(string(data)), "kpt changed %s on failure, kpo returned nothing", p)
		}
		return failures
	}
	g.Expect(slices.Sorted(maps.Keys(out))).To(Equal(slices.Sorted(maps.Keys(expected))), "the set of files")
	for p, want := range expected {
		if p == kptfile.FileName {
			// kpt rewrites the root Kptfile to add its status block (re-encoding it from its
			// Go type); kpo reports results separately, so compare the content without status.
			got := decodeLoosely(t, out[p])
			delete(expectedKptfile, "status")
			g.Expect(got).To(Equal(expectedKptfile), "root Kptfile (without status)\n--- got:\n%s", out[p])
			continue
		}
		g.Expect(string(out[p])).To(Equal(string(want)), "file %s", p)
	}
	return failures
}

// decodeLoosely parses YAML into plain maps for a semantic comparison.
func decodeLoosely(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	_ = goyaml.Unmarshal(data, &m)
	return m
}

// checkRenderStatus compares the results of the functions that ran with the renderStatus
// kpt wrote into the root Kptfile: same steps in the same order (mutators, then
// validators), same image name, exit code, results and stderr.
func checkRenderStatus(g Gomega, kf map[string]any, results []render.Result) {
	status, _ := kf["status"].(map[string]any)
	rs, _ := status["renderStatus"].(map[string]any)
	if rs == nil {
		return
	}
	type step struct {
		Image    string
		ExitCode int
		Stderr   string
		Results  []string
	}
	want := func(key string) []step {
		var steps []step
		list, _ := rs[key].([]any)
		for _, s := range list {
			m, _ := s.(map[string]any)
			st := step{Image: builtin.ImageName(fmt.Sprint(m["image"]))}
			if exec, ok := m["exec"].(string); ok {
				st.Image = exec
			}
			st.ExitCode, _ = m["exitCode"].(int)
			st.Stderr, _ = m["stderr"].(string)
			rl, _ := m["results"].([]any)
			for _, r := range rl {
				rm, _ := r.(map[string]any)
				sev, _ := rm["severity"].(string)
				st.Results = append(st.Results, fmt.Sprintf("[%s] %v", sev, rm["message"]))
			}
			steps = append(steps, st)
		}
		return steps
	}
	got := func(validators bool) []step {
		var steps []step
		for _, r := range results {
			if r.Validator != validators {
				continue
			}
			st := step{Image: builtin.ImageName(r.Image), ExitCode: r.ExitCode, Stderr: strings.TrimSpace(r.Stderr)}
			if r.Function.Exec != "" {
				st.Image = r.Function.Exec
			}
			for _, item := range r.Results {
				st.Results = append(st.Results, fmt.Sprintf("[%v] %v", item.Severity, item.Message))
			}
			steps = append(steps, st)
		}
		return steps
	}
	for _, c := range []struct {
		key        string
		validators bool
	}{{"mutationSteps", false}, {"validationSteps", true}} {
		w, gt := want(c.key), got(c.validators)
		for i := range w {
			w[i].Stderr = strings.TrimSpace(w[i].Stderr)
		}
		if !reflect.DeepEqual(w, gt) {
			g.Expect(gt).To(Equal(w), "renderStatus.%s", c.key)
		}
	}
}
