package builtin

import (
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// A replacement whose target field is absent from one of the selected resources: catalog
// v0.1.1 (kustomize api v0.10.1) skips that resource, v0.1.2 and later fail.
func TestApplyReplacements_absentTargetField_skippedUpToV011_failsAfter(t *testing.T) {
	resources := func() []*yaml.RNode {
		return []*yaml.RNode{
			yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: source\ndata:\n  image: nginx:1.25\n"),
			yaml.MustParse("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: with-containers\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: old\n"),
			yaml.MustParse("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: without-containers\nspec:\n  replicas: 1\n"),
		}
	}
	config := yaml.MustParse(`apiVersion: fn.kpt.dev/v1alpha1
kind: ApplyReplacements
metadata:
  name: images
replacements:
- source: {kind: ConfigMap, name: source, fieldPath: data.image}
  targets:
  - select: {kind: Deployment}
    fieldPaths:
    - spec.template.spec.containers.[name=app].image
`)
	for _, tag := range []string{"v0.1.1", "v0.1.0"} {
		g := NewWithT(t)
		f := &ApplyReplacements{}
		f.SetVersion(tag)
		rl := &framework.ResourceList{Items: resources(), FunctionConfig: config.Copy()}
		g.Expect(f.Process(rl)).To(Succeed(), tag)
		g.Expect(rl.Items[1].MustString()).To(ContainSubstring("image: nginx:1.25"))
		g.Expect(rl.Items[2].MustString()).To(Equal("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: without-containers\nspec:\n  replicas: 1\n"))
		g.Expect(rl.Items[2].GetAnnotations()).NotTo(HaveKey(probeAnnotation))
	}
	for _, tag := range []string{"v0.1.2", "v0.1.3", "latest", ""} {
		g := NewWithT(t)
		f := &ApplyReplacements{}
		f.SetVersion(tag)
		rl := &framework.ResourceList{Items: resources(), FunctionConfig: config.Copy()}
		g.Expect(f.Process(rl)).To(MatchError(ContainSubstring("unable to find field")), tag)
	}
}

func TestImageTag(t *testing.T) {
	g := NewWithT(t)
	g.Expect(ImageTag("gcr.io/kpt-fn/apply-replacements:v0.1.1")).To(Equal("v0.1.1"))
	g.Expect(ImageTag("localhost:5000/fns/apply-replacements")).To(Equal(""))
	g.Expect(ImageTag("apply-replacements:v0.1@sha256:abc")).To(Equal("v0.1"))
}
