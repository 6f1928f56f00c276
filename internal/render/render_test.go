package render

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/kpotest"
)

var update = flag.Bool("update", false, "rewrite the expected/ trees of the golden tests from the actual output")

func writeTree(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// formatResults renders results one per line: package, image, kind of step, exit code,
// then each result message.
func formatResults(results []Result) string {
	var b strings.Builder
	for _, r := range results {
		step := "mutator"
		if r.Validator {
			step = "validator"
		}
		fmt.Fprintf(&b, "%s %s %s exit=%d", r.Package, r.Image, step, r.ExitCode)
		if r.Stderr != "" {
			fmt.Fprintf(&b, " stderr=%q", r.Stderr)
		}
		b.WriteString("\n")
		for _, item := range r.Results {
			fmt.Fprintf(&b, "  [%s] %s\n", item.Severity, item.Message)
		}
	}
	return b.String()
}

// TestRender_golden renders every testdata/<case>/input with the test evaluators and
// compares, byte for byte, the files with testdata/<case>/expected (absent when the render
// must fail and return nothing), the error with testdata/<case>/error.txt (a substring), and
// the results with testdata/<case>/results.txt. Run with -update to rewrite the expectations.
func TestRender_golden(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			g := NewWithT(t)
			dir := filepath.Join("testdata", c.Name())
			out, results, err := Render(context.Background(), kpotest.ReadTree(t, filepath.Join(dir, "input")), Options{Evaluator: testEvaluator})

			errFile := filepath.Join(dir, "error.txt")
			resultsFile := filepath.Join(dir, "results.txt")
			expectedDir := filepath.Join(dir, "expected")
			if *update {
				if err != nil {
					g.Expect(os.WriteFile(errFile, []byte(err.Error()+"\n"), 0o644)).To(Succeed())
				} else {
					_ = os.Remove(errFile)
				}
				g.Expect(os.WriteFile(resultsFile, []byte(formatResults(results)), 0o644)).To(Succeed())
				if out != nil {
					writeTree(t, expectedDir, out)
				} else {
					g.Expect(os.RemoveAll(expectedDir)).To(Succeed())
				}
				return
			}

			if want, rerr := os.ReadFile(errFile); rerr == nil {
				g.Expect(err).To(HaveOccurred())
				g.Expect(err.Error()).To(ContainSubstring(strings.TrimSpace(string(want))))
			} else {
				g.Expect(err).NotTo(HaveOccurred())
			}
			if want, rerr := os.ReadFile(resultsFile); rerr == nil {
				g.Expect(formatResults(results)).To(Equal(string(want)))
			}
			if _, serr := os.Stat(expectedDir); serr != nil {
				g.Expect(out).To(BeNil(), "a failed render returns no files")
				return
			}
			want := kpotest.ReadTree(t, expectedDir)
			g.Expect(slices.Sorted(maps.Keys(out))).To(Equal(slices.Sorted(maps.Keys(want))))
			for p, data := range want {
				g.Expect(string(out[p])).To(Equal(string(data)), "file %s", p)
			}
		})
	}
}

func TestRender_missingKptfile_isNotAPackage(t *testing.T) {
	g := NewWithT(t)
	_, _, err := Render(context.Background(), map[string][]byte{"a.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")}, Options{Evaluator: testEvaluator})
	g.Expect(err).To(MatchError(ErrNotAPackage))
}

func TestRender_invalidKptfile_wrapsErrInvalidKptfileAndNamesTheFile(t *testing.T) {
	g := NewWithT(t)
	files := map[string][]byte{
		"Kptfile":     []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: root\n"),
		"sub/Kptfile": []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: sub\npipeline:\n  mutators:\n    - image: add-label\n      oops: true\n"),
	}
	_, _, err := Render(context.Background(), files, Options{Evaluator: testEvaluator})
	g.Expect(err).To(MatchError(ErrInvalidKptfile))
	g.Expect(err.Error()).To(ContainSubstring("sub/Kptfile"))
	g.Expect(err.Error()).To(ContainSubstring(`"oops"`))
}

func TestRender_functionFailure_returnsFunctionErrorWithPackageAndNoFiles(t *testing.T) {
	g := NewWithT(t)
	files := map[string][]byte{
		"Kptfile":     []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: root\n"),
		"sub/Kptfile": []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: sub\npipeline:\n  mutators:\n    - image: add-label\n      configMap:\n        a: b\n    - image: example.com/crash:v1\n"),
	}
	out, results, err := Render(context.Background(), files, Options{Evaluator: testEvaluator})
	g.Expect(out).To(BeNil())
	var fe *FunctionError
	g.Expect(errors.As(err, &fe)).To(BeTrue())
	g.Expect(fe.Package).To(Equal("sub"))
	g.Expect(fe.Image).To(Equal("example.com/crash:v1"))
	g.Expect(fe.ExitCode).To(Equal(2))
	g.Expect(fe.Stderr).To(Equal("boom"))
	g.Expect(err.Error()).To(ContainSubstring(`function "example.com/crash:v1" of package "sub" failed with exit code 2: crashed`))
	g.Expect(results).To(HaveLen(2))
	g.Expect(results[1].ExitCode).To(Equal(2))
}

func TestRender_noEvaluator_failsNamingTheImage(t *testing.T) {
	g := NewWithT(t)
	files := map[string][]byte{
		"Kptfile": []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: root\npipeline:\n  mutators:\n    - image: gcr.io/kpt-fn/set-namespace:v0.4.1\n"),
	}
	_, _, err := Render(context.Background(), files, Options{})
	g.Expect(err).To(MatchError(ContainSubstring("no evaluator for image gcr.io/kpt-fn/set-namespace:v0.4.1")))
}

func TestRender_pathOutsidePackage_isRefused(t *testing.T) {
	g := NewWithT(t)
	_, _, err := Render(context.Background(), map[string][]byte{"../Kptfile": nil}, Options{})
	g.Expect(err).To(MatchError(ContainSubstring("not a path inside the package")))
}

func TestRender_doesNotModifyItsInput(t *testing.T) {
	g := NewWithT(t)
	in := kpotest.ReadTree(t, filepath.Join("testdata", "basic-mutators", "input"))
	before := map[string]string{}
	for p, d := range in {
		before[p] = string(d)
	}
	_, _, err := Render(context.Background(), in, Options{Evaluator: testEvaluator})
	g.Expect(err).NotTo(HaveOccurred())
	for p, d := range in {
		g.Expect(string(d)).To(Equal(before[p]))
	}
}
