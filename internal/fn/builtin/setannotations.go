package builtin

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/api/filters/annotations"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// commonAnnotationFields are kustomize's default commonAnnotations field specs,
// which the catalog function uses: metadata.annotations of every resource and
// the pod (and job) templates of the workload kinds.
var commonAnnotationFields = types.FsSlice{
	{Path: "metadata/annotations", CreateIfNotPresent: true},
	{Gvk: resid.Gvk{Version: "v1", Kind: "ReplicationController"}, Path: "spec/template/metadata/annotations", CreateIfNotPresent: true},
	{Gvk: resid.Gvk{Kind: "Deployment"}, Path: "spec/template/metadata/annotations", CreateIfNotPresent: true},
	{Gvk: resid.Gvk{Kind: "ReplicaSet"}, Path: "spec/template/metadata/annotations", CreateIfNotPresent: true},
	{Gvk: resid.Gvk{Kind: "DaemonSet"}, Path: "spec/template/metadata/annotations", CreateIfNotPresent: true},
	{Gvk: resid.Gvk{Kind: "StatefulSet"}, Path: "spec/template/metadata/annotations", CreateIfNotPresent: true},
	{Gvk: resid.Gvk{Group: "batch", Kind: "Job"}, Path: "spec/template/metadata/annotations", CreateIfNotPresent: true},
	{Gvk: resid.Gvk{Group: "batch", Kind: "CronJob"}, Path: "spec/jobTemplate/metadata/annotations", CreateIfNotPresent: true},
	{Gvk: resid.Gvk{Group: "batch", Kind: "CronJob"}, Path: "spec/jobTemplate/spec/template/metadata/annotations", CreateIfNotPresent: true},
}

// SetAnnotations is the set-annotations function: it adds or replaces
// annotations on every resource (local config included, as the catalog function
// does) in metadata.annotations, in the pod templates of workloads, and in any
// additionalAnnotationFields.
//
// Config: ConfigMap data (every entry is an annotation) or fn.kpt.dev/v1alpha1
// SetAnnotations with annotations and additionalAnnotationFields (the
// deprecated fieldSpecs is accepted when additionalAnnotationFields is absent).
type SetAnnotations struct {
	Annotations                map[string]string `yaml:"annotations,omitempty"`
	AdditionalAnnotationFields types.FsSlice     `yaml:"additionalAnnotationFields,omitempty"`
	FieldSpecs                 types.FsSlice     `yaml:"fieldSpecs,omitempty"`
}

// Process implements framework.ResourceListProcessor.
func (f *SetAnnotations) Process(rl *framework.ResourceList) error {
	if err := f.config(rl.FunctionConfig); err != nil {
		return fail(rl, fmt.Errorf("failed to configure function: %w", err))
	}

	type resultKey struct{ path, field string }
	type resultValue struct {
		file   *framework.File
		values map[string]string
	}
	results := map[resultKey]*resultValue{}
	var order []resultKey
	keep := commentKeeper{}
	defer keep.restore()
	for _, o := range rl.Items {
		file := fileOf(o)
		filter := annotations.Filter{
			Annotations: f.Annotations,
			FsSlice:     append(slicesClone(f.AdditionalAnnotationFields), commonAnnotationFields...),
		}
		filter.WithMutationTracker(func(key, value, _ string, node *yaml.RNode) {
			if existing := node.Field(key); existing != nil {
				keep.remember(existing.Value)
			}
			k := resultKey{field: strings.Join(node.FieldPath(), ".")}
			if file != nil {
				k.path = fmt.Sprintf("%s#%d", file.Path, file.Index)
			}
			r, ok := results[k]
			if !ok {
				r = &resultValue{file: file, values: map[string]string{}}
				results[k] = r
				order = append(order, k)
			}
			r.values[key] = value
		})
		if _, err := filter.Filter([]*yaml.RNode{o}); err != nil {
			return fail(rl, fmt.Errorf("failed to run function: %s %s: %w", o.GetKind(), o.GetName(), err))
		}
	}

	if len(results) == 0 {
		rl.Results = append(rl.Results, &framework.Result{Message: "no annotations applied"})
		return nil
	}
	var out framework.Results
	for _, k := range order {
		r := results[k]
		values, err := json.Marshal(r.values)
		if err != nil {
			return fail(rl, err)
		}
		out = append(out, &framework.Result{
			Message: fmt.Sprintf("set annotations: %s", values),
			Field:   &framework.Field{Path: k.field},
			File:    r.file,
		})
	}
	out.Sort()
	rl.Results = append(rl.Results, out...)
	return nil
}

func (f *SetAnnotations) config(fc *yaml.RNode) error {
	switch {
	case isConfigMap(fc):
		f.Annotations = fc.GetDataMap()
	case isKind(fc, "SetAnnotations"), isKind(fc, "SetAnnotationConfig"):
		if err := decodeConfig(fc, f); err != nil {
			return err
		}
		if f.AdditionalAnnotationFields != nil && f.FieldSpecs != nil {
			return configError("`fieldSpecs` has been deprecated, please rename it to `additionalAnnotationFields`")
		}
		if f.AdditionalAnnotationFields == nil {
			f.AdditionalAnnotationFields = f.FieldSpecs
		}
		for _, fs := range f.AdditionalAnnotationFields {
			if fs.Path == "" {
				return configError("every additionalAnnotationFields entry needs a `path`, e.g. spec/template/metadata/annotations")
			}
		}
	default:
		return catalogConfigError("`functionConfig` must be a `ConfigMap` or `SetAnnotations`")
	}
	if len(f.Annotations) == 0 {
		return configError("input annotation list cannot be empty: give at least one annotation")
	}
	return nil
}

func slicesClone(s types.FsSlice) types.FsSlice {
	return append(types.FsSlice(nil), s...)
}
