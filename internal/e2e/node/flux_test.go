package node_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/kpotest"
)

const (
	// fluxNamespace holds Flux's controllers (testdata/flux) and the README's Flux objects.
	fluxNamespace = "flux-system"
	// fluxPackage is the package the README's GitRepository and Kustomization deploy
	// (internal/e2e/testdata); it holds a Namespace, a ConfigMap and, in v1, a ServiceAccount.
	fluxPackage      = "my-app-ns"
	fluxAppNamespace = "my-app"
)

// fluxControllers are the Deployments of testdata/flux, each running the image of the same
// name that hack/node/images.sh builds from hack/flux-assets.sh's binaries.
var fluxControllers = []string{"source-controller", "kustomize-controller"}

// installFlux applies Flux's CRDs (the crd/ directory of hack/flux-assets.sh, which
// hack/node/cluster.sh names in $KPO_NODE_FLUX_ASSETS) and testdata/flux: the namespace and
// both controllers' accounts, roles and Deployments. It does not wait for their pods.
func installFlux() error {
	assets := os.Getenv("KPO_NODE_FLUX_ASSETS")
	if assets == "" {
		return errors.New("KPO_NODE_FLUX_ASSETS is unset: hack/node/cluster.sh run sets it")
	}
	crds := filepath.Join(assets, "crd")
	if _, err := kubectl("", "apply", "--server-side", "--field-manager=kpo-e2e", "-f", crds); err != nil {
		return err
	}
	if _, err := kubectl("", "wait", "--for=condition=Established", "-f", crds, "--timeout=60s"); err != nil {
		return err
	}
	_, err := kubectl("", "apply", "--server-side", "--field-manager=kpo-e2e", "-k", filepath.Join("testdata", "flux"))
	return err
}

// dumpFluxLogs keeps the Flux controllers' logs beside the manager's ($KPO_NODE_DIR/logs).
func dumpFluxLogs() {
	out, _ := kubectl("", "-n", fluxNamespace, "logs", "-l", "app in (source-controller,kustomize-controller)",
		"--all-containers", "--prefix", "--tail=-1")
	_ = os.WriteFile(filepath.Join(nodeDir, "logs", "flux.log"), []byte(out), 0o600)
}

// TestFlux_podsDeployPublishedRevisionsAndStatusFollows: Flux's source-controller and
// kustomize-controller run as pods of the node beside the installed kpo manager. alice and bob
// publish package my-app-ns as v1 with kpoctl into a deployment Repository; the README's
// GitRepository, pinned to tag my-app-ns/v1, and Kustomization deploy it into the cluster, and
// the revision's status.deployments (and `kubectl get rpkg -o wide`, as alice) shows the
// Kustomization Ready at my-app-ns/v1. v2 is published, the GitRepository moved to its tag: v2
// is deployed (what it dropped pruned) and listed, v1 no longer. Moving the tag back to v1
// rolls back, and the status follows again.
func TestFlux_podsDeployPublishedRevisionsAndStatusFollows(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(fluxInstallErr).NotTo(HaveOccurred(), "installing Flux")
	for _, c := range fluxControllers {
		if _, err := kubectl("", "-n", fluxNamespace, "rollout", "status", "deployment/"+c, "--timeout=120s"); err != nil {
			out, _ := kubectl("", "-n", fluxNamespace, "describe", "pods", "-l", "app="+c)
			g.Expect(err).NotTo(HaveOccurred(), out)
		}
	}

	srv, err := startGitServer(t)
	g.Expect(err).NotTo(HaveOccurred())
	gitRepo := createGitRepo(g, srv, "deployments")
	ns := newNamespace(t, "kpo-flux-")
	alice := newUser(t, "alice", ns, "kpo-author", "kpo-repository-admin")
	bob := newUser(t, "bob", ns, "kpo-approver")
	must := func(kubeconfig string, args ...string) {
		t.Helper()
		out, err := runKpoctl(t, ns, kubeconfig, args...)
		g.Expect(err).NotTo(HaveOccurred(), out)
	}

	must(alice, "repo", "reg", srv.RepoURL("deployments"), "--deployment", "--repo-basic-username", gitUser, "--repo-basic-password", gitPassword)
	// publish creates a draft (workspace ws) with the kpoctl command create, writes files into
	// it (an empty content removes the file), and proposes it as alice and approves it as bob.
	publish := func(ws string, create []string, files map[string]string) string {
		t.Helper()
		rev := "deployments." + fluxPackage + "." + ws
		must(alice, create...)
		dir := filepath.Join(t.TempDir(), ws)
		must(alice, "rpkg", "pull", rev, dir)
		for name, content := range files {
			path := filepath.Join(dir, name)
			if content == "" {
				g.Expect(os.Remove(path)).To(Succeed())
				continue
			}
			g.Expect(os.WriteFile(path, []byte(content), 0o600)).To(Succeed())
		}
		must(alice, "rpkg", "push", rev, dir)
		must(alice, "rpkg", "propose", rev)
		must(bob, "rpkg", "approve", rev)
		return rev
	}
	v1 := publish("v1", []string{"rpkg", "init", fluxPackage, "--repository", "deployments", "--workspace", "v1"}, map[string]string{
		"namespace.yaml":      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + fluxAppNamespace + "\n",
		"configmap.yaml":      appConfigMap("hello-from-v1"),
		"serviceaccount.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: my-app\n  namespace: " + fluxAppNamespace + "\n",
	})
	waitTag(g, gitRepo, fluxPackage, "v1")

	// The README's Flux objects, on this node's Git server and with its credentials.
	secret := kpotest.LoadObject(t, "../testdata/flux-secret.yaml")
	g.Expect(unstructured.SetNestedField(secret.Object, gitPassword, "stringData", "password")).To(Succeed())
	source := kpotest.LoadObject(t, "../testdata/flux-gitrepository.yaml")
	g.Expect(unstructured.SetNestedField(source.Object, srv.RepoURL("deployments"), "spec", "url")).To(Succeed())
	kustomization := kpotest.LoadObject(t, "../testdata/flux-kustomization.yaml")
	for _, obj := range []*unstructured.Unstructured{secret, source, kustomization} {
		g.Expect(k8sClient.Create(ctx, obj)).To(Succeed(), obj.GetName())
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), obj) })
	}
	// The Kustomization goes first (its finalizer prunes what it applied), then the source.
	t.Cleanup(func() { waitGone(t, kustomization) })

	expectDeployed := func(greeting string, serviceAccount bool) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: fluxAppNamespace, Name: "my-app-config"}, cm)).To(Succeed())
			g.Expect(cm.Data).To(HaveKeyWithValue("greeting", greeting))
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: fluxAppNamespace, Name: "my-app"}, &corev1.ServiceAccount{})
			if serviceAccount {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the ServiceAccount v2 dropped is pruned: %v", err)
			}
		}, fluxTimeout, interval).Should(Succeed())
	}

	// v1, deployed by Flux's pods, and shown deployed.
	waitDeployedBy(t, ns, map[string]string{v1: "my-app-ns/v1"})
	expectDeployed("hello-from-v1", true)
	// kpoctl init wrote package-context.yaml (a ConfigMap, local-config): in the tag, never
	// applied.
	packageContext, err := gitRepo.ReadFile("refs/tags/my-app-ns/v1", "my-app-ns/package-context.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(packageContext).To(ContainSubstring("name: kptfile.kpt.dev"))
	cms := &corev1.ConfigMapList{}
	g.Expect(k8sClient.List(ctx, cms)).To(Succeed())
	for _, cm := range cms.Items {
		g.Expect(cm.Name).NotTo(Equal("kptfile.kpt.dev"), "package-context.yaml was applied in namespace %s", cm.Namespace)
	}
	out, err := kubectl(alice, "get", "rpkg", v1, "-o", "wide")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(column(out, "DEPLOYED-BY")).To(Equal(fluxPackage), out)

	// v2: a copy of v1 with a new greeting and without the ServiceAccount, published; then
	// rolled out by moving the GitRepository to its tag.
	v2 := publish("v2", []string{"rpkg", "copy", v1, "--workspace", "v2"}, map[string]string{
		"configmap.yaml":      appConfigMap("hello-from-v2"),
		"serviceaccount.yaml": "",
	})
	waitTag(g, gitRepo, fluxPackage, "v2")
	// Published is not deployed: the GitRepository is still pinned to v1.
	waitDeployedBy(t, ns, map[string]string{v1: "my-app-ns/v1", v2: ""})
	kpotest.MergePatch(g, k8sClient, source, `{"spec":{"ref":{"tag":"my-app-ns/v2"}}}`)
	waitDeployedBy(t, ns, map[string]string{v1: "", v2: "my-app-ns/v2"})
	expectDeployed("hello-from-v2", false)

	// Roll back: the GitRepository back to v1.
	kpotest.MergePatch(g, k8sClient, source, `{"spec":{"ref":{"tag":"my-app-ns/v1"}}}`)
	waitDeployedBy(t, ns, map[string]string{v1: "my-app-ns/v1", v2: ""})
	expectDeployed("hello-from-v1", true)

	// Both controllers ran as installed, without a restart, and kustomize-controller fetched
	// the artifacts from source-controller's pod address.
	podIPs := map[string]string{}
	for _, c := range fluxControllers {
		list := &corev1.PodList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(fluxNamespace), client.MatchingLabels{"app": c})).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1), c)
		s := containerStatus(&list.Items[0], "manager")
		g.Expect(s).NotTo(BeNil(), c)
		g.Expect(s.RestartCount).To(BeZero(), c)
		podIPs[c] = list.Items[0].Status.PodIP
	}
	artifact, _, _ := unstructured.NestedString(kpotest.GetObject(g, k8sClient, source).Object, "status", "artifact", "url")
	g.Expect(artifact).To(HavePrefix("http://"+podIPs["source-controller"]+":9090/"), "the artifact's address")
}

// fluxTimeout bounds a step that waits on Flux: a GitRepository or Kustomization reconciles at
// once when its spec or its source changes, and every 10 s otherwise (with retries).
const fluxTimeout = 2 * timeout

func appConfigMap(greeting string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: my-app-config\n  namespace: " + fluxAppNamespace +
		"\ndata:\n  greeting: " + greeting + "\n"
}

// waitTag waits for kpo's tag of revision v of package pkg.
func waitTag(g Gomega, repo *gitserver.Repo, pkg, v string) {
	g.Eventually(func() error {
		_, err := repo.RefHash("refs/tags/" + pkg + "/" + v)
		return err
	}, timeout, interval).Should(Succeed())
}

// waitDeployedBy waits until each revision's status.deployments lists the README's
// Kustomization alone, Ready, at the tag given for it and the commit the revision was published
// as — or nothing, for "".
func waitDeployedBy(t *testing.T, ns string, tags map[string]string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		for name, tag := range tags {
			pr := &kpov1.PackageRevision{}
			g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pr)).To(Succeed())
			if tag == "" {
				g.Expect(pr.Status.Deployments).To(BeEmpty(), name)
				continue
			}
			g.Expect(pr.Status.Deployments).To(HaveLen(1), name)
			d := pr.Status.Deployments[0]
			g.Expect([]string{d.Kind, d.Namespace, d.Name}).To(Equal([]string{"Kustomization", fluxNamespace, fluxPackage}), name)
			g.Expect(pr.Status.Commit).NotTo(BeEmpty(), name)
			g.Expect(d.Revision).To(Equal(tag+"@sha1:"+pr.Status.Commit), name)
			g.Expect(d.Ready).To(Equal(metav1.ConditionTrue), "%s: %s", name, d.Message)
		}
	}, fluxTimeout, interval).Should(Succeed())
}

// waitGone deletes obj and waits until it no longer exists (its finalizers ran).
func waitGone(t *testing.T, obj *unstructured.Unstructured) {
	t.Helper()
	_ = k8sClient.Delete(context.Background(), obj)
	NewWithT(t).Eventually(func() bool {
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(obj.GroupVersionKind())
		return apierrors.IsNotFound(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), cur))
	}, fluxTimeout, interval).Should(BeTrue(), "%s %s is gone", obj.GetKind(), obj.GetName())
}

// column is the value in column header of the one row of kubectl's table out ("" when the
// header is missing): kubectl aligns each column's values under its header.
func column(out, header string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 {
		return ""
	}
	i := strings.Index(lines[0], header)
	if i < 0 || (i > 0 && lines[0][i-1] != ' ') || i >= len(lines[1]) {
		return ""
	}
	fields := strings.Fields(lines[1][i:])
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}
