package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"kpo.dev/kpo/internal/testenv"
)

// installerObjects builds config/default as `make build-installer` does.
func installerObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	g := NewWithT(t)
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).
		Run(filesys.MakeFsOnDisk(), filepath.Join(testenv.RepoRoot(), "config", "default"))
	g.Expect(err).NotTo(HaveOccurred())
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		m, err := r.Map()
		g.Expect(err).NotTo(HaveOccurred())
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// functionNamespaced reports whether o belongs in the function namespace: the uploader's
// account and rights, the warm pods' NetworkPolicy, and the manager's rights on function Jobs and
// pods (a Role and its binding there, not cluster-wide).
func functionNamespaced(o *unstructured.Unstructured) bool {
	switch o.GetKind() + "/" + o.GetName() {
	case "ServiceAccount/kpo-fn-uploader", "Role/kpo-fn-uploader", "RoleBinding/kpo-fn-uploader",
		"NetworkPolicy/kpo-fn-warm-pods", "Role/kpo-manager-role", "RoleBinding/kpo-manager-rolebinding":
		return true
	}
	return false
}

func TestInstaller_clusterScopedObjectsHaveNoNamespace(t *testing.T) {
	g := NewWithT(t)
	clusterScoped := []string{"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"}
	kinds := map[string]int{}
	for _, o := range installerObjects(t) {
		kinds[o.GetKind()]++
		switch {
		case slices.Contains(clusterScoped, o.GetKind()):
			g.Expect(o.GetNamespace()).To(BeEmpty(), "%s %s is cluster-scoped", o.GetKind(), o.GetName())
		case functionNamespaced(o):
			g.Expect(o.GetNamespace()).To(Equal("kpo-fn"), "%s %s", o.GetKind(), o.GetName())
		default:
			g.Expect(o.GetNamespace()).To(Equal("kpo-system"), "%s %s", o.GetKind(), o.GetName())
		}
	}
	// Every policy file of config/policies is in, each a policy and its binding.
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "policies", "kustomization.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var policies struct {
		Resources []string `json:"resources"`
	}
	g.Expect(yaml.Unmarshal(raw, &policies)).To(Succeed())
	g.Expect(kinds["ValidatingAdmissionPolicy"] + kinds["MutatingAdmissionPolicy"]).To(Equal(len(policies.Resources)))
	g.Expect(kinds["ValidatingAdmissionPolicyBinding"]).To(Equal(kinds["ValidatingAdmissionPolicy"]))
	g.Expect(kinds["MutatingAdmissionPolicyBinding"]).To(Equal(kinds["MutatingAdmissionPolicy"]))
	g.Expect(kinds["CustomResourceDefinition"]).To(Equal(5))
}

func TestInstaller_managerHasProbesLeaderElectionAndMetrics(t *testing.T) {
	g := NewWithT(t)
	var dep *appsv1.Deployment
	for _, o := range installerObjects(t) {
		if o.GetKind() == "Deployment" {
			dep = &appsv1.Deployment{}
			g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, dep)).To(Succeed())
		}
	}
	g.Expect(dep).NotTo(BeNil())
	c := dep.Spec.Template.Spec.Containers[0]
	g.Expect(c.Image).To(Equal("controller:latest"), "make build-installer replaces this placeholder with IMG")
	g.Expect(c.Command).To(Equal([]string{"/manager"}), "the Dockerfile's binary")
	g.Expect(c.Args).To(ContainElements("--leader-elect", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"))
	g.Expect(c.LivenessProbe).NotTo(BeNil())
	g.Expect(c.ReadinessProbe).NotTo(BeNil())
	g.Expect(dep.Spec.Template.Spec.ServiceAccountName).To(Equal("kpo-controller-manager"))
	g.Expect(c.Args).To(ContainElement("--watch-label-selector=!kpo.dev/shard"),
		"the main instance serves the Repositories without a shard label, so shards are added without touching it")
	var cache *corev1.Volume
	for i, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "git-cache" {
			cache = &dep.Spec.Template.Spec.Volumes[i]
		}
	}
	g.Expect(cache).NotTo(BeNil())
	g.Expect(cache.EmptyDir).NotTo(BeNil())
	g.Expect(cache.EmptyDir.SizeLimit).NotTo(BeNil(), "the Git cache never fills the node's disk")
}

// config/shard adds one manager instance for one shard: a Deployment alone, with its own name and
// pods, the same identity, and its own selector.
func TestInstaller_shardOverlayAddsAManagerForOneShard(t *testing.T) {
	g := NewWithT(t)
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).
		Run(filesys.MakeFsOnDisk(), filepath.Join(testenv.RepoRoot(), "config", "shard"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resMap.Resources()).To(HaveLen(1))
	m, err := resMap.Resources()[0].Map()
	g.Expect(err).NotTo(HaveOccurred())
	dep := &appsv1.Deployment{}
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(m, dep)).To(Succeed())
	g.Expect(dep.Name).To(Equal("kpo-controller-manager-shard1"))
	g.Expect(dep.Namespace).To(Equal("kpo-system"))
	g.Expect(dep.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app.kubernetes.io/name": "kpo-shard1"}),
		"its pods are not the main instance's (app.kubernetes.io/name: kpo)")
	g.Expect(dep.Spec.Template.Labels).To(Equal(dep.Spec.Selector.MatchLabels))
	g.Expect(dep.Spec.Template.Spec.ServiceAccountName).To(Equal("kpo-controller-manager"), "the identity the admission policies exempt")
	var selectors []string
	for _, arg := range dep.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(arg, "--watch-label-selector") {
			selectors = append(selectors, arg)
		}
	}
	g.Expect(selectors).To(Equal([]string{"--watch-label-selector=kpo.dev/shard=shard1"}))
	g.Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--leader-elect"))
}

// The API server accepts every object of the installer, policies included.
func TestInstaller_appliesToTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	objs := installerObjects(t)
	// The namespace first, so the namespaced objects can be created.
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return strings.Compare(boolKey(a.GetKind() != "Namespace"), boolKey(b.GetKind() != "Namespace"))
	})
	for _, o := range objs {
		err := adminClient.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("kpo-installer-test"), client.ForceOwnership)
		g.Expect(err).NotTo(HaveOccurred(), "%s %s", o.GetKind(), o.GetName())
	}
}

func boolKey(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
