package builtin

import (
	"fmt"
	"slices"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/yamlfast"
)

// SetLabels is the set-labels function: it adds or replaces labels in
// metadata.labels of every resource that is not local config, and in the
// selectors and templates that must carry them (Service and
// ReplicationController spec.selector, workload selectors and pod templates,
// CronJob job templates, StatefulSet volume claim templates, NetworkPolicy pod
// selectors, topology spread constraints).
//
// Config: ConfigMap data (every entry is a label) or fn.kpt.dev/v1alpha1
// SetLabels with labels.
//
// Like the catalog function, a selector that must not be widened silently
// (Job, PodDisruptionBudget, NetworkPolicy, volume claim templates, topology
// spread constraints) only has labels it already holds updated; new keys are
// created in metadata.labels, pod templates, and the selectors of Service,
// ReplicationController, Deployment, ReplicaSet, DaemonSet and StatefulSet.
type SetLabels struct {
	Labels map[string]string `yaml:"labels,omitempty"`

	keys  []string
	count int
	path  []string // scratch space for update
}

// Process implements framework.ResourceListProcessor.
func (f *SetLabels) Process(rl *framework.ResourceList) error {
	fc := rl.FunctionConfig
	switch {
	case isEmptyConfig(fc):
		rl.Results = append(rl.Results, &framework.Result{Message: "`FunctionConfig` is not given", Severity: framework.Info})
		return configError("`FunctionConfig` is not given: give set-labels a ConfigMap whose data are the labels, or a SetLabels with labels")
	case isConfigMap(fc):
		f.Labels = fc.GetDataMap()
	case isKind(fc, "SetLabels"):
		if err := decodeConfig(fc, f); err != nil {
			return fail(rl, err)
		}
	default:
		apiVersion, kind := configMeta(fc)
		return fail(rl, configError("unsupported functionConfig %s %s: expect a ConfigMap (v1) or SetLabels (fn.kpt.dev/v1alpha1)", apiVersion, kind))
	}

	var objects []*yaml.RNode
	for _, o := range rl.Items {
		if !isLocalConfig(o) {
			objects = append(objects, o)
		}
	}
	if len(objects) == 0 {
		info(rl, "no input resources")
		return nil
	}
	if len(f.Labels) == 0 {
		rl.Results = append(rl.Results, &framework.Result{Message: "no `labels` arguments are given in FunctionConfig", Severity: framework.Warning})
		return nil
	}
	f.keys = make([]string, 0, len(f.Labels))
	for k := range f.Labels {
		f.keys = append(f.keys, k)
	}
	slices.Sort(f.keys)

	f.count = 0
	var failed error
	for _, o := range objects {
		if err := f.setResource(o); err != nil {
			failed = fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
			rl.Results = append(rl.Results, &framework.Result{Message: failed.Error(), Severity: framework.Error, File: fileOf(o)})
		}
	}
	info(rl, "set %v labels in total", f.count)
	return failed
}

func (f *SetLabels) setResource(o *yaml.RNode) error {
	if err := f.update(o, true, "metadata", "labels"); err != nil {
		return err
	}
	switch {
	case isGVK(o, "", "v1", "Service"), isGVK(o, "", "v1", "ReplicationController"):
		if err := f.update(o, true, "spec", "selector"); err != nil {
			return err
		}
	case isGVK(o, "", "", "Deployment"), isGVK(o, "", "", "ReplicaSet"), isGVK(o, "", "", "DaemonSet"), isGVK(o, "apps", "", "StatefulSet"):
		if err := f.update(o, true, "spec", "selector", "matchLabels"); err != nil {
			return err
		}
	case isGVK(o, "batch", "", "Job"), isGVK(o, "policy", "", "PodDisruptionBudget"):
		if err := f.update(o, false, "spec", "selector", "matchLabels"); err != nil {
			return err
		}
	case isGVK(o, "networking.k8s.io", "", "NetworkPolicy"):
		if err := f.update(o, false, "spec", "podSelector", "matchLabels"); err != nil {
			return err
		}
	}

	spec := child(o, "spec")
	if spec == nil {
		return nil
	}
	switch {
	case isGVK(o, "", "v1", "ReplicationController"), isGVK(o, "", "", "Deployment"), isGVK(o, "", "", "ReplicaSet"),
		isGVK(o, "", "", "DaemonSet"), isGVK(o, "apps", "", "StatefulSet"), isGVK(o, "batch", "", "Job"):
		if err := f.setPodTemplate(child(spec, "template")); err != nil {
			return err
		}
	case isGVK(o, "batch", "", "CronJob"):
		if job := child(spec, "jobTemplate"); job != nil {
			if err := f.update(job, true, "metadata", "labels"); err != nil {
				return err
			}
			if jobSpec := child(job, "spec"); jobSpec != nil {
				if err := f.update(jobSpec, false, "selector", "matchLabels"); err != nil {
					return err
				}
				if err := f.setPodTemplate(child(jobSpec, "template")); err != nil {
					return err
				}
			}
		}
	case isGVK(o, "networking.k8s.io", "", "NetworkPolicy"):
		for _, rules := range [][2]string{{"ingress", "from"}, {"egress", "to"}} {
			for _, rule := range elements(spec, rules[0]) {
				for _, peer := range elements(rule, rules[1]) {
					if err := f.update(peer, false, "podSelector", "matchLabels"); err != nil {
						return err
					}
				}
			}
		}
	}
	if isGVK(o, "apps", "", "StatefulSet") {
		for _, claim := range elements(spec, "volumeClaimTemplates") {
			if err := f.update(claim, true, "metadata", "labels"); err != nil {
				return err
			}
			if err := f.update(claim, false, "selector", "matchLabels"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *SetLabels) setPodTemplate(template *yaml.RNode) error {
	if template == nil {
		return nil
	}
	if err := f.update(template, true, "metadata", "labels"); err != nil {
		return err
	}
	podSpec := child(template, "spec")
	if podSpec == nil {
		return nil
	}
	for _, c := range elements(podSpec, "topologySpreadConstraints") {
		if err := f.update(c, false, "labelSelector", "matchLabels"); err != nil {
			return err
		}
	}
	affinity := child(podSpec, "affinity")
	for _, kind := range []string{"podAffinity", "podAntiAffinity"} {
		a := child(affinity, kind)
		for _, term := range elements(a, "requiredDuringSchedulingIgnoredDuringExecution") {
			if err := f.update(term, false, "labelSelector", "matchLabels"); err != nil {
				return err
			}
		}
		for _, weighted := range elements(a, "preferredDuringSchedulingIgnoredDuringExecution") {
			if err := f.update(child(weighted, "podAffinityTerm"), false, "labelSelector", "matchLabels"); err != nil {
				return err
			}
		}
	}
	return nil
}

// update sets every label under path of o: an existing key whose value differs
// is replaced, a missing key is added only when create is set. Every label
// visited on an existing o counts, which is how the catalog function counts.
func (f *SetLabels) update(o *yaml.RNode, create bool, path ...string) error {
	if o == nil {
		return nil
	}
	for _, key := range f.keys {
		value := f.Labels[key]
		f.count++
		full := append(f.path[:0], path...)
		full = append(full, key)
		f.path = full
		field, err := yamlfast.Lookup(o, full...)
		if err != nil {
			return fmt.Errorf("cannot read %v: %w", path, err)
		}
		if field != nil && field.Value == value {
			continue
		}
		if field != nil && field.Kind == yaml.ScalarNode {
			// Replace in place, so a line comment on the label stays.
			field.Value, field.Tag = value, yaml.NodeTagString
			continue
		}
		if field == nil && !create {
			continue
		}
		// yaml.LookupCreate(path) then yaml.SetField(key, yaml.NewStringRNode(value))
		v := &yaml.Node{Kind: yaml.ScalarNode}
		v.SetString(value)
		if err := yamlfast.SetField(o, v, full...); err != nil {
			return fmt.Errorf("cannot set label %s in %v: %w", key, path, err)
		}
	}
	return nil
}

// child returns the mapping value of a field, or nil.
func child(o *yaml.RNode, field string) *yaml.RNode {
	if o == nil || o.YNode().Kind != yaml.MappingNode {
		return nil
	}
	f := o.Field(field)
	if f == nil || f.Value == nil || f.Value.YNode().Kind != yaml.MappingNode {
		return nil
	}
	return f.Value
}

// elements returns the elements of a list field, or nil.
func elements(o *yaml.RNode, field string) []*yaml.RNode {
	if o == nil || o.YNode().Kind != yaml.MappingNode {
		return nil
	}
	f := o.Field(field)
	if f == nil || f.Value == nil || f.Value.YNode().Kind != yaml.SequenceNode {
		return nil
	}
	items, _ := f.Value.Elements()
	return items
}
