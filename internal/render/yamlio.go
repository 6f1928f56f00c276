package render

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// FunctionInput is what a function process reads on stdin: rl as a ResourceList, the
// annotations kpt puts on items kept.
func FunctionInput(rl *framework.ResourceList) ([]byte, error) {
	var in bytes.Buffer
	w := kio.ByteWriter{
		Writer:                &in,
		KeepReaderAnnotations: true,
		WrappingAPIVersion:    kio.ResourceListAPIVersion,
		WrappingKind:          kio.ResourceListKind,
		FunctionConfig:        rl.FunctionConfig,
	}
	if err := w.Write(rl.Items); err != nil {
		return nil, err
	}
	return in.Bytes(), nil
}

// ParseFunctionOutput reads what a function process wrote on stdout: a ResourceList, its items
// and its results. Anything but a ResourceList is an error. Every evaluator that runs a
// function as a process (exec, the sandbox, a Job) reads its output here.
func ParseFunctionOutput(data []byte) ([]*yaml.RNode, framework.Results, error) {
	r := &kio.ByteReader{Reader: bytes.NewReader(data), OmitReaderAnnotations: true}
	items, err := r.Read()
	if err != nil {
		return nil, nil, err
	}
	if r.WrappingKind != kio.ResourceListKind {
		return nil, nil, fmt.Errorf("the output is not a %s", kio.ResourceListKind)
	}
	results, err := decodeResults(r.Results)
	if err != nil {
		return nil, nil, err
	}
	return items, results, nil
}

// decodeResults reads a ResourceList's results in either of the forms functions write, as
// kpt accepts both: a list of results (the current function spec), or the older form of the
// kyaml framework and the Go SDK of its time (apply-setters among others), a map that wraps
// them, {name: …, items: [...]}.
func decodeResults(n *yaml.RNode) (framework.Results, error) {
	if n == nil {
		return nil, nil
	}
	node := n.YNode()
	if node.Kind == yaml.DocumentNode && len(node.Content) > 0 {
		node = node.Content[0]
	}
	if node.Kind == yaml.MappingNode {
		items := yaml.NewRNode(node).Field("items")
		if items == nil || items.Value == nil {
			return nil, nil
		}
		node = items.Value.YNode()
	}
	var results framework.Results
	if err := node.Decode(&results); err != nil {
		return nil, fmt.Errorf("reading results: %w", err)
	}
	return results, nil
}
