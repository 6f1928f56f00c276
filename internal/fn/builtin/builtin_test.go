package builtin

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

var updateGolden = flag.Bool("update", false, "rewrite the expected files of the golden tests")

// TestBuiltins_golden runs every case under testdata/<function>/<case>:
// config.yaml (the function config; absent means none), input.yaml (the
// resources), and then expected.yaml (the resources after the run),
// expected-results.yaml (the results, optional) and expected-error.txt (a
// substring of the error; absent means the run must succeed).
func TestBuiltins_golden(t *testing.T) {
	functions, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range functions {
		if fn.Name() == catalogDir {
			continue // TestBuiltins_catalogExamples
		}
		cases, err := os.ReadDir(filepath.Join("testdata", fn.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			dir := filepath.Join("testdata", fn.Name(), c.Name())
			t.Run(fn.Name()+"/"+c.Name(), func(t *testing.T) {
				runGoldenCase(t, fn.Name(), dir)
			})
		}
	}
}

// runGoldenCase runs the built-in for image (a bare function name, or an image reference whose
// tag the built-in gets through VersionSetter) over the case in dir.
func runGoldenCase(t *testing.T, image, dir string) {
	g := NewWithT(t)
	p, ok := Lookup(image)
	g.Expect(ok).To(BeTrue(), "no built-in %q", image)
	if v, ok := p.(VersionSetter); ok {
		v.SetVersion(ImageTag(image))
	}

	rl := &framework.ResourceList{}
	input, err := os.ReadFile(filepath.Join(dir, "input.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	rl.Items, err = (&kio.ByteReader{Reader: bytes.NewReader(input), OmitReaderAnnotations: true}).Read()
	g.Expect(err).NotTo(HaveOccurred())
	if config, err := os.ReadFile(filepath.Join(dir, "config.yaml")); err == nil {
		rl.FunctionConfig, err = yaml.Parse(string(config))
		g.Expect(err).NotTo(HaveOccurred())
	} else {
		rl.FunctionConfig = yaml.NewMapRNode(nil)
	}
	var stderr bytes.Buffer
	if s, ok := p.(StderrSetter); ok {
		s.SetStderr(&stderr)
	}

	runErr := p.Process(rl)

	wantErr := readOptional(t, filepath.Join(dir, "expected-error.txt"))
	if wantErr != "" {
		g.Expect(runErr).To(HaveOccurred())
		g.Expect(runErr.Error()).To(ContainSubstring(strings.TrimSpace(wantErr)))
		g.Expect(rl.Results).NotTo(BeEmpty(), "a failing function reports why in its results")
	} else {
		g.Expect(runErr).NotTo(HaveOccurred())
	}

	var out bytes.Buffer
	g.Expect((&kio.ByteWriter{Writer: &out}).Write(rl.Items)).To(Succeed())
	results := ""
	if len(rl.Results) > 0 {
		b, err := yaml.Marshal(rl.Results)
		g.Expect(err).NotTo(HaveOccurred())
		results = string(b)
	}

	compareGolden(t, filepath.Join(dir, "expected.yaml"), out.String(), wantErr == "")
	compareGolden(t, filepath.Join(dir, "expected-results.yaml"), results, false)
	compareGolden(t, filepath.Join(dir, "expected-stderr.txt"), stderr.String(), false)
}

// compareGolden compares got with a golden file. A missing file is an error
// only when required; -update rewrites files that exist or are required.
func compareGolden(t *testing.T, path, got string, required bool) {
	t.Helper()
	want, err := os.ReadFile(path)
	exists := err == nil
	if *updateGolden && (exists || required) {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !exists {
		if required {
			t.Fatalf("missing golden file %s", path)
		}
		return
	}
	NewWithT(t).Expect(got).To(Equal(string(want)), "differs from %s", path)
}

func readOptional(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLookup_resolvesImageNameRegardlessOfRegistryAndTag(t *testing.T) {
	for _, image := range []string{
		"gcr.io/kpt-fn/set-namespace:v0.4.1",
		"ghcr.io/kptdev/krm-functions-catalog/set-namespace:latest",
		"set-namespace",
		"set-namespace:latest",
		"localhost:5000/fns/set-namespace@sha256:0123456789abcdef",
		"ghcr.io/kptdev/krm-functions-catalog/set-namespace:v0.4@sha256:0123",
	} {
		t.Run(image, func(t *testing.T) {
			g := NewWithT(t)
			p, ok := Lookup(image)
			g.Expect(ok).To(BeTrue())
			g.Expect(p).To(BeAssignableToTypeOf(&SetNamespace{}))
		})
	}
}

func TestLookup_unknownImageIsNotFound(t *testing.T) {
	g := NewWithT(t)
	_, ok := Lookup("ghcr.io/kptdev/krm-functions-catalog/kubeconform:latest")
	g.Expect(ok).To(BeFalse())
	_, ok = Lookup("")
	g.Expect(ok).To(BeFalse())
}

func TestLookup_returnsFreshInstances(t *testing.T) {
	g := NewWithT(t)
	a, _ := Lookup("starlark")
	b, _ := Lookup("starlark")
	g.Expect(a).NotTo(BeIdenticalTo(b))
}

func TestNames_listsEveryBuiltinSorted(t *testing.T) {
	NewWithT(t).Expect(Names()).To(Equal([]string{
		"apply-replacements", "apply-setters", "ensure-name-substring", "remove-local-config-resources",
		"search-replace", "set-annotations", "set-image", "set-labels", "set-namespace", "starlark",
	}))
}

func TestBuiltins_everyFunctionHasGoldenCases(t *testing.T) {
	g := NewWithT(t)
	for _, name := range Names() {
		cases, err := os.ReadDir(filepath.Join("testdata", name))
		g.Expect(err).NotTo(HaveOccurred(), name)
		g.Expect(len(cases)).To(BeNumerically(">=", 2), "%s needs a success and an error case", name)
	}
}

func TestImageName_stripsRegistryAndTag(t *testing.T) {
	for image, want := range map[string]string{
		"gcr.io/kpt-fn/set-namespace:v0.4.1":                        "set-namespace",
		"ghcr.io/kptdev/krm-functions-catalog/set-namespace:latest": "set-namespace",
		"set-labels":      "set-labels",
		"set-labels:v0.2": "set-labels",
		"localhost:5000/fns/starlark@sha256:abcdef":    "starlark",
		"localhost:5000/fns/starlark:v1@sha256:abcdef": "starlark",
	} {
		t.Run(image, func(t *testing.T) {
			NewWithT(t).Expect(ImageName(image)).To(Equal(want))
		})
	}
}
