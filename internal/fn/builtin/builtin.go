// Package builtin holds trusted, in-process Go implementations of the most used
// functions of the kpt KRM functions catalog (set-namespace, set-labels,
// starlark, …). Each one is a framework.ResourceListProcessor that edits the
// kyaml RNodes of a ResourceList in place, so comments, field order and the
// kpt path/index annotations survive.
//
// Behaviour, configuration kinds and result messages follow the catalog
// functions' documentation (and, where the documentation is silent, the
// messages kpt's own end-to-end fixtures record), so a package rendered with a
// built-in reads the same as one rendered with the container image.
//
// Failure convention: when a function fails, Process returns a non-nil error
// whose message says what is wrong and how to fix it; rl.Results then holds
// everything the catalog function would have reported, including the failing
// result itself (usually with severity error).
package builtin

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/yamlfast"
)

// StderrSetter is implemented by built-ins that, like their container images,
// write free-form diagnostics to stderr (starlark's print). An evaluator sets the
// writer before Process to capture that output; without it the output is
// discarded.
type StderrSetter interface {
	SetStderr(w io.Writer)
}

// ErrNotBuiltin is returned by an evaluator asked to run in process a function that kpo has
// no built-in implementation of.
var ErrNotBuiltin = errors.New("not built in")

// ErrFunctionConfig marks failures caused by a missing or invalid function
// config, as opposed to failures found in the resources; match it with errors.Is.
var ErrFunctionConfig = errors.New("invalid function config")

// registry maps a catalog function name to a constructor. A constructor returns a
// fresh processor, so per-run state (stderr, counters) is never shared.
var registry = map[string]func() framework.ResourceListProcessor{
	"set-namespace":                 func() framework.ResourceListProcessor { return &SetNamespace{} },
	"set-labels":                    func() framework.ResourceListProcessor { return &SetLabels{} },
	"set-annotations":               func() framework.ResourceListProcessor { return &SetAnnotations{} },
	"apply-replacements":            func() framework.ResourceListProcessor { return &ApplyReplacements{} },
	"set-image":                     func() framework.ResourceListProcessor { return &SetImage{} },
	"apply-setters":                 func() framework.ResourceListProcessor { return &ApplySetters{} },
	"search-replace":                func() framework.ResourceListProcessor { return &SearchReplace{} },
	"ensure-name-substring":         func() framework.ResourceListProcessor { return &EnsureNameSubstring{} },
	"remove-local-config-resources": func() framework.ResourceListProcessor { return &RemoveLocalConfigResources{} },
	"starlark":                      func() framework.ResourceListProcessor { return NewStarlark() },
}

// Lookup returns a new instance of the built-in for an image reference. The
// built-in is keyed by the image name alone, regardless of registry prefix and
// tag or digest: gcr.io/kpt-fn/set-namespace:v0.4.1,
// ghcr.io/kptdev/krm-functions-catalog/set-namespace:latest and set-namespace
// all resolve to set-namespace.
func Lookup(image string) (framework.ResourceListProcessor, bool) {
	newFn, ok := registry[ImageName(image)]
	if !ok {
		return nil, false
	}
	return newFn(), true
}

// Names returns the names of all built-ins, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ImageName returns the last path segment of an image reference without its
// tag or digest: ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2@sha256:…
// → set-labels.
func ImageName(image string) string {
	image = strings.TrimSpace(image)
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, "/"); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.Index(image, ":"); i >= 0 {
		image = image[:i]
	}
	return image
}

const (
	fnConfigGroup      = "fn.kpt.dev"
	fnConfigAPIVersion = fnConfigGroup + "/v1alpha1"

	localConfigAnnotation = "config.kubernetes.io/local-config"
	dependsOnAnnotation   = "config.kubernetes.io/depends-on"
)

// configMeta returns the apiVersion and kind of a function config; both are empty
// when no config was given (nil, or kpt's `{}` placeholder).
func configMeta(fc *yaml.RNode) (apiVersion, kind string) {
	if isEmptyConfig(fc) {
		return "", ""
	}
	return fc.GetApiVersion(), fc.GetKind()
}

// isEmptyConfig reports whether no function config was given. kpt fn render
// passes an empty map, kpt fn eval an empty ConfigMap named function-input.
func isEmptyConfig(fc *yaml.RNode) bool {
	if fc == nil || fc.IsNilOrEmpty() {
		return true
	}
	if fc.GetKind() == "" && fc.GetName() == "" {
		return true
	}
	return fc.GetKind() == "ConfigMap" && fc.GetName() == "function-input" && len(fc.GetDataMap()) == 0
}

// isConfigMap reports whether the config is a core/v1 ConfigMap.
func isConfigMap(fc *yaml.RNode) bool {
	apiVersion, kind := configMeta(fc)
	return apiVersion == "v1" && kind == "ConfigMap"
}

// isKind reports whether the config is the function's own kind in fn.kpt.dev.
// Any version of the group is accepted so v1alpha1 and later both work.
func isKind(fc *yaml.RNode, kind string) bool {
	apiVersion, k := configMeta(fc)
	return k == kind && (apiVersion == fnConfigAPIVersion || strings.HasPrefix(apiVersion, fnConfigGroup+"/"))
}

// decodeConfig decodes a function config into v with kyaml's strict-enough decoder.
func decodeConfig(fc *yaml.RNode, v any) error {
	if err := fc.Document().Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrFunctionConfig, fc.GetKind(), err)
	}
	return nil
}

// isLocalConfig reports whether a resource is annotated
// config.kubernetes.io/local-config: "true", i.e. meant for the client side only.
func isLocalConfig(rn *yaml.RNode) bool {
	v, ok := yamlfast.Annotation(rn, localConfigAnnotation)
	return ok && strings.EqualFold(strings.TrimSpace(v), "true")
}

// fileOf returns the kpt path and index annotations of a resource for results.
func fileOf(rn *yaml.RNode) *framework.File {
	path, index, _ := kioutil.GetFileAnnotations(rn)
	if path == "" {
		return nil
	}
	f := &framework.File{Path: path}
	_, _ = fmt.Sscanf(index, "%d", &f.Index)
	return f
}

// fail records an error result on rl and returns the error Process should
// return. The message should say what is wrong and how to fix it.
func fail(rl *framework.ResourceList, err error) error {
	rl.Results = append(rl.Results, &framework.Result{Message: err.Error(), Severity: framework.Error})
	return err
}

// configError builds an ErrFunctionConfig error with a readable message.
func configError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFunctionConfig, fmt.Sprintf(format, args...))
}

// catalogConfigError is an ErrFunctionConfig whose message is exactly the catalog
// function's, without configError's prefix: for the messages a catalog recording
// pins (see testdata/catalog), so a result reads as the image's would.
type catalogConfigError string

// Error implements error.
func (e catalogConfigError) Error() string { return string(e) }

// Is makes errors.Is(err, ErrFunctionConfig) hold.
func (e catalogConfigError) Is(target error) bool { return target == ErrFunctionConfig }

// info appends an info result.
func info(rl *framework.ResourceList, format string, args ...any) {
	rl.Results = append(rl.Results, &framework.Result{Message: fmt.Sprintf(format, args...), Severity: framework.Info})
}

// gvkOf returns group, version and kind of a resource.
func gvkOf(rn *yaml.RNode) (group, version, kind string) {
	apiVersion := rn.GetApiVersion()
	if i := strings.Index(apiVersion, "/"); i >= 0 {
		group, version = apiVersion[:i], apiVersion[i+1:]
	} else {
		version = apiVersion
	}
	return group, version, rn.GetKind()
}

// isGVK matches a resource against group, version and kind; an empty group or
// version matches any, like the kpt function SDK's IsGVK.
func isGVK(rn *yaml.RNode, group, version, kind string) bool {
	g, v, k := gvkOf(rn)
	return k == kind && (group == "" || g == group) && (version == "" || v == version)
}

// commentKeeper remembers the comments of scalar nodes that a kustomize filter
// is about to overwrite (its setters replace the whole node), so they can be put
// back afterwards.
type commentKeeper map[*yaml.Node][3]string

// remember records the comments of n.
func (k commentKeeper) remember(n *yaml.RNode) {
	if n == nil || n.YNode() == nil {
		return
	}
	y := n.YNode()
	if _, seen := k[y]; !seen {
		k[y] = [3]string{y.HeadComment, y.LineComment, y.FootComment}
	}
}

// restore puts the remembered comments back where a filter dropped them.
func (k commentKeeper) restore() {
	for y, c := range k {
		if y.HeadComment == "" && y.LineComment == "" && y.FootComment == "" {
			y.HeadComment, y.LineComment, y.FootComment = c[0], c[1], c[2]
		}
	}
}
