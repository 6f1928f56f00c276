package builtin

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// catalogDir holds kpo's own reproductions of the catalog's examples (examples/<fn>-<case>) and of
// its functions' tests: testdata/catalog/<example>/function.yaml names the image, with the catalog
// version the example pins; the other files are those of TestBuiltins_golden. See its README.md.
const catalogDir = "catalog"

// catalogVerified are the built-ins whose declared versions (see versions) rest on the catalog
// examples under testdata/catalog: each declared version is pinned by at least one example.
var catalogVerified = []string{
	"apply-setters", "ensure-name-substring", "remove-local-config-resources",
	"search-replace", "set-annotations", "set-image",
}

// catalogImage reads the image an example runs.
func catalogImage(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "function.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var fn struct {
		Image string `yaml:"image"`
	}
	if err := yaml.Unmarshal(b, &fn); err != nil || fn.Image == "" {
		t.Fatalf("%s/function.yaml needs an `image:` (%v)", dir, err)
	}
	return fn.Image
}

// catalogExamples returns the example directories, sorted.
func catalogExamples(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", catalogDir))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("testdata", catalogDir, e.Name()))
		}
	}
	return dirs
}

// TestBuiltins_catalogExamples runs every reproduced catalog example with the built-in for its
// image at the version the example pins, and compares resources and results exactly.
func TestBuiltins_catalogExamples(t *testing.T) {
	for _, dir := range catalogExamples(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			image := catalogImage(t, dir)
			NewWithT(t).Expect(Versions(image)).To(ContainElement(ImageTag(image)),
				"%s pins %s: declare the version it verifies in versions", dir, image)
			runGoldenCase(t, image, dir)
		})
	}
}

// TestVersions_catalogVerifiedVersionsArePinnedByAnExample keeps the declared versions of the
// catalog-verified built-ins honest: every one of them has an example that runs it.
func TestVersions_catalogVerifiedVersionsArePinnedByAnExample(t *testing.T) {
	g := NewWithT(t)
	pinned := map[string][]string{}
	for _, dir := range catalogExamples(t) {
		image := catalogImage(t, dir)
		pinned[ImageName(image)] = append(pinned[ImageName(image)], ImageTag(image))
	}
	for _, name := range catalogVerified {
		g.Expect(Versions(name)).NotTo(BeEmpty(), "%s declares no verified version", name)
		for _, v := range Versions(name) {
			g.Expect(slices.Contains(pinned[name], v)).To(BeTrue(),
				"%s %s is declared verified but no example under testdata/catalog pins it (pinned: %s)",
				name, v, strings.Join(pinned[name], ", "))
		}
	}
}

// A message kept exactly as the catalog's (catalogConfigError) still marks a function config error.
func TestSetAnnotations_refusedConfigIsAFunctionConfigError(t *testing.T) {
	g := NewWithT(t)
	rl := &framework.ResourceList{FunctionConfig: yaml.NewMapRNode(nil)}
	err := (&SetAnnotations{}).Process(rl)
	g.Expect(err).To(MatchError(ErrFunctionConfig))
	g.Expect(rl.Results).To(HaveLen(1))
	g.Expect(rl.Results[0].Message).To(Equal("failed to configure function: `functionConfig` must be a `ConfigMap` or `SetAnnotations`"))
}
