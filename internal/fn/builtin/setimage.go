package builtin

import (
	"fmt"
	"slices"

	"sigs.k8s.io/kustomize/api/filters/imagetag"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// defaultImageFields are the container image fields of Pods, pod templates of
// workloads, PodTemplates and CronJob job templates.
var defaultImageFields = func() types.FsSlice {
	var fs types.FsSlice
	add := func(gvk resid.Gvk, podSpec string) {
		for _, list := range []string{"containers", "initContainers"} {
			fs = append(fs, types.FieldSpec{Gvk: gvk, Path: podSpec + "/" + list + "[]/image"})
		}
	}
	add(resid.Gvk{Version: "v1", Kind: "Pod"}, "spec")
	add(resid.Gvk{Version: "v1", Kind: "PodTemplate"}, "template/spec")
	add(resid.Gvk{Version: "v1", Kind: "ReplicationController"}, "spec/template/spec")
	for _, kind := range []string{"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"} {
		add(resid.Gvk{Kind: kind}, "spec/template/spec")
	}
	add(resid.Gvk{Group: "batch", Kind: "Job"}, "spec/template/spec")
	add(resid.Gvk{Group: "batch", Kind: "CronJob"}, "spec/jobTemplate/spec/template/spec")
	return fs
}()

// SetImageSpec is the image a set-image run looks for and what it becomes.
type SetImageSpec struct {
	// Name is the image name to match, without tag or digest.
	Name string `yaml:"name,omitempty"`
	// NewName replaces the name; the name is kept when empty.
	NewName string `yaml:"newName,omitempty"`
	// NewTag replaces tag and digest.
	NewTag string `yaml:"newTag,omitempty"`
	// Digest replaces tag and digest.
	Digest string `yaml:"digest,omitempty"`
}

// SetImage is the set-image function: every container image of the given name
// (any tag or digest) becomes newName:newTag or newName@digest, in the standard
// container fields and in any additionalImageFields.
//
// Config: ConfigMap data.name/newName/newTag/digest or fn.kpt.dev/v1alpha1
// SetImage with image and additionalImageFields.
type SetImage struct {
	Image                 SetImageSpec  `yaml:"image,omitempty"`
	AdditionalImageFields types.FsSlice `yaml:"additionalImageFields,omitempty"`
}

// Process implements framework.ResourceListProcessor.
func (f *SetImage) Process(rl *framework.ResourceList) error {
	if err := f.config(rl.FunctionConfig); err != nil {
		return fail(rl, err)
	}
	filter := imagetag.Filter{
		ImageTag: types.Image{Name: f.Image.Name, NewName: f.Image.NewName, NewTag: f.Image.NewTag, Digest: f.Image.Digest},
		FsSlice:  append(slices.Clone(defaultImageFields), f.AdditionalImageFields...),
	}
	count := 0
	keep := commentKeeper{}
	filter.WithMutationTracker(func(_, value, _ string, node *yaml.RNode) {
		keep.remember(node)
		if node.YNode().Value != value {
			count++
		}
	})
	defer keep.restore()
	for _, o := range rl.Items {
		if _, err := filter.Filter([]*yaml.RNode{o}); err != nil {
			return fail(rl, fmt.Errorf("%s %s: cannot set image: %w", o.GetKind(), o.GetName(), err))
		}
	}
	info(rl, "summary: updated a total of %v image(s)", count)
	return nil
}

func (f *SetImage) config(fc *yaml.RNode) error {
	switch {
	case isConfigMap(fc):
		for key, value := range fc.GetDataMap() {
			switch key {
			case "name":
				f.Image.Name = value
			case "newName":
				f.Image.NewName = value
			case "newTag":
				f.Image.NewTag = value
			case "digest":
				f.Image.Digest = value
			default:
				return configError("ConfigMap has wrong field name %v: allowed are name, newName, newTag and digest", key)
			}
		}
	case isKind(fc, "SetImage"):
		if err := decodeConfig(fc, f); err != nil {
			return err
		}
		for _, fs := range f.AdditionalImageFields {
			if fs.Path == "" {
				return configError("every additionalImageFields entry needs a `path`, e.g. spec/manifest/images[]/image")
			}
		}
	default:
		apiVersion, kind := configMeta(fc)
		return configError("function config must be a ConfigMap (v1) or SetImage (fn.kpt.dev/v1alpha1), got %q %q", apiVersion, kind)
	}
	switch {
	case f.Image.Name == "":
		return configError("must specify `name`: the image name to replace, without tag or digest")
	case f.Image.NewName == "" && f.Image.NewTag == "" && f.Image.Digest == "":
		return configError("must specify one of `newName`, `newTag`, or `digest`")
	case f.Image.NewTag != "" && f.Image.Digest != "":
		return configError("`newTag` and `digest` are mutually exclusive: give one of them")
	}
	return nil
}
