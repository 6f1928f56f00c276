package builtin

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/yamlfast"
)

const (
	// packageContextName is the ConfigMap kpt pkg init / get --for-deploy writes
	// (package-context.yaml); its data.name is the namespace to use.
	packageContextName = "kptfile.kpt.dev"
	// upstreamIdentifierAnnotation records a resource's identity in its upstream
	// package as group|kind|namespace|name (kpt pkg get sets it).
	upstreamIdentifierAnnotation = "internal.config.k8s.io/upstream-identifier"
	clusterScopedOrigin          = "~C"
	defaultNamespace             = "default"
)

// SetNamespace is the set-namespace function: it replaces the namespace of
// namespace-scoped resources, the name of Namespace objects, the namespace of
// ServiceAccount subjects in (Cluster)RoleBindings, of CRD conversion webhooks
// and of APIService services, and the namespace segment of depends-on
// annotations that refer to resources of the package.
//
// Config: ConfigMap data.namespace (and optional data.namespaceMatcher), the
// package-context ConfigMap kptfile.kpt.dev with data.name, or
// fn.kpt.dev/v1alpha1 SetNamespace with namespace and namespaceMatcher.
type SetNamespace struct {
	Namespace        string `yaml:"namespace,omitempty"`
	NamespaceMatcher string `yaml:"namespaceMatcher,omitempty"`
}

// Process implements framework.ResourceListProcessor.
func (f *SetNamespace) Process(rl *framework.ResourceList) error {
	if err := f.config(rl.FunctionConfig); err != nil {
		return fail(rl, err)
	}

	// Local resources are skipped, as kpt live apply skips them.
	var objects []*yaml.RNode
	for _, o := range rl.Items {
		if !isLocalConfig(o) {
			objects = append(objects, o)
		}
	}

	// Remember each namespaced resource's depends-on key before the change.
	before := map[string]bool{}
	for _, o := range objects {
		if scope(o) == scopeNamespaced {
			before[dependsOnKey(o)] = true
		}
	}

	if f.NamespaceMatcher == "" {
		origins := map[string]bool{}
		for _, o := range objects {
			if ns, ok := upstreamOriginNamespace(o); ok && scope(o) == scopeNamespaced && ns != clusterScopedOrigin {
				origins[ns] = true
			}
		}
		if len(origins) > 1 {
			list := sortedKeys(origins)
			return fail(rl, fmt.Errorf("unable to use origin `namespace` to match. expect a single upstream namespace, found %v. "+
				"please switch to use `namespaceMatcher` to specify the namespace value you want to change", list))
		}
	}

	count, old := 0, map[string]bool{}
	visit := func(origin string, current *string) {
		if *current == "" {
			*current = defaultNamespace
		}
		if *current == f.Namespace {
			return
		}
		if f.NamespaceMatcher != "" && f.NamespaceMatcher != *current && f.NamespaceMatcher != origin {
			return
		}
		old[*current] = true
		*current = f.Namespace
		count++
	}
	for _, o := range objects {
		if err := f.visitResource(o, visit); err != nil {
			return fail(rl, err)
		}
	}
	if count == 0 {
		info(rl, "all matching namespaces are already %q. no value changed", f.Namespace)
	} else {
		info(rl, "namespace %v updated to %q, %d value(s) changed", sortedKeys(old), f.Namespace, count)
	}

	annoCount, annoOld, err := f.updateDependsOn(objects, before)
	if err != nil {
		return fail(rl, err)
	}
	if annoCount == 0 {
		info(rl, "all `depends-on` annotations are up-to-date. no `namespace` changed")
	} else {
		info(rl, "`depends-on` annotation namespace %v updated to %q, %d value(s) changed", annoOld, f.Namespace, annoCount)
	}
	return nil
}

func (f *SetNamespace) config(fc *yaml.RNode) error {
	switch {
	case isEmptyConfig(fc):
		return configError("FunctionConfig is missing. Expect `ConfigMap.v1` or `SetNamespace.v1alpha1.fn.kpt.dev`, " +
			"e.g. a ConfigMap with data.namespace: <namespace>")
	case isConfigMap(fc):
		data := fc.GetDataMap()
		f.NamespaceMatcher = data["namespaceMatcher"]
		switch {
		case data["namespace"] != "":
			f.Namespace = data["namespace"]
		case fc.GetName() == packageContextName && data["name"] != "":
			f.Namespace = data["name"]
		case fc.GetName() == packageContextName:
			return configError("`data.name` should not be empty: set data.name of ConfigMap %s to the namespace", packageContextName)
		default:
			return configError("`data.namespace` should not be empty: set data.namespace of the ConfigMap to the namespace")
		}
	case isKind(fc, "SetNamespace"):
		if err := decodeConfig(fc, f); err != nil {
			return err
		}
		if f.Namespace == "" {
			return configError("`namespace` should not be empty: set the namespace field of SetNamespace")
		}
	default:
		apiVersion, kind := configMeta(fc)
		return configError("unknown functionConfig Kind=%v ApiVersion=%v, expect `ConfigMap.v1` or `SetNamespace.v1alpha1.fn.kpt.dev`", kind, apiVersion)
	}
	return nil
}

type resourceScope int

const (
	scopeUnknown resourceScope = iota
	scopeNamespaced
	scopeCluster
)

// scope decides whether a resource is namespace-scoped. Built-in kinds are
// looked up in kyaml's schema; any other kind counts as namespace-scoped only
// when it already has metadata.namespace (set-namespace's documented rule).
func scope(o *yaml.RNode) resourceScope {
	nsScoped, known := openapi.IsNamespaceScoped(yaml.TypeMeta{APIVersion: o.GetApiVersion(), Kind: o.GetKind()})
	switch {
	case known && nsScoped:
		return scopeNamespaced
	case known:
		return scopeCluster
	case o.GetNamespace() != "":
		return scopeNamespaced
	default:
		return scopeUnknown
	}
}

// upstreamOriginNamespace returns the namespace a resource had upstream, from
// the upstream-identifier annotation; ok is false when it has no upstream origin.
func upstreamOriginNamespace(o *yaml.RNode) (string, bool) {
	id, _ := yamlfast.Annotation(o, upstreamIdentifierAnnotation)
	if strings.Count(id, "|") != 3 {
		return "", false
	}
	parts := strings.Split(id, "|")
	return parts[2], true
}

// upstreamOriginName returns the name a resource had upstream, or its name.
func upstreamOriginName(o *yaml.RNode) string {
	id, _ := yamlfast.Annotation(o, upstreamIdentifierAnnotation)
	if strings.Count(id, "|") != 3 {
		return o.GetName()
	}
	parts := strings.Split(id, "|")
	return parts[3]
}

func (f *SetNamespace) visitResource(o *yaml.RNode, visit func(origin string, current *string)) error {
	switch scope(o) {
	case scopeNamespaced:
		origin, ok := upstreamOriginNamespace(o)
		if !ok {
			origin = o.GetNamespace()
			if origin == "" {
				origin = defaultNamespace
			}
		}
		current := o.GetNamespace()
		ns := current
		visit(origin, &ns)
		if ns != current {
			if err := setMetaField(o, "namespace", ns); err != nil {
				return err
			}
		}
	case scopeCluster:
		switch {
		case isGVK(o, "", "v1", "Namespace"):
			current := o.GetName()
			name := current
			visit(upstreamOriginName(o), &name)
			if name != current {
				return setMetaField(o, "name", name)
			}
		case isGVK(o, "apiextensions.k8s.io", "", "CustomResourceDefinition"):
			return visitNestedNamespace(o, visit, "spec", "conversion", "webhook", "clientConfig", "service", "namespace")
		case isGVK(o, "apiregistration.k8s.io", "", "APIService"):
			return visitNestedNamespace(o, visit, "spec", "service", "namespace")
		}
	}
	if kind := o.GetKind(); kind == "RoleBinding" || kind == "ClusterRoleBinding" {
		subjects, err := o.Pipe(yaml.Lookup("subjects"))
		if err != nil || subjects == nil {
			return err
		}
		elements, err := subjects.Elements()
		if err != nil {
			return fmt.Errorf("%s %s: subjects must be a list: %w", kind, o.GetName(), err)
		}
		for _, s := range elements {
			if s.GetKind() != "ServiceAccount" {
				continue
			}
			if err := visitNestedNamespace(s, visit, "namespace"); err != nil {
				return err
			}
		}
	}
	return nil
}

// setMetaField is RNode.SetNamespace (for a non-empty namespace) and RNode.SetName: it sets
// metadata.<field> to a plain scalar, creating metadata when needed.
func setMetaField(o *yaml.RNode, field, value string) error {
	if value == "" {
		if field == "namespace" {
			return o.SetNamespace(value)
		}
		return o.SetName(value)
	}
	if field == "namespace" {
		// SetNamespace looks metadata up first, which fails when o is not a mapping.
		if _, err := yamlfast.Lookup(o, "metadata"); err != nil {
			return err
		}
	}
	return yamlfast.SetField(o, &yaml.Node{Kind: yaml.ScalarNode, Value: value}, "metadata", field)
}

// visitNestedNamespace visits a namespace field only where it is set.
func visitNestedNamespace(o *yaml.RNode, visit func(origin string, current *string), path ...string) error {
	node, err := o.Pipe(yaml.Lookup(path...))
	if err != nil || node == nil || node.YNode().Kind != yaml.ScalarNode || node.YNode().Value == "" {
		return err
	}
	ns := node.YNode().Value
	visit("", &ns)
	node.YNode().Value = ns
	return nil
}

// dependsOnKey is the depends-on reference of a namespaced resource:
// <group>/namespaces/<namespace>/<kind>/<name>.
func dependsOnKey(o *yaml.RNode) string {
	group, _, kind := gvkOf(o)
	ns := o.GetNamespace()
	if ns == "" {
		ns = defaultNamespace
	}
	return group + "/namespaces/" + ns + "/" + kind + "/" + o.GetName()
}

// updateDependsOn rewrites the namespace segment of depends-on references to
// resources of the package whose namespace was changed.
func (f *SetNamespace) updateDependsOn(objects []*yaml.RNode, before map[string]bool) (int, []string, error) {
	count, old := 0, map[string]bool{}
	for _, o := range objects {
		value, ok := yamlfast.Annotation(o, dependsOnAnnotation)
		if !ok || value == "" {
			continue
		}
		refs := strings.Split(value, ",")
		changed := false
		for i, ref := range refs {
			ref = strings.TrimSpace(ref)
			segments := strings.Split(ref, "/")
			if len(segments) != 5 || segments[1] != "namespaces" || !before[ref] {
				continue
			}
			ns := segments[2]
			if ns == f.Namespace || (f.NamespaceMatcher != "" && f.NamespaceMatcher != ns) {
				continue
			}
			old[ns] = true
			segments[2] = f.Namespace
			refs[i] = strings.Join(segments, "/")
			changed = true
			count++
		}
		if changed {
			if err := o.PipeE(yaml.SetAnnotation(dependsOnAnnotation, strings.Join(refs, ","))); err != nil {
				return 0, nil, err
			}
		}
	}
	return count, sortedKeys(old), nil
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
