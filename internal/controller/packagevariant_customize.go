package controller

// The customisations a PackageVariant applies to its downstream package, as pure functions of
// the package's files, the variant's spec and the in-cluster objects it injects: the
// controller applies them to a draft's content ConfigMap, and the PackageRevision reconciler
// renders and commits the result as it does any edit.

import (
	"fmt"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/kptfile"
)

// reservedContextKeys are the package-context keys kpt and kpo set: a variant may not set or
// remove them.
var reservedContextKeys = []string{"name", "package-path"}

// injectionConditionPrefix starts the Kptfile condition type of each injection point.
const injectionConditionPrefix = "config.injection."

// validateVariantSpec refuses what a PackageVariant may not ask for: manager-owned labels and
// annotations (every key under kpo.dev/), and the reserved package-context keys. The message
// names every offending key.
func validateVariantSpec(spec *kpov1.PackageVariantSpec) error {
	var problems []string
	for _, k := range sortedKeys(spec.Labels) {
		if ownedByKpo(k) {
			problems = append(problems, fmt.Sprintf("spec.labels[%s] is set by the kpo manager", k))
		}
	}
	for _, k := range sortedKeys(spec.Annotations) {
		if ownedByKpo(k) {
			problems = append(problems, fmt.Sprintf("spec.annotations[%s] is set by the kpo manager", k))
		}
	}
	if pc := spec.PackageContext; pc != nil {
		for _, k := range sortedKeys(pc.Data) {
			if slices.Contains(reservedContextKeys, k) {
				problems = append(problems, fmt.Sprintf("spec.packageContext.data[%s] is reserved", k))
			}
		}
		for _, k := range pc.RemoveKeys {
			if slices.Contains(reservedContextKeys, k) {
				problems = append(problems, fmt.Sprintf("spec.packageContext.removeKeys holds %s, which is reserved", k))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s: remove them (keys under kpo.dev/ belong to kpo; the package-context keys %s are kpt's)",
		strings.Join(problems, "; "), strings.Join(reservedContextKeys, " and "))
}

// ownedByKpo reports whether a label or annotation key is kpo's own.
func ownedByKpo(key string) bool {
	return strings.HasPrefix(key, "kpo.dev/") || strings.Contains(key, ".kpo.dev/")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// injectionLookup returns the in-cluster object of kind gvk and name in the variant's
// namespace, or an error saying why it cannot (not found, not readable).
type injectionLookup func(gvk schema.GroupVersionKind, name string) (*unstructured.Unstructured, error)

// customization is what applying a variant's customisations to a package gives.
type customization struct {
	// Files is the customised package.
	Files map[string][]byte
	// RequiredGates are the condition types of the required injection points: readiness gates
	// of the downstream revision.
	RequiredGates []string
}

// customize applies a variant's package context, pipeline and injections to files (the
// package's files, paths relative to the package) and returns the result; files is not
// changed. Applying it to its own result changes nothing. Errors are the variant's or the
// package's to fix: a missing package context, an invalid injection point.
func customize(files map[string][]byte, pv *kpov1.PackageVariant, lookup injectionLookup) (customization, error) {
	out := make(map[string][]byte, len(files))
	for k, v := range files {
		out[k] = v
	}
	if err := applyPackageContext(out, pv.Spec.PackageContext); err != nil {
		return customization{}, err
	}
	kf, err := kptfile.Decode(out[kptfile.FileName])
	if err != nil {
		return customization{}, fmt.Errorf("the downstream package's Kptfile: %w", err)
	}
	orig, err := kptfile.Decode(out[kptfile.FileName])
	if err != nil {
		return customization{}, err
	}
	applyPipeline(kf, pv.Name, pv.Spec.Pipeline)
	gates, err := applyInjection(out, kf, pv.Spec.Injectors, lookup)
	if err != nil {
		return customization{}, err
	}
	if !reflect.DeepEqual(kf, orig) {
		data, err := kptfile.Encode(kf)
		if err != nil {
			return customization{}, err
		}
		out[kptfile.FileName] = data
	}
	return customization{Files: out, RequiredGates: gates}, nil
}

// applyPackageContext sets and removes data keys of package-context.yaml's kptfile.kpt.dev
// ConfigMap. A package without one cannot take a package context (as in Porch).
func applyPackageContext(files map[string][]byte, pc *kpov1.PackageContext) error {
	if pc == nil || (len(pc.Data) == 0 && len(pc.RemoveKeys) == 0) {
		return nil
	}
	data, ok := files[kptfile.PackageContextFile]
	if !ok {
		return fmt.Errorf("spec.packageContext is set but the package has no %s: add one to the upstream package, or clone into a deployment repository", kptfile.PackageContextFile)
	}
	node, err := yaml.Parse(string(data))
	if err != nil {
		return fmt.Errorf("%s: %w", kptfile.PackageContextFile, err)
	}
	if node.GetKind() != "ConfigMap" || node.GetName() != kptfile.PackageContextName {
		return fmt.Errorf("%s does not hold the ConfigMap %s", kptfile.PackageContextFile, kptfile.PackageContextName)
	}
	m := node.GetDataMap()
	if m == nil {
		m = map[string]string{}
	}
	want := make(map[string]string, len(m))
	for k, v := range m {
		want[k] = v
	}
	for k, v := range pc.Data {
		want[k] = v
	}
	for _, k := range pc.RemoveKeys {
		delete(want, k)
	}
	if reflect.DeepEqual(want, m) {
		return nil
	}
	node.SetDataMap(want)
	s, err := node.String()
	if err != nil {
		return err
	}
	files[kptfile.PackageContextFile] = []byte(s)
	return nil
}

// variantFunctionPrefix starts the names of the functions variant added to a pipeline.
func variantFunctionPrefix(variant string) string { return "PackageVariant." + variant + "." }

// applyPipeline removes the functions the variant added earlier and prepends its current
// ones, named PackageVariant.<variant>.<name>.<index> as Porch names them.
func applyPipeline(kf *kptfile.Kptfile, variant string, p *kpov1.Pipeline) {
	prefix := variantFunctionPrefix(variant)
	var mutators, validators []kpov1.Function
	if p != nil {
		mutators, validators = p.Mutators, p.Validators
	}
	merged := func(existing []kptfile.Function, add []kpov1.Function) []kptfile.Function {
		var out []kptfile.Function
		for i, f := range add {
			out = append(out, kptfile.Function{Image: f.Image, ConfigPath: f.ConfigPath, ConfigMap: f.ConfigMap,
				Name: fmt.Sprintf("%s%s.%d", prefix, f.Name, i), Selectors: kptSelectors(f.Selectors), Exclusions: kptSelectors(f.Exclusions)})
		}
		for _, f := range existing {
			if !strings.HasPrefix(f.Name, prefix) {
				out = append(out, f)
			}
		}
		return out
	}
	var cur kptfile.Pipeline
	if kf.Pipeline != nil {
		cur = *kf.Pipeline
	}
	next := kptfile.Pipeline{Mutators: merged(cur.Mutators, mutators), Validators: merged(cur.Validators, validators)}
	if len(next.Mutators) == 0 && len(next.Validators) == 0 {
		if kf.Pipeline != nil && (len(kf.Pipeline.Mutators) > 0 || len(kf.Pipeline.Validators) > 0) {
			kf.Pipeline = nil
		}
		return
	}
	if kf.Pipeline != nil && reflect.DeepEqual(*kf.Pipeline, next) {
		return
	}
	kf.Pipeline = &next
}

func kptSelectors(in []kpov1.Selector) []kptfile.Selector {
	var out []kptfile.Selector
	for _, s := range in {
		out = append(out, kptfile.Selector{APIVersion: s.APIVersion, Kind: s.Kind, Name: s.Name, Namespace: s.Namespace,
			Labels: s.Labels, Annotations: s.Annotations})
	}
	return out
}

// injectionPoint is one resource of the package annotated kpt.dev/config-injection.
type injectionPoint struct {
	file     string
	node     *yaml.RNode
	gvk      schema.GroupVersionKind
	name     string
	required bool
}

func (p injectionPoint) conditionType() string {
	return injectionConditionPrefix + p.gvk.Kind + "." + p.name
}

// applyInjection fills the package's injection points from the in-cluster objects the
// selectors choose (first match wins): a ConfigMap's data, any other kind's spec, and the
// annotation kpt.dev/injected-resource-name. It records one Kptfile condition per point
// (config.injection.<Kind>.<name>: True when injected, False with the reason otherwise) and
// adds a readiness gate for each required point; it returns the required points' condition
// types. An invalid annotation value or two points with the same condition type is an error.
func applyInjection(files map[string][]byte, kf *kptfile.Kptfile, selectors []kpov1.InjectionSelector, lookup injectionLookup) ([]string, error) {
	points, docs, err := findInjectionPoints(files)
	if err != nil {
		return nil, err
	}
	var conditions []kptfile.Condition
	var gates []string
	changedFiles := map[string]bool{}
	for _, p := range points {
		cond := kptfile.Condition{Type: p.conditionType(), Status: kptfile.ConditionFalse, Reason: "NoMatchingInjector"}
		if p.required {
			gates = append(gates, cond.Type)
		}
		obj, tried := selectInjected(p, selectors, lookup)
		if obj == nil {
			cond.Message = "no in-cluster object matches an injector for this injection point"
			if tried != "" {
				cond.Message += ": " + tried
			}
		} else {
			before, _ := p.node.String()
			if err := inject(p, obj); err != nil {
				cond.Reason, cond.Message = "InjectionFailed", err.Error()
			} else {
				cond.Status, cond.Reason = kptfile.ConditionTrue, "Injected"
				cond.Message = fmt.Sprintf("injected from %s %s", obj.GetKind(), obj.GetName())
				if after, _ := p.node.String(); after != before {
					changedFiles[p.file] = true
				}
			}
		}
		conditions = append(conditions, cond)
	}
	for file := range changedFiles {
		s, err := kio.StringAll(docs[file])
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", file, err)
		}
		files[file] = []byte(s)
	}
	setInjectionConditions(kf, conditions, gates)
	return gates, nil
}

// findInjectionPoints parses the package's YAML files and returns its injection points, in
// file order, and the parsed documents of each file that has one.
func findInjectionPoints(files map[string][]byte) ([]injectionPoint, map[string][]*yaml.RNode, error) {
	var points []injectionPoint
	docs := map[string][]*yaml.RNode{}
	seen := map[string]string{}
	for _, file := range sortedKeys(files) {
		if ext := path.Ext(file); (ext != ".yaml" && ext != ".yml") || path.Base(file) == kptfile.FileName ||
			!strings.Contains(string(files[file]), kpov1.ConfigInjectionAnnotation) {
			continue
		}
		nodes, err := kio.FromBytes(files[file])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, n := range nodes {
			v, ok := n.GetAnnotations()[kpov1.ConfigInjectionAnnotation]
			if !ok {
				continue
			}
			if v != "required" && v != "optional" {
				return nil, nil, fmt.Errorf("%s: %s %s has %s: %q, which must be required or optional",
					file, n.GetKind(), n.GetName(), kpov1.ConfigInjectionAnnotation, v)
			}
			p := injectionPoint{file: file, node: n, name: n.GetName(), required: v == "required",
				gvk: schema.FromAPIVersionAndKind(n.GetApiVersion(), n.GetKind())}
			if other, dup := seen[p.conditionType()]; dup {
				return nil, nil, fmt.Errorf("injection points %s (in %s and %s) are ambiguous: give them different kinds or names in the upstream package",
					p.conditionType(), other, file)
			}
			seen[p.conditionType()] = file
			points = append(points, p)
			docs[file] = nodes
		}
	}
	return points, docs, nil
}

// selectInjected returns the in-cluster object for p: the first selector whose group, version
// and kind (those set) match p and whose object exists. tried says why selectors found none.
func selectInjected(p injectionPoint, selectors []kpov1.InjectionSelector, lookup injectionLookup) (*unstructured.Unstructured, string) {
	var why []string
	for _, s := range selectors {
		if (s.Group != nil && *s.Group != p.gvk.Group) || (s.Version != nil && *s.Version != p.gvk.Version) ||
			(s.Kind != nil && *s.Kind != p.gvk.Kind) {
			continue
		}
		obj, err := lookup(p.gvk, s.Name)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		return obj, ""
	}
	return nil, strings.Join(why, "; ")
}

// inject copies obj's data (a ConfigMap) or spec (any other kind) into the injection point.
func inject(p injectionPoint, obj *unstructured.Unstructured) error {
	field := "spec"
	if p.gvk.Group == "" && p.gvk.Kind == "ConfigMap" {
		field = "data"
	}
	value, ok := obj.Object[field]
	if !ok {
		return fmt.Errorf("%s %s has no %s to inject", obj.GetKind(), obj.GetName(), field)
	}
	node, err := yaml.FromMap(map[string]any{field: value})
	if err != nil {
		return err
	}
	if err := p.node.PipeE(yaml.SetField(field, node.Field(field).Value)); err != nil {
		return err
	}
	annotations := p.node.GetAnnotations()
	annotations[kpov1.InjectedResourceNameAnnotation] = obj.GetName()
	return p.node.SetAnnotations(annotations)
}

// setInjectionConditions replaces the Kptfile's config.injection.* conditions with conditions
// and adds a readiness gate per required point (gates others added are kept).
func setInjectionConditions(kf *kptfile.Kptfile, conditions []kptfile.Condition, gates []string) {
	var kept []kptfile.Condition
	if kf.Status != nil {
		for _, c := range kf.Status.Conditions {
			if !strings.HasPrefix(c.Type, injectionConditionPrefix) {
				kept = append(kept, c)
			}
		}
	}
	all := append(kept, conditions...)
	switch {
	case kf.Status == nil && len(all) > 0:
		kf.Status = &kptfile.Status{Conditions: all}
	case kf.Status != nil:
		kf.Status.Conditions = all
	}
	for _, g := range gates {
		if kf.Info == nil {
			kf.Info = &kptfile.PackageInfo{}
		}
		if !slices.ContainsFunc(kf.Info.ReadinessGates, func(r kptfile.ReadinessGate) bool { return r.ConditionType == g }) {
			kf.Info.ReadinessGates = append(kf.Info.ReadinessGates, kptfile.ReadinessGate{ConditionType: g})
		}
	}
}
