package builtin

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// krmfnModuleFile is the name scripts load the KRM helpers by: load("krmfn.star", "krmfn").
const krmfnModuleFile = "krmfn.star"

// krmfnModule is the helper library the catalog's starlark function offers as krmfn.star.
// Each helper takes a resource (a dict, as found in ctx.resource_list["items"]) and returns
// a bool; arguments are positional only, as in the catalog:
//
//   - match_gvk(resource, apiVersion, kind): the resource's apiVersion and kind are the
//     given ones; an empty apiVersion or kind matches any.
//   - match_name(resource, name): metadata.name is name.
//   - match_namespace(resource, namespace): metadata.namespace is namespace; a resource
//     without one matches "".
//
// A field that is missing or not a string reads as "".
var krmfnModule = &starlarkstruct.Module{
	Name: "krmfn",
	Members: starlark.StringDict{
		"match_gvk":       starlark.NewBuiltin("match_gvk", krmfnMatchGVK),
		"match_name":      starlark.NewBuiltin("match_name", krmfnMatchName),
		"match_namespace": starlark.NewBuiltin("match_namespace", krmfnMatchNamespace),
	},
}

func krmfnMatchGVK(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var resource starlark.Value
	var apiVersion, kind string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 3, &resource, &apiVersion, &kind); err != nil {
		return nil, err
	}
	r, err := krmfnResource(b, resource)
	if err != nil {
		return nil, err
	}
	gotAPIVersion, gotKind := krmfnField(r, "apiVersion"), krmfnField(r, "kind")
	return starlark.Bool((apiVersion == "" || gotAPIVersion == apiVersion) && (kind == "" || gotKind == kind)), nil
}

func krmfnMatchName(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return krmfnMatchMetadata(b, args, kwargs, "name")
}

func krmfnMatchNamespace(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return krmfnMatchMetadata(b, args, kwargs, "namespace")
}

// krmfnMatchMetadata compares metadata.<field> of the resource with the second argument.
func krmfnMatchMetadata(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, field string) (starlark.Value, error) {
	var resource starlark.Value
	var want string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &resource, &want); err != nil {
		return nil, err
	}
	r, err := krmfnResource(b, resource)
	if err != nil {
		return nil, err
	}
	var got string
	if metadata, ok := krmfnValue(r, "metadata").(starlark.Mapping); ok {
		got = krmfnField(metadata, field)
	}
	return starlark.Bool(got == want), nil
}

// krmfnResource checks that a helper was given a resource: a mapping (a dict).
func krmfnResource(b *starlark.Builtin, v starlark.Value) (starlark.Mapping, error) {
	m, ok := v.(starlark.Mapping)
	if !ok {
		return nil, fmt.Errorf("%s: got %s for the resource, want a dict such as an item of ctx.resource_list[\"items\"]", b.Name(), v.Type())
	}
	return m, nil
}

// krmfnValue returns m[key], or nil when it is missing.
func krmfnValue(m starlark.Mapping, key string) starlark.Value {
	v, found, err := m.Get(starlark.String(key))
	if err != nil || !found {
		return nil
	}
	return v
}

// krmfnField returns the string m[key], or "" when it is missing or not a string.
func krmfnField(m starlark.Mapping, key string) string {
	s, _ := krmfnValue(m, key).(starlark.String)
	return string(s)
}
