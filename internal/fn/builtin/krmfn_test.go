package builtin

import (
	"testing"

	. "github.com/onsi/gomega"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// krmfnCall evaluates one expression over the krmfn module and the resources deployment,
// configMap and bare (a dict without apiVersion, kind or metadata).
func krmfnCall(expr string) (starlark.Value, error) {
	deployment, _ := yamlToStarlark(yaml.MustParse("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\n").YNode())
	configMap, _ := yamlToStarlark(yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n").YNode())
	odd, _ := yamlToStarlark(yaml.MustParse("apiVersion: 1\nkind: [a]\nmetadata:\n  name: 7\n").YNode())
	env := starlark.StringDict{"krmfn": krmfnModule, "deployment": deployment, "config_map": configMap, "bare": starlark.NewDict(0), "odd": odd}
	return starlark.EvalOptions(&syntax.FileOptions{}, &starlark.Thread{Name: "test"}, "expr", expr, env)
}

func TestKrmfn_helpers(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want bool
	}{
		// match_gvk: exact apiVersion and kind; an empty one matches any.
		{`krmfn.match_gvk(deployment, "apps/v1", "Deployment")`, true},
		{`krmfn.match_gvk(config_map, "v1", "ConfigMap")`, true},
		{`krmfn.match_gvk(deployment, "apps/v1beta1", "Deployment")`, false},
		{`krmfn.match_gvk(deployment, "v1", "Deployment")`, false},
		{`krmfn.match_gvk(deployment, "apps/v1", "StatefulSet")`, false},
		{`krmfn.match_gvk(deployment, "", "Deployment")`, true},
		{`krmfn.match_gvk(deployment, "apps/v1", "")`, true},
		{`krmfn.match_gvk(deployment, "", "")`, true},
		{`krmfn.match_gvk(bare, "v1", "ConfigMap")`, false},
		{`krmfn.match_gvk(bare, "", "")`, true},
		{`krmfn.match_gvk(odd, "1", "")`, false},
		// match_name: metadata.name.
		{`krmfn.match_name(deployment, "web")`, true},
		{`krmfn.match_name(deployment, "Web")`, false},
		{`krmfn.match_name(deployment, "")`, false},
		{`krmfn.match_name(bare, "")`, true},
		{`krmfn.match_name(odd, "7")`, false},
		// match_namespace: metadata.namespace; none is "".
		{`krmfn.match_namespace(deployment, "prod")`, true},
		{`krmfn.match_namespace(deployment, "dev")`, false},
		{`krmfn.match_namespace(config_map, "")`, true},
		{`krmfn.match_namespace(config_map, "default")`, false},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			g := NewWithT(t)
			got, err := krmfnCall(tc.expr)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(starlark.Bool(tc.want)))
		})
	}
}

func TestKrmfn_badArguments_fail(t *testing.T) {
	for _, tc := range []struct {
		expr, err string
	}{
		{`krmfn.match_gvk(deployment, "apps/v1")`, "match_gvk: got 2 arguments, want 3"},
		{`krmfn.match_gvk(deployment, apiVersion="apps/v1", kind="Deployment")`, "match_gvk: unexpected keyword arguments"},
		{`krmfn.match_gvk(deployment, 1, "Deployment")`, "match_gvk: for parameter 2: got int, want string"},
		{`krmfn.match_gvk("web", "apps/v1", "Deployment")`, "match_gvk: got string for the resource, want a dict"},
		{`krmfn.match_name([deployment], "web")`, "match_name: got list for the resource, want a dict"},
		{`krmfn.match_name(deployment)`, "match_name: got 1 arguments, want 2"},
		{`krmfn.match_namespace(deployment, None)`, "match_namespace: for parameter 2: got NoneType, want string"},
		{`krmfn.match_namespace(None, "prod")`, "match_namespace: got NoneType for the resource"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			g := NewWithT(t)
			_, err := krmfnCall(tc.expr)
			g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
		})
	}
}

func TestStarlark_loadKrmfn_scriptSelectsResourcesWithTheHelpers(t *testing.T) {
	g := NewWithT(t)
	fc := yaml.MustParse(`apiVersion: fn.kpt.dev/v1alpha1
kind: StarlarkRun
metadata:
  name: scale
source: |
  load("krmfn.star", "krmfn")
  replicas = 1
  for r in ctx.resource_list["items"]:
    if krmfn.match_gvk(r, "v1", "ConfigMap") and krmfn.match_name(r, "settings"):
      replicas = int(r["data"]["replicas"])
  for r in ctx.resource_list["items"]:
    if krmfn.match_gvk(r, "apps/v1", "Deployment") and krmfn.match_namespace(r, "prod"):
      r["spec"]["replicas"] = replicas
`)
	rl := &framework.ResourceList{FunctionConfig: fc, Items: []*yaml.RNode{
		yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  replicas: \"5\"\n"),
		yaml.MustParse("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  replicas: 1 # scaled by the pipeline\n"),
		yaml.MustParse("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: dev\nspec:\n  replicas: 1\n"),
	}}

	g.Expect(NewStarlark().Process(rl)).To(Succeed())

	g.Expect(rl.Items).To(HaveLen(3))
	g.Expect(rl.Items[1].MustString()).To(Equal("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  replicas: 5 # scaled by the pipeline\n"))
	g.Expect(rl.Items[2].MustString()).To(ContainSubstring("replicas: 1\n"))
}
