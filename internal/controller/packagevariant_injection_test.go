package controller_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// workloadClusterGVK is a custom resource kind of the kind Nephio injects into its cluster
// packages (infra.nephio.org's WorkloadCluster), defined by the test.
var workloadClusterGVK = schema.GroupVersionKind{Group: "infra.example.com", Version: "v1alpha1", Kind: "WorkloadCluster"}

// clusterInjectionPoint is a blueprint resource filled from a WorkloadCluster in the cluster.
const clusterInjectionPoint = "apiVersion: infra.example.com/v1alpha1\nkind: WorkloadCluster\nmetadata:\n  name: cluster\n" +
	"  annotations:\n    kpt.dev/config-injection: required\n    config.kubernetes.io/local-config: \"true\"\n" +
	"spec:\n  clusterName: unset\n"

// ensureWorkloadClusterCRD installs the WorkloadCluster CRD once and waits until it is served.
func ensureWorkloadClusterCRD(t *testing.T) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "workloadclusters." + workloadClusterGVK.Group},
		"spec": map[string]any{
			"group": workloadClusterGVK.Group,
			"scope": "Namespaced",
			"names": map[string]any{"kind": workloadClusterGVK.Kind, "listKind": workloadClusterGVK.Kind + "List",
				"plural": "workloadclusters", "singular": "workloadcluster"},
			"versions": []any{map[string]any{
				"name": workloadClusterGVK.Version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type": "object", "x-kubernetes-preserve-unknown-fields": true,
					}},
				}},
			}},
		},
	}}
	g := NewWithT(t)
	if err := k8sClient.Create(context.Background(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
		g.Expect(err).NotTo(HaveOccurred())
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(workloadClusterGVK.GroupVersion().WithKind(workloadClusterGVK.Kind + "List"))
	g.Eventually(func() error { return k8sClient.List(context.Background(), list, client.Limit(1)) }, timeout, interval).Should(Succeed())
}

func TestPackageVariant_injectsACustomResourceIntoTheDownstream(t *testing.T) {
	g := NewWithT(t)
	ensureWorkloadClusterCRD(t)
	ns, _ := newVariantFixture(t)
	newDraft(t, ns, "cluster-v1", "blueprints", "cluster", "v1", initSource("cluster"))
	blueprint := waitDraft(t, ns, "cluster-v1")
	editAndWait(t, ns, blueprint, func(d map[string]string) { d["cluster.yaml"] = clusterInjectionPoint })
	publish(t, ns, blueprint)

	east := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{"clusterName": "east-1", "cnis": []any{"macvlan", "sriov"}},
	}}
	east.SetGroupVersionKind(workloadClusterGVK)
	east.SetNamespace(ns)
	east.SetName("east")
	g.Expect(k8sClient.Create(context.Background(), east)).To(Succeed())

	newVariant(t, k8sClient, ns, "east-cluster", func(pv *kpov1.PackageVariant) {
		pv.Spec.Upstream.Package = "cluster"
		pv.Spec.Injectors = []kpov1.InjectionSelector{
			// An injector of another kind is passed over for this point.
			{Kind: ptr("ConfigMap"), Name: "east"},
			{Group: ptr(workloadClusterGVK.Group), Kind: ptr(workloadClusterGVK.Kind), Name: "east"},
		}
	})

	name := variantTarget(t, ns, "east-cluster")
	pr := waitLifecycle(t, ns, name, kpov1.LifecycleDraft)
	gate := "config.injection.WorkloadCluster.cluster"
	g.Expect(pr.Spec.ReadinessGates).To(ContainElement(kpov1.ReadinessGate{ConditionType: gate}), "a required injection point gates the proposal")
	g.Eventually(func(g Gomega) {
		cond := meta.FindStatusCondition(getRevision(g, ns, name).Status.Conditions, gate)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), cond.Message)
	}, timeout, interval).Should(Succeed())
	cluster := contentOf(g, ns, name).Data["cluster.yaml"]
	g.Expect(cluster).To(ContainSubstring("clusterName: east-1"), "the custom resource's spec replaces the point's")
	g.Expect(cluster).To(ContainSubstring("- sriov"))
	g.Expect(cluster).NotTo(ContainSubstring("unset"))
	g.Expect(cluster).To(ContainSubstring("kpt.dev/injected-resource-name: east"))
}
