package builtin

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/api/filters/fieldspec"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// EnsureNameSubstring is the ensure-name-substring function: every resource
// name that does not contain the substring gets it prepended or appended
// (idempotent). CustomResourceDefinition, APIService, Namespace and Kptfile are
// left alone. References to renamed resources in the same package are updated
// (see nameReferences), and so is the name segment of depends-on annotations.
//
// Config: ConfigMap with exactly one data entry `prepend: <s>` or `append: <s>`,
// or fn.kpt.dev/v1alpha1 EnsureNameSubstring with substring, editMode
// (prepend, the default, or append) and additionalNameFields (the deprecated
// fieldSpecs is accepted when additionalNameFields is absent).
type EnsureNameSubstring struct {
	Substring            string        `yaml:"substring,omitempty"`
	EditMode             string        `yaml:"editMode,omitempty"`
	AdditionalNameFields types.FsSlice `yaml:"additionalNameFields,omitempty"`
	FieldSpecs           types.FsSlice `yaml:"fieldSpecs,omitempty"`
}

// nameReference is a field that holds the name of a resource of kind Target.
type nameReference struct {
	Target string
	Field  types.FieldSpec
}

// podSpecPaths are the pod spec locations of the workload kinds.
var podSpecPaths = []struct {
	gvk  resid.Gvk
	path string
}{
	{resid.Gvk{Version: "v1", Kind: "Pod"}, "spec"},
	{resid.Gvk{Version: "v1", Kind: "ReplicationController"}, "spec/template/spec"},
	{resid.Gvk{Kind: "Deployment"}, "spec/template/spec"},
	{resid.Gvk{Kind: "ReplicaSet"}, "spec/template/spec"},
	{resid.Gvk{Kind: "DaemonSet"}, "spec/template/spec"},
	{resid.Gvk{Kind: "StatefulSet"}, "spec/template/spec"},
	{resid.Gvk{Group: "batch", Kind: "Job"}, "spec/template/spec"},
	{resid.Gvk{Group: "batch", Kind: "CronJob"}, "spec/jobTemplate/spec/template/spec"},
}

// nameReferences is the subset of kustomize's name reference table that
// ensure-name-substring keeps consistent: ConfigMaps, Secrets, ServiceAccounts
// and PersistentVolumeClaims used by pod specs, Services named by StatefulSets
// and Ingresses, and Roles/ClusterRoles bound by RoleBindings.
var nameReferences = func() []nameReference {
	var refs []nameReference
	for _, p := range podSpecPaths {
		add := func(target, path string) {
			refs = append(refs, nameReference{Target: target, Field: types.FieldSpec{Gvk: p.gvk, Path: p.path + "/" + path}})
		}
		for _, c := range []string{"containers", "initContainers"} {
			add("ConfigMap", c+"[]/env[]/valueFrom/configMapKeyRef/name")
			add("ConfigMap", c+"[]/envFrom[]/configMapRef/name")
			add("Secret", c+"[]/env[]/valueFrom/secretKeyRef/name")
			add("Secret", c+"[]/envFrom[]/secretRef/name")
		}
		add("ConfigMap", "volumes[]/configMap/name")
		add("ConfigMap", "volumes[]/projected/sources[]/configMap/name")
		add("Secret", "volumes[]/secret/secretName")
		add("Secret", "volumes[]/projected/sources[]/secret/name")
		add("Secret", "imagePullSecrets[]/name")
		add("ServiceAccount", "serviceAccountName")
		add("PersistentVolumeClaim", "volumes[]/persistentVolumeClaim/claimName")
	}
	refs = append(refs,
		nameReference{"Service", types.FieldSpec{Gvk: resid.Gvk{Group: "apps", Kind: "StatefulSet"}, Path: "spec/serviceName"}},
		nameReference{"Service", types.FieldSpec{Gvk: resid.Gvk{Group: "networking.k8s.io", Kind: "Ingress"}, Path: "spec/rules[]/http/paths[]/backend/service/name"}},
		nameReference{"Service", types.FieldSpec{Gvk: resid.Gvk{Group: "networking.k8s.io", Kind: "Ingress"}, Path: "spec/defaultBackend/service/name"}},
	)
	return refs
}()

type renamedKey struct{ kind, namespace, name string }

// Process implements framework.ResourceListProcessor.
func (f *EnsureNameSubstring) Process(rl *framework.ResourceList) error {
	if err := f.config(rl.FunctionConfig); err != nil {
		return fail(rl, err)
	}

	present := map[string]bool{} // group/kind/name of every input resource
	for _, o := range rl.Items {
		group, _, kind := gvkOf(o)
		present[group+"/"+kind+"/"+o.GetName()] = true
	}

	renamed := map[renamedKey]string{}
	fields := append(types.FsSlice{{Path: "metadata/name"}}, f.AdditionalNameFields...)
	for _, o := range rl.Items {
		if skipRename(o) {
			continue
		}
		for _, fs := range fields {
			if fs.Path == "metadata/name" {
				if fs.Gvk != (resid.Gvk{}) && !resid.GvkFromNode(o).IsSelected(&fs.Gvk) {
					continue
				}
				old := o.GetName()
				if strings.Contains(old, f.Substring) {
					continue
				}
				if err := o.SetName(f.edit(old)); err != nil {
					return fail(rl, err)
				}
				renamed[renamedKey{o.GetKind(), o.GetNamespace(), old}] = o.GetName()
				continue
			}
			if _, err := (&fieldspec.Filter{FieldSpec: fs, CreateKind: yaml.ScalarNode, SetValue: func(n *yaml.RNode) error {
				if !strings.Contains(n.YNode().Value, f.Substring) {
					n.YNode().Value = f.edit(n.YNode().Value)
				}
				return nil
			}}).Filter(o); err != nil {
				return fail(rl, fmt.Errorf("%s %s: cannot update %s: %w", o.GetKind(), o.GetName(), fs.Path, err))
			}
		}
		if err := f.updateDependsOn(o, present); err != nil {
			return fail(rl, err)
		}
	}
	if err := updateNameReferences(rl.Items, renamed); err != nil {
		return fail(rl, err)
	}
	return nil
}

func (f *EnsureNameSubstring) edit(name string) string {
	if f.EditMode == "append" {
		return name + f.Substring
	}
	return f.Substring + name
}

func (f *EnsureNameSubstring) config(fc *yaml.RNode) error {
	switch {
	case isConfigMap(fc):
		data := fc.GetDataMap()
		if len(data) != 1 {
			return configError("only 1 entry is allowed in the ConfigMap, but got: %d; use `prepend: <substring>` or `append: <substring>`", len(data))
		}
		for k, v := range data {
			if k != "prepend" && k != "append" {
				return configError("unknown editMode: %v, only prepend and append are allowed", k)
			}
			f.EditMode, f.Substring = k, v
		}
	case isKind(fc, "EnsureNameSubstring"):
		if err := decodeConfig(fc, f); err != nil {
			return err
		}
		if f.AdditionalNameFields != nil && f.FieldSpecs != nil {
			return configError("`fieldSpecs` has been deprecated, please rename it to `additionalNameFields`")
		}
		if f.AdditionalNameFields == nil {
			f.AdditionalNameFields = f.FieldSpecs
		}
	default:
		apiVersion, kind := configMeta(fc)
		return configError("function config must be either ConfigMap (v1) or EnsureNameSubstring (fn.kpt.dev/v1alpha1), but we got: %s %s", apiVersion, kind)
	}
	if f.EditMode == "" {
		f.EditMode = "prepend"
	}
	if f.EditMode != "prepend" && f.EditMode != "append" {
		return configError("unknown editMode: %v, only prepend and append are allowed", f.EditMode)
	}
	if f.Substring == "" {
		return configError("substring must not be empty")
	}
	return nil
}

func skipRename(o *yaml.RNode) bool {
	return isGVK(o, "", "", "CustomResourceDefinition") || isGVK(o, "apiregistration.k8s.io", "", "APIService") ||
		isGVK(o, "", "v1", "Namespace") || isGVK(o, "kpt.dev", "", "Kptfile")
}

// updateDependsOn adds the substring to the name segment of a depends-on
// reference (<group>/namespaces/<ns>/<kind>/<name> or <group>/<kind>/<name>)
// when the referenced resource is in the package.
func (f *EnsureNameSubstring) updateDependsOn(o *yaml.RNode, present map[string]bool) error {
	value, ok := o.GetAnnotations()[dependsOnAnnotation]
	if !ok {
		return nil
	}
	refs := strings.Split(value, ",")
	changed := false
	for i, ref := range refs {
		segments := strings.Split(strings.TrimSpace(ref), "/")
		var group, kind string
		switch {
		case len(segments) == 5 && segments[1] == "namespaces":
			group, kind = segments[0], segments[3]
		case len(segments) == 3:
			group, kind = segments[0], segments[1]
		default:
			continue
		}
		name := segments[len(segments)-1]
		if !present[group+"/"+kind+"/"+name] || strings.Contains(name, f.Substring) {
			continue
		}
		segments[len(segments)-1] = f.edit(name)
		refs[i] = strings.Join(segments, "/")
		changed = true
	}
	if !changed {
		return nil
	}
	return o.PipeE(yaml.SetAnnotation(dependsOnAnnotation, strings.Join(refs, ",")))
}

// updateNameReferences points references to renamed resources at their new names.
func updateNameReferences(items []*yaml.RNode, renamed map[renamedKey]string) error {
	if len(renamed) == 0 {
		return nil
	}
	for _, o := range items {
		ns := o.GetNamespace()
		for _, ref := range nameReferences {
			if _, err := (&fieldspec.Filter{FieldSpec: ref.Field, SetValue: func(n *yaml.RNode) error {
				if newName, ok := renamed[renamedKey{ref.Target, ns, n.YNode().Value}]; ok {
					n.YNode().Value = newName
				}
				return nil
			}}).Filter(o); err != nil {
				return fmt.Errorf("%s %s: cannot update a reference to a renamed %s: %w", o.GetKind(), o.GetName(), ref.Target, err)
			}
		}
		if kind := o.GetKind(); kind == "RoleBinding" || kind == "ClusterRoleBinding" {
			if roleRef := child(o, "roleRef"); roleRef != nil {
				refKind, name := roleRef.Field("kind"), roleRef.Field("name")
				if refKind != nil && name != nil {
					refNS := ns
					if refKind.Value.YNode().Value == "ClusterRole" {
						refNS = ""
					}
					if newName, ok := renamed[renamedKey{refKind.Value.YNode().Value, refNS, name.Value.YNode().Value}]; ok {
						name.Value.YNode().Value = newName
					}
				}
			}
			for _, s := range elements(o, "subjects") {
				if s.GetKind() != "ServiceAccount" {
					continue
				}
				name := s.Field("name")
				if name == nil {
					continue
				}
				subjectNS := ""
				if f := s.Field("namespace"); f != nil {
					subjectNS = f.Value.YNode().Value
				}
				if subjectNS == "" {
					subjectNS = ns
				}
				if newName, ok := renamed[renamedKey{"ServiceAccount", subjectNS, name.Value.YNode().Value}]; ok {
					name.Value.YNode().Value = newName
				}
			}
		}
	}
	return nil
}
