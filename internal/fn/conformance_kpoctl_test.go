package fn_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	goyaml "go.yaml.in/yaml/v3"

	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/kpoctl"
	"kpo.dev/kpo/internal/kpotest"
)

func init() { fn.SetOutOfPlace(runThroughKpoctl) }

// kpoctlCaseConfig is the part of a case's .expected/config.yaml the kpoctl runs check.
type kpoctlCaseConfig struct {
	ExitCode         int      `yaml:"exitCode"`
	StdErr           string   `yaml:"stdErr"`
	StdOut           string   `yaml:"stdOut"`
	StdErrStripLines []string `yaml:"stdErrStripLines"`
}

// runThroughKpoctl runs a conformance case as kpt's runner runs a case with an exec.sh: the
// script's commands (kpoctl in process) in a copy of the package, then the checks on exit
// code, stderr and stdout (substrings) and the package tree (input plus diff.patch).
func runThroughKpoctl(t *testing.T, dir string, script []string) (failures []string) {
	g := NewGomega(func(message string, _ ...int) { failures = append(failures, message) })
	var cfg kpoctlCaseConfig
	if data, err := os.ReadFile(filepath.Join(dir, ".expected", "config.yaml")); err == nil {
		if err := goyaml.Unmarshal(data, &cfg); err != nil {
			t.Fatalf("config.yaml: %v", err)
		}
	}
	input := kpotest.ReadTree(t, dir)
	expected := maps.Clone(input)
	if patch, err := os.ReadFile(filepath.Join(dir, ".expected", "diff.patch")); err == nil {
		expected, err = fn.ApplyGitDiff(input, string(patch))
		g.Expect(err).NotTo(HaveOccurred(), "applying diff.patch")
	}
	pkg := filepath.Join(t.TempDir(), filepath.Base(dir))
	for p, data := range input {
		dest := filepath.Join(pkg, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dest, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(pkg)
	results := t.TempDir()

	var stdout, stderr bytes.Buffer
	code := 0
	for _, line := range script {
		if dirName, ok := strings.CutPrefix(line, "mkdir "); ok {
			if err := os.Mkdir(dirName, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var in []byte
		for _, stage := range strings.Split(line, " | ") {
			args := strings.Fields(strings.ReplaceAll(stage, "${RESULTS}", results))
			stdout.Reset()
			code = kpoctl.Run(context.Background(), args, kpoctl.IOStreams{In: bytes.NewReader(in), Out: &stdout, ErrOut: &stderr})
			in = slices.Clone(stdout.Bytes())
		}
	}
	gotErr := stderr.String()
	for _, strip := range cfg.StdErrStripLines {
		gotErr = strings.ReplaceAll(gotErr, strip+"\n", "")
	}
	g.Expect(code).To(Equal(cfg.ExitCode), "exit code; stderr:\n%s", stderr.String())
	g.Expect(gotErr).To(ContainSubstring(cfg.StdErr), "stderr")
	g.Expect(stdout.String()).To(ContainSubstring(cfg.StdOut), "stdout")

	got := map[string][]byte{}
	err := filepath.WalkDir(pkg, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(pkg, p)
		data, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	g.Expect(slices.Sorted(maps.Keys(got))).To(Equal(slices.Sorted(maps.Keys(expected))), "the set of files")
	for p, want := range expected {
		g.Expect(string(got[p])).To(Equal(string(want)), "file %s", p)
	}
	return failures
}
