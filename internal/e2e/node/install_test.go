package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/testenv"
)

// TestInstalled_managerPodRunsAsInstalled: the manager installed from dist/install.yaml runs as
// a pod of the restricted kpo-system namespace with its own service account, a read-only root
// filesystem and its Git cache on an emptyDir, passes its probes, and holds the leader Lease.
// The kernel's view of its process agrees.
func TestInstalled_managerPodRunsAsInstalled(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pod := managerPods(g)[0]
	g.Expect(pod.Spec.ServiceAccountName).To(Equal("kpo-controller-manager"))
	c := containerByName(pod, "manager")
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.Image).To(Equal(kpoImage))
	g.Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
	g.Expect(c.Args).To(ContainElement("--function-wrapper-image=" + kpoImage))
	var cacheVolume string
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/var/cache/kpo" {
			cacheVolume = m.Name
		}
	}
	g.Expect(cacheVolume).NotTo(BeEmpty(), "the Git cache is a volume")
	for _, v := range pod.Spec.Volumes {
		if v.Name == cacheVolume {
			g.Expect(v.EmptyDir).NotTo(BeNil())
		}
	}
	s := containerStatus(pod, "manager")
	g.Expect(s.Ready).To(BeTrue(), "the readiness probe passes")
	g.Expect(s.RestartCount).To(BeZero(), "the liveness probe never failed")
	// What the kubelet probes, and the metrics Service's port, answer on the pod's address.
	for _, path := range []string{":8081/healthz", ":8081/readyz", ":8080/metrics"} {
		body, err := httpGet("http://" + pod.Status.PodIP + path)
		g.Expect(err).NotTo(HaveOccurred(), path)
		if strings.HasSuffix(path, "metrics") {
			g.Expect(body).To(ContainSubstring("controller_runtime_reconcile_total"))
		}
	}
	// config/functions came with the installer: the function namespace and the warm pods'
	// NetworkPolicy.
	np := &networkingv1.NetworkPolicy{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: functionNamespace, Name: "kpo-fn-warm-pods"}, np)).To(Succeed())
	g.Expect(np.Spec.PolicyTypes).To(ContainElement(networkingv1.PolicyTypeEgress))

	p := expectRestrictedProcesses(g, s.ContainerID)[0]
	g.Expect(p.cmdline).To(HavePrefix("/manager"))
	g.Expect(hasOption(p.mounts["/var/cache/kpo"], "rw")).To(BeTrue(), "the cache is writable")

	lease := &coordinationv1.Lease{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: controller.LeaderElectionID(nil)}, lease)).To(Succeed())
	g.Expect(lease.Spec.HolderIdentity).To(HaveValue(HavePrefix(pod.Name)))
}

// TestInstalled_tourAsAuthorAndApprover runs the README's kpoctl tour against the installed
// manager, as two users with client certificates and nothing but kpo's roles: alice
// (kpo-author and kpo-repository-admin) registers the repositories, clones the blueprint,
// edits it and adds two functions, one that runs as a Job and starlark (in the manager's
// sandbox), and proposes; she cannot approve; bob
// (kpo-approver) approves. Git ends with tag my-app/v1 holding the rendered edit, and the
// revision says bob published it. Then the README's kubectl-only way, as the same users: a
// PackageDraft from config/samples, a patch of its content, propose; alice's approval is
// refused, bob's publishes; published content, requested by an annotation, is read-only.
func TestInstalled_tourAsAuthorAndApprover(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newSamplesFixture(t, "kpo-tour-")
	ns, alice, bob, deployments := f.ns, f.alice, f.bob, f.deployments
	kpoctl := func(kubeconfig string, args ...string) (string, error) {
		return runKpoctl(t, ns, kubeconfig, args...)
	}
	must := func(kubeconfig string, args ...string) {
		t.Helper()
		f.kpoctl(t, kubeconfig, args...)
	}

	must(alice, "rpkg", "clone", "blueprints.basens.v1", "my-app", "--repository", "deployments", "--workspace", "first")
	dir := filepath.Join(t.TempDir(), "my-app")
	must(alice, "rpkg", "pull", "deployments.my-app.first", dir)
	// The edit: a new name, one more resource, and a pipeline whose function runs as a Job.
	edit := func(name string, change func(string) string) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			g.Expect(err).NotTo(HaveOccurred())
		}
		g.Expect(os.WriteFile(filepath.Join(dir, name), []byte(change(string(data))), 0o600)).To(Succeed())
	}
	edit("namespace.yaml", func(s string) string { return strings.Replace(s, "name: example", "name: my-app", 1) })
	edit("app.yaml", func(string) string { return appYAML })
	edit("Kptfile", func(s string) string {
		return strings.TrimRight(s, "\n") + "\npipeline:\n" + mutator(setNamespaceImage, "my-app") + starlarkMutator
	})
	pushed := time.Now()
	must(alice, "rpkg", "push", "deployments.my-app.first", dir)

	// Rendered by a Job the manager's pod created, committed to the draft branch.
	draft := "refs/heads/drafts/my-app/first"
	g.Eventually(func() (string, error) { return deployments.ReadFile(draft, "my-app/app.yaml") }, timeout, interval).
		Should(And(ContainSubstring("namespace: my-app"), ContainSubstring("# the web tier")))
	fnPod, _ := functionPod(g, setNamespaceImage, pushed)
	g.Expect(fnPod.Labels).To(HaveKey("kpo.dev/function-run"))

	must(alice, "rpkg", "propose", "deployments.my-app.first")
	out, err := kpoctl(alice, "rpkg", "approve", "deployments.my-app.first")
	g.Expect(err).To(HaveOccurred(), "an author cannot approve")
	g.Expect(out).To(ContainSubstring("kpo-approve"))
	must(bob, "rpkg", "approve", "deployments.my-app.first")

	g.Eventually(func() (string, error) { return deployments.ReadFile("refs/tags/my-app/v1", "my-app/namespace.yaml") }, timeout, interval).
		Should(ContainSubstring("name: my-app"))
	app, err := deployments.ReadFile("refs/tags/my-app/v1", "my-app/app.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(app).To(ContainSubstring("namespace: my-app"))
	g.Expect(app).To(ContainSubstring("tour/starlark: sandboxed"), "starlark ran, in the manager's /kpo-fn sandbox")
	g.Eventually(func(g Gomega) {
		pr := &kpov1.PackageRevision{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "deployments.my-app.first"}, pr)).To(Succeed())
		g.Expect(pr.Status.Revision).To(Equal(1))
		g.Expect(pr.Status.PublishedBy).To(Equal("bob"))
	}, timeout, interval).Should(Succeed())

	// The same with kubectl only (the README's GitOps way), as the same two users.
	kc := func(kubeconfig string, args ...string) string {
		t.Helper()
		out, err := kubectl(kubeconfig, args...)
		g.Expect(err).NotTo(HaveOccurred())
		return out
	}
	rev := "deployments.my-app-ns.first"
	kc(alice, "apply", "-f", filepath.Join(testenv.RepoRoot(), "config", "samples", "packagedraft.yaml"))
	kc(alice, "wait", "--for=condition=Ready", "packagedraft/my-app-ns", "--timeout=90s")
	kc(alice, "patch", "configmap", rev, "--type", "merge",
		"-p", `{"data":{"namespace.yaml":"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: my-app-ns\n"}}`)
	kc(alice, "patch", "rpkg", rev, "--type", "merge", "-p", `{"spec":{"lifecycle":"Proposed"}}`)
	kc(alice, "wait", "--for=jsonpath={.status.lifecycle}=Proposed", "rpkg/"+rev, "--timeout=90s")
	_, err = kubectl(alice, "patch", "rpkg", rev, "--type", "merge", "-p", `{"spec":{"lifecycle":"Published"}}`)
	g.Expect(err).To(MatchError(ContainSubstring("kpo-approve-guard")), "an author cannot publish with kubectl either")
	kc(bob, "patch", "rpkg", rev, "--type", "merge", "-p", `{"spec":{"lifecycle":"Published"}}`)
	kc(alice, "wait", "--for=jsonpath={.status.lifecycle}=Published", "rpkg/"+rev, "--timeout=90s")
	g.Expect(kc(alice, "get", "rpkg", rev, "-o", "jsonpath={.status.publishedBy}")).To(Equal("bob"))
	g.Expect(kc(alice, "get", "rpkg", "-l", kpov1.LatestRevisionLabel+"=true", "-o", "name")).
		To(And(ContainSubstring(rev), ContainSubstring("deployments.my-app.first")))
	ns2, err := deployments.ReadFile("refs/tags/my-app-ns/v1", "my-app-ns/namespace.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ns2).To(ContainSubstring("name: my-app-ns"))

	// Published content, on request, is the manager's to write and nobody else's.
	kc(alice, "annotate", "rpkg", rev, kpov1.ContentRequestedAnnotation+"="+time.Now().UTC().Format(time.RFC3339), "--overwrite")
	kc(alice, "wait", "rpkg/"+rev, "--for=jsonpath={.status.resourcesRef.name}="+rev, "--timeout=90s")
	_, err = kubectl(alice, "patch", "configmap", rev, "--type", "merge", "-p", `{"data":{"x.yaml":"a: b\n"}}`)
	g.Expect(err).To(MatchError(ContainSubstring("kpo-read-only-content")))
}

// httpGet returns the body of a 200 answer to url.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url) //nolint:gosec // G107: the manager pod's address, from the API server
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

// starlarkMutator is a pipeline step the manager runs in its sandbox (/kpo-fn, a child process
// under a memory budget, --function-sandbox-binary in config/manager).
const starlarkMutator = `  - image: gcr.io/kpt-fn/starlark:v0.5.0
    configMap:
      source: |
        for r in ctx.resource_list["items"]:
          r["metadata"].setdefault("annotations", {})["tour/starlark"] = "sandboxed"
`

// managerPods returns the manager's running pods, oldest first, once at least one is Ready.
func managerPods(g Gomega) []*corev1.Pod {
	var out []*corev1.Pod
	g.Eventually(func(g Gomega) {
		list := &corev1.PodList{}
		g.Expect(k8sClient.List(context.Background(), list, client.InNamespace(managerNamespace),
			client.MatchingLabels{"app.kubernetes.io/name": "kpo"})).To(Succeed())
		out = nil
		for i := range list.Items {
			p := &list.Items[i]
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				out = append(out, p)
			}
		}
		g.Expect(out).NotTo(BeEmpty())
	}, timeout, interval).Should(Succeed())
	return out
}

// newUser writes a kubeconfig for user (a client certificate the node's CA signs, no group
// but system:authenticated) bound in ns to the given ClusterRoles, and returns its path.
func newUser(t *testing.T, user, ns string, roles ...string) string {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	for _, role := range roles {
		g.Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role, Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		})).To(Succeed())
	}
	certPEM, keyPEM, err := clientCertificate(user)
	g.Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["node"] = &clientcmdapi.Cluster{Server: restCfg.Host, CertificateAuthority: filepath.Join(nodeDir, "pki", "ca.crt")}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["node"] = &clientcmdapi.Context{Cluster: "node", AuthInfo: user, Namespace: ns}
	cfg.CurrentContext = "node"
	g.Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	return path
}

// clientCertificate issues a client certificate for user, signed by the node's CA.
func clientCertificate(user string) (certPEM, keyPEM []byte, err error) {
	caCertPEM, err := os.ReadFile(filepath.Join(nodeDir, "pki", "ca.crt"))
	if err != nil {
		return nil, nil, err
	}
	caKeyPEM, err := os.ReadFile(filepath.Join(nodeDir, "pki", "ca.key"))
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(caCertPEM)
	kb, _ := pem.Decode(caKeyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("the node's CA is not PEM")
	}
	caCert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	caKey, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: user},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
