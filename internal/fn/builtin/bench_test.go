package builtin

import (
	"fmt"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// BenchmarkBuiltins_1000Resources runs set-namespace, set-labels and
// apply-replacements in process over 1,000 resources (500 Deployments and 500
// ConfigMaps), the in-process side of the in-process vs exec comparison.
func BenchmarkBuiltins_1000Resources(b *testing.B) {
	configs := []struct{ name, config string }{
		{"set-namespace", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ns\ndata:\n  namespace: staging\n"},
		{"set-labels", "apiVersion: fn.kpt.dev/v1alpha1\nkind: SetLabels\nmetadata:\n  name: labels\nlabels:\n  app.kubernetes.io/part-of: shop\n  tier: backend\n"},
		{"apply-replacements", `apiVersion: fn.kpt.dev/v1alpha1
kind: ApplyReplacements
metadata:
  name: replacements
replacements:
- source:
    kind: ConfigMap
    name: config-0
    fieldPath: data.image
  targets:
  - select:
      kind: Deployment
    fieldPaths:
    - spec.template.spec.containers.[name=app].image
`},
	}
	fnConfigs := make([]*yaml.RNode, len(configs))
	for i, c := range configs {
		fnConfigs[i] = yaml.MustParse(c.config)
	}
	input := make([]*yaml.RNode, 0, 1000)
	for i := range 500 {
		input = append(input, yaml.MustParse(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-%d # one of many
  annotations:
    internal.config.kubernetes.io/path: app-%d.yaml
spec:
  replicas: 2
  selector:
    matchLabels:
      app: app-%d
  template:
    metadata:
      labels:
        app: app-%d
    spec:
      containers:
      - name: app
        image: nginx:1.14.2
`, i, i, i, i)))
		input = append(input, yaml.MustParse(fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: config-%d
data:
  image: nginx:1.27.0
`, i)))
	}

	b.ReportAllocs()
	for b.Loop() {
		items := make([]*yaml.RNode, len(input))
		for i, o := range input {
			items[i] = o.Copy()
		}
		for i, c := range configs {
			p, _ := Lookup(c.name)
			rl := &framework.ResourceList{Items: items, FunctionConfig: fnConfigs[i]}
			if err := p.Process(rl); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			items = rl.Items
		}
	}
}
