package fn

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

func TestLocalEvaluator_imageNotBuiltInWithoutARuntime_namesTheImage(t *testing.T) {
	g := NewWithT(t)
	_, err := LocalEvaluator{Runtime: "kpo-no-such-runtime"}.Evaluator(kptfile.Function{Image: "kubeconform"})
	g.Expect(err).To(MatchError(ErrNoContainerRuntime))
	g.Expect(err.Error()).To(ContainSubstring("image ghcr.io/kptdev/krm-functions-catalog/kubeconform:latest is not built into kpo"))
}

func TestLocalEvaluator_execNeedsAllowExec(t *testing.T) {
	g := NewWithT(t)
	_, err := LocalEvaluator{}.Evaluator(kptfile.Function{Exec: "sed -e s/a/b/"})
	g.Expect(err).To(MatchError(ErrExecNotAllowedLocally))
	ev, err := LocalEvaluator{AllowExec: true}.Evaluator(kptfile.Function{Exec: "sed -e s/a/b/"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ev).NotTo(BeNil())
}

func TestSplitCommand_quotesAsAShell(t *testing.T) {
	g := NewWithT(t)
	words, err := SplitCommand(`sed -e 's/foo/bar/' "a \"b\"" c\ d`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(words).To(HaveExactElements("sed", "-e", "s/foo/bar/", `a "b"`, "c d"))
	_, err = SplitCommand(`echo 'open`)
	g.Expect(err).To(HaveOccurred())
}

// The image tag picks the built-in's semantics: apply-replacements v0.1.1 skips a target field
// that is absent, later versions fail on it.
func TestBuiltinEvaluator_applyReplacementsFollowsTheTaggedVersion(t *testing.T) {
	pkg := func(image string) map[string][]byte {
		return map[string][]byte{
			"Kptfile":           []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\npipeline:\n  mutators:\n    - image: " + image + "\n      configPath: replacements.yaml\n"),
			"replacements.yaml": []byte("apiVersion: fn.kpt.dev/v1alpha1\nkind: ApplyReplacements\nmetadata:\n  name: r\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nreplacements:\n- source: {kind: ConfigMap, name: src, fieldPath: data.v}\n  targets:\n  - select: {kind: ConfigMap}\n    reject: [{name: src}]\n    fieldPaths:\n    - data.v\n"),
			"cms.yaml":          []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: src\ndata:\n  v: new\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: has\ndata:\n  v: old\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lacks\n"),
		}
	}
	g := NewWithT(t)
	out, _, err := render.Render(context.Background(), pkg("gcr.io/kpt-fn/apply-replacements:v0.1.1"), render.Options{Evaluator: Builtin})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out["cms.yaml"])).To(ContainSubstring("name: has\ndata:\n  v: new\n"))
	g.Expect(string(out["cms.yaml"])).To(HaveSuffix("name: lacks\n"))
	_, _, err = render.Render(context.Background(), pkg("gcr.io/kpt-fn/apply-replacements:v0.1.3"), render.Options{Evaluator: Builtin})
	g.Expect(err).To(MatchError(ContainSubstring("unable to find field")))
}

func TestLocalEvaluator_runArgs_followKptsContainerFlags(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("KPO_TEST_TOKEN", "from-shell")
	args, err := LocalEvaluator{PullPolicy: "never"}.runArgs("example.com/fn:v1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(args).To(Equal([]string{"run", "--rm", "-i", "--network", "none", "--security-opt=no-new-privileges", "--pull", "never", "example.com/fn:v1"}),
		"no network, nothing mounted, nothing of the environment by default")

	args, err = LocalEvaluator{Container: ContainerOptions{
		Network: true, User: "1000:1000",
		Mounts: []string{"type=bind,src=/etc/ssl,dst=/ssl", "type=tmpfs,dst=/scratch,rw=true"},
		Env:    []string{"A=1", "KPO_TEST_TOKEN", "KPO_TEST_UNSET"},
	}}.runArgs("example.com/fn:v1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(args).To(Equal([]string{"run", "--rm", "-i", "--network", "host", "--security-opt=no-new-privileges",
		"--user", "1000:1000",
		"--mount", "type=bind,source=/etc/ssl,target=/ssl,readonly", "--mount", "type=tmpfs,target=/scratch",
		"-e", "A=1", "-e", "KPO_TEST_TOKEN=from-shell", "example.com/fn:v1"}))
}

func TestParseMount_refusesWhatKptRefuses(t *testing.T) {
	for spec, want := range map[string]string{
		"type=bind,dst=/data":                 "give src and dst",
		"type=host,src=/a,dst=/b":             "type must be bind, volume or tmpfs",
		"type=bind,src=/a,dst=/b,rw=yes":      "rw must be true or false",
		"type=bind,src=/a,dst=/b,propagation": `"propagation" is not key=value`,
		"type=volume,src=v,dst=/b,mode=x":     `unknown field "mode"`,
	} {
		_, err := ParseMount(spec)
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring(want)), spec)
	}
	got, err := ParseMount("type=volume,source=cache,destination=/cache,rw=true")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(got).To(Equal("type=volume,source=cache,target=/cache"))
}
