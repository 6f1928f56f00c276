package kpotest

import (
	"context"
	"os"
	"testing"

	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// LoadObject reads the one object of a YAML file (a README example in testdata, say).
func LoadObject(t testing.TB, file string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(file) //nolint:gosec // G304: a file of the test's own tree
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &obj.Object); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return obj
}

// GetObject reads the current state of obj (group, version, kind, namespace and name).
func GetObject(g gomega.Gomega, c client.Client, obj *unstructured.Unstructured) *unstructured.Unstructured {
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(obj.GroupVersionKind())
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(obj), cur)).To(gomega.Succeed())
	return cur
}

// MergePatch applies a JSON merge patch to the object obj names.
func MergePatch(g gomega.Gomega, c client.Client, obj *unstructured.Unstructured, patch string) {
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(obj.GroupVersionKind())
	cur.SetNamespace(obj.GetNamespace())
	cur.SetName(obj.GetName())
	g.Expect(c.Patch(context.Background(), cur, client.RawPatch("application/merge-patch+json", []byte(patch)))).To(gomega.Succeed())
}
