package render

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/kptfile"
)

// testEvaluators are the tiny functions the golden tests use, registered by image name.
var testEvaluators = map[string]EvaluatorFunc{
	// add-label sets every functionConfig data entry as a label on every resource.
	"add-label": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		data := configData(rl)
		for _, item := range rl.Items {
			for _, k := range slices.Sorted(maps.Keys(data)) {
				if err := item.PipeE(yaml.SetLabel(k, data[k])); err != nil {
					return err
				}
			}
		}
		rl.Results = append(rl.Results, &framework.Result{Message: fmt.Sprintf("labelled %d resource(s)", len(rl.Items)), Severity: framework.Info})
		return nil
	},
	// annotate-from-config records the functionConfig's kind, name and data as annotations.
	"annotate-from-config": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		data := configData(rl)
		for _, item := range rl.Items {
			if err := item.PipeE(yaml.SetAnnotation("config/source", rl.FunctionConfig.GetKind()+"/"+rl.FunctionConfig.GetName())); err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(data)) {
				if err := item.PipeE(yaml.SetAnnotation("config/"+k, data[k])); err != nil {
					return err
				}
			}
		}
		return nil
	},
	// set-data sets the functionConfig data entries in the data of every ConfigMap.
	"set-data": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		data := configData(rl)
		for _, item := range rl.Items {
			if item.GetKind() != "ConfigMap" {
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(data)) {
				if err := item.PipeE(yaml.LookupCreate(yaml.MappingNode, "data"), yaml.SetField(k, yaml.NewStringRNode(data[k]))); err != nil {
					return err
				}
			}
		}
		return nil
	},
	// generate adds a ConfigMap named after data.name (in data.namespace), without a path.
	"generate": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		data := configData(rl)
		cm := yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + data["name"] + "\ndata:\n  generated: \"true\"\n")
		if ns := data["namespace"]; ns != "" {
			if err := cm.SetNamespace(ns); err != nil {
				return err
			}
		}
		rl.Items = append(rl.Items, cm)
		return nil
	},
	// delete-kind removes every resource of kind data.kind.
	"delete-kind": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		kind := configData(rl)["kind"]
		rl.Items = slices.DeleteFunc(rl.Items, func(n *yaml.RNode) bool { return n.GetKind() == kind })
		return nil
	},
	// move sets the path annotation of the resource named data.name to data.path.
	"move": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		data := configData(rl)
		for _, item := range rl.Items {
			if item.GetName() == data["name"] {
				if err := item.PipeE(yaml.SetAnnotation(kioutil.PathAnnotation, data["path"])); err != nil {
					return err
				}
			}
		}
		return nil
	},
	// count records how many resources it saw, as a result and an annotation on each.
	"count": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		for _, item := range rl.Items {
			if err := item.PipeE(yaml.SetAnnotation("seen", "true")); err != nil {
				return err
			}
		}
		rl.Results = append(rl.Results, &framework.Result{Message: fmt.Sprintf("saw %d resource(s)", len(rl.Items)), Severity: framework.Info})
		return nil
	},
	// fail reports an error result.
	"fail": func(_ context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
		rl.Results = append(rl.Results, &framework.Result{Message: "failing on purpose", Severity: framework.Error})
		return nil
	},
	// crash fails like a container exiting 2.
	"crash": func(_ context.Context, fn kptfile.Function, _ *framework.ResourceList) error {
		return &FunctionError{Image: fn.Image, ExitCode: 2, Stderr: "boom", Err: errors.New("crashed")}
	},
	// stderr succeeds and writes diagnostics.
	"stderr": func(ctx context.Context, _ kptfile.Function, _ *framework.ResourceList) error {
		_, err := fmt.Fprint(StderrWriter(ctx), "hello from stderr")
		return err
	},
}

// testEvaluator is an Options.Evaluator over testEvaluators, keyed by the last path segment
// of the image without its tag.
func testEvaluator(fn kptfile.Function) (Evaluator, error) {
	name, _, _ := strings.Cut(path.Base(fn.Image), ":")
	ev, ok := testEvaluators[name]
	if !ok {
		return nil, fmt.Errorf("no evaluator for image %s", fn.Image)
	}
	return ev, nil
}

// configData returns the functionConfig's data map.
func configData(rl *framework.ResourceList) map[string]string {
	if rl.FunctionConfig == nil {
		return nil
	}
	return rl.FunctionConfig.GetDataMap()
}
