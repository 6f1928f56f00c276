package scale

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The small custom resource the lists compare with: a kind defined by a CRD with one short spec
// field and no printer columns, the least any custom resource costs the API server (stored as
// JSON, kept decoded as unstructured maps, converted for tables field by field).
var smallGVK = schema.GroupVersionKind{Group: "bench.kpo.dev", Version: "v1", Kind: "SmallObject"}

const smallPlural = "smallobjects"

// createSmallCRD installs the small custom resource's CRD and waits until the API server serves it.
func createSmallCRD(ctx context.Context, c client.Client) error {
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": smallPlural + "." + smallGVK.Group},
		"spec": map[string]any{
			"group": smallGVK.Group,
			"scope": "Namespaced",
			"names": map[string]any{"kind": smallGVK.Kind, "listKind": smallGVK.Kind + "List", "plural": smallPlural, "singular": "smallobject"},
			"versions": []any{map[string]any{
				"name": smallGVK.Version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type":       "object",
						"properties": map[string]any{"value": map[string]any{"type": "string"}},
					}},
				}},
			}},
		},
	}}
	if err := c.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the small custom resource's CRD: %w", err)
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(smallGVK.GroupVersion().WithKind(smallGVK.Kind + "List"))
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		return c.List(ctx, list, client.InNamespace(SmallNamespace), client.Limit(1)) == nil, nil
	})
}

// smallObject is the i-th small custom resource.
func smallObject(i int) client.Object {
	obj := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"value": strconv.Itoa(i)}}}
	obj.SetGroupVersionKind(smallGVK)
	obj.SetNamespace(SmallNamespace)
	obj.SetName("small-" + strconv.Itoa(i))
	return obj
}
