package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/kpotest"
)

// The package the test publishes and Flux deploys; testdata's Flux objects name it.
const (
	deploymentRepo = "deployments"
	pkg            = "my-app-ns"
	appNamespace   = "my-app"
)

// The package's resources: none needs a controller (envtest runs no kube-controller-manager).
const namespaceYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: my-app
`

const serviceAccountYAML = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: my-app
  namespace: my-app
`

// A function config, as a kpt pipeline's configPath names one: local-config, so never applied.
const functionConfigYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: my-app-setters
  namespace: my-app
  annotations:
    config.kubernetes.io/local-config: "true"
data:
  app: my-app
`

func configMapYAML(greeting string) string {
	return `apiVersion: v1
kind: ConfigMap
metadata:
  name: my-app-config
  namespace: my-app
data:
  greeting: ` + greeting + `
`
}

// Inventory entries of the Kustomization (namespace_name_group_kind): what Flux applied, and
// nothing else — no Kptfile, no package-context.yaml.
var (
	namespaceEntry      = "_my-app__Namespace"
	configMapEntry      = "my-app_my-app-config__ConfigMap"
	serviceAccountEntry = "my-app_my-app__ServiceAccount"
)

// TestFlux_deploysPublishedRevisionsNeverDrafts: kpo publishes my-app-ns/v1 into a deployment
// Repository; Flux, pinned to that tag, applies it; v2 is authored and approved, and only
// moving the GitRepository to my-app-ns/v2 rolls it out; a draft is never applied; moving the
// tag back rolls back.
func TestFlux_deploysPublishedRevisionsNeverDrafts(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	gitRepo := newDeploymentRepository(t, srv, ns, deploymentRepo)

	// v1: a new package with a Namespace, a ConfigMap, a ServiceAccount and a function config,
	// approved.
	v1 := newDraft(t, ns, "my-app-ns-v1", deploymentRepo, pkg, "v1", kpov1.PackageDraftSource{Init: &kpov1.InitSource{}})
	editContent(t, ns, v1, func(d map[string]string) {
		d["namespace.yaml"] = namespaceYAML
		d["configmap.yaml"] = configMapYAML("hello-from-v1")
		d["serviceaccount.yaml"] = serviceAccountYAML
		d["setters.yaml"] = functionConfigYAML
	})
	g.Eventually(func() (string, error) {
		return gitRepo.ReadFile("refs/heads/drafts/my-app-ns/v1", "my-app-ns/configmap.yaml")
	}, kpoTimeout, interval).Should(ContainSubstring("greeting: hello-from-v1"))
	waitDraft(t, ns, v1)
	g.Expect(publish(t, ns, v1).Status.Revision).To(Equal(1))
	// The tag holds the package as kpo writes it: Kptfile and package-context.yaml included,
	// both local-config, and no kustomization.yaml.
	for _, f := range []string{"Kptfile", "package-context.yaml"} {
		content, err := gitRepo.ReadFile("refs/tags/my-app-ns/v1", "my-app-ns/"+f)
		g.Expect(err).NotTo(HaveOccurred(), f)
		g.Expect(content).To(ContainSubstring(`config.kubernetes.io/local-config: "true"`), f)
	}
	_, err := gitRepo.ReadFile("refs/tags/my-app-ns/v1", "my-app-ns/kustomization.yaml")
	g.Expect(err).To(HaveOccurred(), "the package has no kustomization.yaml")

	// The README's queries: every published revision of a deployment repository, and the
	// newest one of each package (what is ready to roll out).
	deploymentReady := func(g Gomega) []string {
		return revisionNames(g, ns, client.MatchingLabels{kpov1.DeploymentLabel: "true"},
			client.MatchingFields{"spec.lifecycle": string(kpov1.LifecyclePublished)})
	}
	readyToRollOut := func(g Gomega) []string {
		return revisionNames(g, ns, client.MatchingLabels{kpov1.DeploymentLabel: "true", kpov1.LatestRevisionLabel: "true"}, nil)
	}
	g.Eventually(readyToRollOut, kpoTimeout, interval).Should(Equal([]string{v1}))
	g.Eventually(deploymentReady, kpoTimeout, interval).Should(ContainElement(v1))

	// Flux, with the README's objects: the tag my-app-ns/v1, the package's directory.
	secret := kpotest.LoadObject(t, "testdata/flux-secret.yaml")
	source := kpotest.LoadObject(t, "testdata/flux-gitrepository.yaml")
	g.Expect(unstructured.SetNestedField(source.Object, srv.RepoURL(deploymentRepo), "spec", "url")).To(Succeed())
	kustomization := kpotest.LoadObject(t, "testdata/flux-kustomization.yaml")
	for _, obj := range []*unstructured.Unstructured{secret, source, kustomization} {
		g.Expect(k8sClient.Create(context.Background(), obj)).To(Succeed(), obj.GetName())
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), obj) })
	}

	waitApplied(t, source, kustomization, "my-app-ns/v1")
	g.Expect(greeting(g)).To(Equal("hello-from-v1"))
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: appNamespace, Name: "my-app"}, &corev1.ServiceAccount{})).To(Succeed())
	g.Expect(inventory(g, kustomization)).To(ConsistOf(namespaceEntry, configMapEntry, serviceAccountEntry))
	// The published revision shows where it is deployed, and that it is healthy.
	waitDeployedBy(t, ns, map[string]string{v1: "my-app-ns/v1"})
	expectNoLocalConfigApplied(g)

	// v2: a copy of v1 with a new greeting and without the ServiceAccount.
	v2 := newDraft(t, ns, "my-app-ns-v2", deploymentRepo, pkg, "v2", kpov1.PackageDraftSource{Copy: &kpov1.CopySource{SourceRef: kpov1.LocalReference{Name: v1}}})
	editContent(t, ns, v2, func(d map[string]string) {
		d["configmap.yaml"] = configMapYAML("hello-from-v2")
		delete(d, "serviceaccount.yaml")
	})
	g.Eventually(func() (string, error) {
		return gitRepo.ReadFile("refs/heads/drafts/my-app-ns/v2", "my-app-ns/configmap.yaml")
	}, kpoTimeout, interval).Should(ContainSubstring("greeting: hello-from-v2"))
	waitDraft(t, ns, v2)
	// While v2 is a draft, Flux reconciles again and still applies v1.
	reconcileNow(t, source, kustomization, "my-app-ns/v1")
	g.Expect(greeting(g)).To(Equal("hello-from-v1"), "a draft was applied")

	g.Expect(publish(t, ns, v2).Status.Revision).To(Equal(2))
	g.Eventually(readyToRollOut, kpoTimeout, interval).Should(Equal([]string{v2}))
	g.Eventually(deploymentReady, kpoTimeout, interval).Should(ContainElements(v1, v2))
	// Published is not deployed: the GitRepository is pinned to my-app-ns/v1.
	reconcileNow(t, source, kustomization, "my-app-ns/v1")
	g.Expect(greeting(g)).To(Equal("hello-from-v1"), "the pinned tag was not honoured")

	// Roll out v2: move the GitRepository to its tag.
	kpotest.MergePatch(g, k8sClient, source, `{"spec":{"ref":{"tag":"my-app-ns/v2"}}}`)
	waitApplied(t, source, kustomization, "my-app-ns/v2")
	g.Eventually(greeting, fluxTimeout, interval).Should(Equal("hello-from-v2"))
	waitDeployedBy(t, ns, map[string]string{v1: "", v2: "my-app-ns/v2"})
	g.Eventually(func() bool {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: appNamespace, Name: "my-app"}, &corev1.ServiceAccount{})
		return apierrors.IsNotFound(err)
	}, fluxTimeout, interval).Should(BeTrue(), "prune removes what v2 dropped")
	g.Expect(inventory(g, kustomization)).To(ConsistOf(namespaceEntry, configMapEntry))
	expectNoLocalConfigApplied(g)

	// A draft with a distinctive value, committed on drafts/my-app-ns/next, is never applied.
	const draftValue = "draft-must-never-be-applied"
	next := newDraft(t, ns, "my-app-ns-next", deploymentRepo, pkg, "next", kpov1.PackageDraftSource{Copy: &kpov1.CopySource{SourceRef: kpov1.LocalReference{Name: v2}}})
	editContent(t, ns, next, func(d map[string]string) { d["configmap.yaml"] = configMapYAML(draftValue) })
	g.Eventually(func() (string, error) {
		return gitRepo.ReadFile("refs/heads/drafts/my-app-ns/next", "my-app-ns/configmap.yaml")
	}, kpoTimeout, interval).Should(ContainSubstring(draftValue))
	waitDraft(t, ns, next)
	g.Expect(readyToRollOut(g)).To(Equal([]string{v2}), "a draft is not ready to roll out")
	reconcileNow(t, source, kustomization, "my-app-ns/v2")
	// And over three more Flux intervals, while the draft exists.
	g.Consistently(func(g Gomega) {
		g.Expect(greeting(g)).To(Equal("hello-from-v2"))
		applied, _, _ := unstructured.NestedString(kpotest.GetObject(g, k8sClient, kustomization).Object, "status", "lastAppliedRevision")
		g.Expect(applied).To(HavePrefix("my-app-ns/v2@"))
		g.Expect(flux.running()).To(Succeed())
	}, 35*time.Second, time.Second).Should(Succeed())
	g.Expect(getRevision(g, ns, next).Status.Lifecycle).To(Equal(kpov1.LifecycleDraft), "the draft still exists")

	// Roll back: the GitRepository back to my-app-ns/v1 restores v1, ServiceAccount included.
	kpotest.MergePatch(g, k8sClient, source, `{"spec":{"ref":{"tag":"my-app-ns/v1"}}}`)
	waitApplied(t, source, kustomization, "my-app-ns/v1")
	g.Eventually(greeting, fluxTimeout, interval).Should(Equal("hello-from-v1"))
	waitDeployedBy(t, ns, map[string]string{v1: "my-app-ns/v1", v2: ""})
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: appNamespace, Name: "my-app"}, &corev1.ServiceAccount{})).To(Succeed())
}

// waitDeployedBy waits until each revision's status.deployments names the README's
// Kustomization, Ready, at the tag given for it — or nothing, for "".
func waitDeployedBy(t testing.TB, ns string, tags map[string]string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		for name, tag := range tags {
			deployments := getRevision(g, ns, name).Status.Deployments
			if tag == "" {
				g.Expect(deployments).To(BeEmpty(), name)
				continue
			}
			g.Expect(deployments).To(HaveLen(1), name)
			d := deployments[0]
			g.Expect([]string{d.Kind, d.Namespace, d.Name}).To(Equal([]string{"Kustomization", "flux-system", "my-app-ns"}), name)
			g.Expect(d.Revision).To(HavePrefix(tag+"@sha1:"), name)
			g.Expect(d.Ready).To(Equal(metav1.ConditionTrue), "%s: %s", name, d.Message)
		}
	}, kpoTimeout, interval).Should(Succeed())
}

// greeting is the greeting of the deployed ConfigMap, or "" while there is none.
func greeting(g Gomega) string {
	cm := &corev1.ConfigMap{}
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: appNamespace, Name: "my-app-config"}, cm)
	if apierrors.IsNotFound(err) {
		return ""
	}
	g.Expect(err).NotTo(HaveOccurred())
	return cm.Data["greeting"]
}

// waitApplied waits until the GitRepository's artifact is tag (tag@sha1:…) and the
// Kustomization has applied it and is Ready.
func waitApplied(t testing.TB, source, kustomization *unstructured.Unstructured, tag string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(flux.running()).To(Succeed())
		src := kpotest.GetObject(g, k8sClient, source)
		status, msg := readyCondition(g, src)
		g.Expect(status).To(Equal("True"), "GitRepository: "+msg)
		rev, _, _ := unstructured.NestedString(src.Object, "status", "artifact", "revision")
		g.Expect(rev).To(HavePrefix(tag+"@sha1:"), "GitRepository artifact")

		k := kpotest.GetObject(g, k8sClient, kustomization)
		status, msg = readyCondition(g, k)
		g.Expect(status).To(Equal("True"), "Kustomization: "+msg)
		applied, _, _ := unstructured.NestedString(k.Object, "status", "lastAppliedRevision")
		g.Expect(applied).To(Equal(rev), "Kustomization lastAppliedRevision")
	}, fluxTimeout, interval).Should(Succeed())
}

// reconcileNow asks Flux to reconcile the GitRepository and then the Kustomization at once (as
// `flux reconcile kustomization --with-source` does), waits until both handled the request,
// and checks they still serve and apply tag.
func reconcileNow(t testing.TB, source, kustomization *unstructured.Unstructured, tag string) {
	t.Helper()
	g := NewWithT(t)
	for _, obj := range []*unstructured.Unstructured{source, kustomization} {
		requested := time.Now().Format(time.RFC3339Nano)
		kpotest.MergePatch(g, k8sClient, obj, fmt.Sprintf(`{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":%q}}}`, requested))
		g.Eventually(func(g Gomega) {
			g.Expect(flux.running()).To(Succeed())
			cur := kpotest.GetObject(g, k8sClient, obj)
			handled, _, _ := unstructured.NestedString(cur.Object, "status", "lastHandledReconcileAt")
			g.Expect(handled).To(Equal(requested), obj.GetKind()+" has not handled the reconcile request")
			status, msg := readyCondition(g, cur)
			g.Expect(status).To(Equal("True"), obj.GetKind()+": "+msg)
		}, fluxTimeout, interval).Should(Succeed())
	}
	waitApplied(t, source, kustomization, tag)
}

// inventory is the Kustomization's inventory: the ids of the objects it applied.
func inventory(g Gomega, kustomization *unstructured.Unstructured) []string {
	entries, _, err := unstructured.NestedSlice(kpotest.GetObject(g, k8sClient, kustomization).Object, "status", "inventory", "entries")
	g.Expect(err).NotTo(HaveOccurred())
	var ids []string
	for _, e := range entries {
		m, _ := e.(map[string]any)
		id, _ := m["id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// expectNoLocalConfigApplied checks that neither package-context.yaml (a ConfigMap named
// kptfile.kpt.dev) nor the function config reached the cluster. The Kptfile could not have:
// kpt.dev is no API of the cluster, so applying it would have failed the Kustomization.
func expectNoLocalConfigApplied(g Gomega) {
	cms := &corev1.ConfigMapList{}
	g.Expect(k8sClient.List(context.Background(), cms)).To(Succeed())
	for _, cm := range cms.Items {
		g.Expect(cm.Name).NotTo(Equal("kptfile.kpt.dev"), "package-context.yaml was applied in namespace %s", cm.Namespace)
		g.Expect(cm.Name).NotTo(Equal("my-app-setters"), "the function config was applied in namespace %s", cm.Namespace)
	}
}
