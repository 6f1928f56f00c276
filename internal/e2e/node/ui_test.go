package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/testenv"
)

// The web UI as dist/install-ui.yaml (make build-installer, from config/ui) installs it.
const (
	uiDeployment = "kpo-ui"
	uiSelector   = "app.kubernetes.io/name=kpo-ui"
	uiPort       = "8080"
	// uiPublicURL is the URL the UI's users open in this test. Its host resolves, for the
	// test's HTTP client alone, to the UI pod's address, as a DNS name pointing at an Ingress
	// would: the Host and Origin headers name it, not the pod.
	uiPublicURL = "http://kpo-ui.node.test:" + uiPort
	// uiCookie is the cookie the sign-in sets (internal/ui's signInCookie).
	uiCookie = "kpo-ui-signin"
)

// uiOverlay is what a user adds to dist/install-ui.yaml: the URL they open and the namespace
// the UI opens on (flags given last win).
const uiOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- install-ui.yaml
patches:
- target: {kind: Deployment, name: kpo-ui, namespace: kpo-system}
  patch: |
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --public-url=%s
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --namespace=%s
`

// TestUI_inClusterPodActsWithEachUsersOwnToken installs the web UI from dist/install-ui.yaml
// and uses it over plain HTTP as a browser would. The pod holds no credentials (no
// service-account token volume, nothing mounted under /var/run/secrets, as the pod spec and
// the kernel's mount table of its process say) and runs restricted (non-root, no
// capabilities, no privilege escalation, a read-only root filesystem) in the restricted
// kpo-system namespace. /healthz answers the pod's address; everything else must name the
// public URL. Without a token nothing is served; a token the API server rejects does not sign
// in. A service account bound to kpo-author signs in with its token (an HttpOnly cookie),
// lists the namespace's repositories and package revisions, and proposes a draft; the
// approval admission policy refuses its approval, with the API server's message. A viewer's
// token, sent by an authenticating proxy in the Authorization header, lists the same revisions
// but its proposal is refused with the API server's RBAC message naming the viewer.
func TestUI_inClusterPodActsWithEachUsersOwnToken(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	f := newDraftFixture(t, "ui-app")
	pod := installUI(t, f.ns)

	// The pod as the API server admitted it.
	spec := pod.Spec
	g.Expect(spec.ServiceAccountName).To(Equal(uiDeployment))
	g.Expect(spec.AutomountServiceAccountToken).To(HaveValue(BeFalse()))
	sa := &corev1.ServiceAccount{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: uiDeployment}, sa)).To(Succeed())
	g.Expect(sa.AutomountServiceAccountToken).To(HaveValue(BeFalse()))
	for _, v := range spec.Volumes {
		g.Expect(v.Name).NotTo(HavePrefix("kube-api-access"), "no automounted token volume")
		g.Expect(v.Secret).To(BeNil(), "volume %s", v.Name)
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				g.Expect(s.ServiceAccountToken).To(BeNil(), "volume %s projects a token", v.Name)
			}
		}
	}
	g.Expect(spec.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	g.Expect(spec.SecurityContext.SeccompProfile).NotTo(BeNil())
	g.Expect(spec.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
	c := containerByName(pod, "ui")
	g.Expect(c).NotTo(BeNil())
	g.Expect(c.Image).To(Equal(kpoImage))
	g.Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
	g.Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
	g.Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
	for _, m := range c.VolumeMounts {
		g.Expect(m.MountPath).NotTo(HavePrefix("/var/run/secrets"), "the UI mounts %s", m.Name)
	}
	ns := &corev1.Namespace{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: managerNamespace}, ns)).To(Succeed())
	g.Expect(ns.Labels).To(HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"))
	s := containerStatus(pod, "ui")
	g.Expect(s.Ready).To(BeTrue(), "the readiness probe passes")
	g.Expect(s.RestartCount).To(BeZero(), "the liveness probe never failed")

	// The same, as the kernel sees the UI's process.
	p := expectRestrictedProcesses(g, s.ContainerID)[0]
	g.Expect(p.cmdline).To(HavePrefix("/kpoctl ui --in-cluster"))
	g.Expect(p.mounts).To(HaveKey("/var/run/kube-root-ca"), "the API server's CA, from kube-root-ca.crt")
	for mount := range p.mounts {
		g.Expect(mount).NotTo(HavePrefix("/var/run/secrets"), "nothing of the service account is mounted")
	}

	// What the kubelet probes, on the pod's address; nothing else answers there.
	podAddr := "http://" + net.JoinHostPort(pod.Status.PodIP, uiPort)
	body, err := httpGet(podAddr + "/healthz")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(body).To(Equal("ok\n"))
	code, body, _ := uiRequest(g, pod, podAddr, "GET", "/ui/session", "", nil)
	g.Expect(code).To(Equal(http.StatusMisdirectedRequest), body)
	g.Expect(body).To(ContainSubstring("is not this server's address"))

	// Nobody has signed in: the page is served (it asks for a token), the API is not.
	code, body, _ = uiRequest(g, pod, uiPublicURL, "GET", "/", "", nil)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body).To(ContainSubstring("<html"))
	code, body, _ = uiRequest(g, pod, uiPublicURL, "GET", "/ui/session", "", nil)
	g.Expect(code).To(Equal(http.StatusOK), body)
	g.Expect(body).To(And(ContainSubstring(`"signIn":"token"`), ContainSubstring(`"namespace":"`+f.ns+`"`), Not(ContainSubstring(`"user"`))))
	revisions := "/k8s/apis/kpo.dev/v1alpha1/namespaces/" + f.ns + "/packagerevisions"
	repositories := "/k8s/apis/kpo.dev/v1alpha1/namespaces/" + f.ns + "/repositories"
	code, body, _ = uiRequest(g, pod, uiPublicURL, "GET", revisions, "", nil)
	g.Expect(code).To(Equal(http.StatusUnauthorized), body)
	g.Expect(body).To(ContainSubstring("not signed in"))

	own := map[string]string{"Origin": uiPublicURL, "Content-Type": "application/json"}
	code, body, _ = uiRequest(g, pod, uiPublicURL, "POST", "/ui/signin", `{"token":"not-a-token"}`, own)
	g.Expect(code).To(Equal(http.StatusUnauthorized), body)
	g.Expect(body).To(ContainSubstring("the API server does not accept this token"))

	// The author signs in with a service account token pasted into the page.
	author := newTokenUser(t, f.ns, "ui-author", "kpo-author")
	authorName := "system:serviceaccount:" + f.ns + ":ui-author"
	code, body, _ = uiRequest(g, pod, uiPublicURL, "POST", "/ui/signin", `{"token":"`+author+`"}`,
		map[string]string{"Origin": "http://evil.example", "Content-Type": "application/json"})
	g.Expect(code).To(Equal(http.StatusForbidden), "another site cannot sign anyone in: %s", body)
	code, body, header := uiRequest(g, pod, uiPublicURL, "POST", "/ui/signin", `{"token":"`+author+`"}`, own)
	g.Expect(code).To(Equal(http.StatusOK), body)
	g.Expect(body).To(ContainSubstring(`"user":"` + authorName + `"`))
	g.Expect(body).NotTo(ContainSubstring(author), "the token is never sent back")
	var cookie *http.Cookie
	for _, ck := range (&http.Response{Header: header}).Cookies() {
		if ck.Name == uiCookie {
			cookie = ck
		}
	}
	g.Expect(cookie).NotTo(BeNil(), "the sign-in sets its cookie: %v", header)
	g.Expect(cookie.HttpOnly).To(BeTrue())
	g.Expect(cookie.SameSite).To(Equal(http.SameSiteStrictMode))
	asAuthor := func(extra map[string]string) map[string]string {
		h := map[string]string{"Cookie": cookie.String()}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	code, body, _ = uiRequest(g, pod, uiPublicURL, "GET", "/ui/session", "", asAuthor(nil))
	g.Expect(code).To(Equal(http.StatusOK), body)
	g.Expect(body).To(ContainSubstring(`"user":"` + authorName + `"`))

	var repos kpov1.RepositoryList
	code, body, _ = uiRequest(g, pod, uiPublicURL, "GET", repositories, "", asAuthor(nil))
	g.Expect(code).To(Equal(http.StatusOK), body)
	g.Expect(json.Unmarshal([]byte(body), &repos)).To(Succeed())
	g.Expect(repos.Items).To(ContainElement(HaveField("ObjectMeta.Name", "catalog")))
	var revs kpov1.PackageRevisionList
	code, body, _ = uiRequest(g, pod, uiPublicURL, "GET", revisions, "", asAuthor(nil))
	g.Expect(code).To(Equal(http.StatusOK), body)
	g.Expect(json.Unmarshal([]byte(body), &revs)).To(Succeed())
	g.Expect(revs.Items).To(ContainElement(HaveField("ObjectMeta.Name", f.rev)))

	// A viewer, through an authenticating proxy: it reads what the author reads, and the API
	// server refuses its proposal, in its own words.
	viewer := newTokenUser(t, f.ns, "ui-viewer", "kpo-viewer")
	asViewer := map[string]string{"Authorization": "Bearer " + viewer, "Origin": uiPublicURL, "Content-Type": "application/json"}
	code, body, _ = uiRequest(g, pod, uiPublicURL, "GET", "/ui/session", "", asViewer)
	g.Expect(code).To(Equal(http.StatusOK), body)
	g.Expect(body).To(ContainSubstring(`"user":"system:serviceaccount:` + f.ns + `:ui-viewer"`))
	code, body, _ = uiRequest(g, pod, uiPublicURL, "GET", revisions, "", asViewer)
	g.Expect(code).To(Equal(http.StatusOK), body)
	g.Expect(body).To(ContainSubstring(`"name":"` + f.rev + `"`))
	code, body, _ = uiRequest(g, pod, uiPublicURL, "POST", "/ui/lifecycle", moveJSON(g, f.ns, f.rev, "propose"), asViewer)
	g.Expect(code).To(Equal(http.StatusForbidden), body)
	g.Expect(body).To(ContainSubstring(`packagerevisions.kpo.dev \"` + f.rev + `\" is forbidden: User \"system:serviceaccount:` + f.ns + `:ui-viewer\" cannot`))
	code, body, _ = uiRequest(g, pod, uiPublicURL, "POST", repositories,
		`{"apiVersion":"kpo.dev/v1alpha1","kind":"Repository","metadata":{"name":"mine"},"spec":{"git":{"repo":"http://example.invalid/x.git"}}}`, asViewer)
	g.Expect(code).To(Equal(http.StatusForbidden), body)
	g.Expect(body).To(ContainSubstring(`User \"system:serviceaccount:` + f.ns + `:ui-viewer\" cannot create resource \"repositories\"`))

	// The author proposes, as its RBAC allows; kpo's admission policy refuses its approval.
	g.Eventually(func(g Gomega) {
		code, body, _ := uiRequest(g, pod, uiPublicURL, "POST", "/ui/lifecycle", moveJSON(g, f.ns, f.rev, "propose"), asAuthor(own))
		g.Expect(code).To(Equal(http.StatusOK), body)
	}, timeout, interval).Should(Succeed())
	g.Eventually(func(g Gomega) {
		pr := &kpov1.PackageRevision{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: f.rev}, pr)).To(Succeed())
		g.Expect(pr.Status.Lifecycle).To(Equal(kpov1.LifecycleProposed))
	}, timeout, interval).Should(Succeed())
	code, body, _ = uiRequest(g, pod, uiPublicURL, "POST", "/ui/lifecycle", moveJSON(g, f.ns, f.rev, "approve"), asAuthor(own))
	g.Expect(code).To(BeNumerically(">=", 400), body)
	g.Expect(body).To(ContainSubstring("kpo-approve-guard"))

	// Signing out removes the cookie.
	code, body, header = uiRequest(g, pod, uiPublicURL, "POST", "/ui/signout", "", asAuthor(own))
	g.Expect(code).To(Equal(http.StatusOK), body)
	g.Expect((&http.Response{Header: header}).Cookies()).To(ContainElement(And(HaveField("Name", uiCookie), HaveField("MaxAge", BeNumerically("<", 0)))))

	// The kubelet stops the pod with SIGTERM: the server shuts down and exits 0 (not killed by
	// the signal, 143, nor by the SIGKILL at the end of the grace period, 137).
	stop := make(chan struct{})
	defer close(stop)
	seen := startPodRecorder(clientset, managerNamespace, stop)
	g.Expect(k8sClient.Delete(ctx, pod)).To(Succeed())
	g.Eventually(func(g Gomega) {
		p := seen.get(pod.Name)
		g.Expect(p).NotTo(BeNil())
		s := containerStatus(p, "ui")
		g.Expect(s).NotTo(BeNil())
		g.Expect(s.State.Terminated).NotTo(BeNil(), "still %+v", s.State)
		g.Expect(s.State.Terminated.ExitCode).To(BeZero(), s.State.Terminated.Reason)
	}, timeout, interval).Should(Succeed())
}

// get returns the last state seen of pod name, nil if none was seen.
func (r *podRecorder) get(name string) *corev1.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.pods[name]; p != nil {
		return p.DeepCopy()
	}
	return nil
}

// installUI applies dist/install-ui.yaml (written by make build-installer in TestMain) with
// the overlay a user adds, waits for the rollout, and returns the UI's Ready pod. The UI goes
// when the test ends; its log stays in $KPO_NODE_DIR/logs.
func installUI(t *testing.T, namespace string) *corev1.Pod {
	t.Helper()
	g := NewWithT(t)
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "dist", "install-ui.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(data)).NotTo(ContainSubstring("controller:latest"))
	g.Expect(os.WriteFile(filepath.Join(dir, "install-ui.yaml"), data, 0o600)).To(Succeed())
	overlay := fmt.Sprintf(uiOverlay, uiPublicURL, namespace)
	g.Expect(os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o600)).To(Succeed())
	t.Cleanup(func() {
		out, _ := kubectl("", "-n", managerNamespace, "logs", "-l", uiSelector, "--all-containers", "--prefix", "--tail=-1")
		_ = os.WriteFile(filepath.Join(nodeDir, "logs", "kpo-ui.log"), []byte(out), 0o600)
		_, _ = kubectl("", "delete", "--ignore-not-found", "--wait=false", "-k", dir)
	})
	_, err = kubectl("", "apply", "--server-side", "--field-manager=kpo-install", "-k", dir)
	g.Expect(err).NotTo(HaveOccurred())
	if _, err := kubectl("", "-n", managerNamespace, "rollout", "status", "deployment/"+uiDeployment, "--timeout=120s"); err != nil {
		out, _ := kubectl("", "-n", managerNamespace, "describe", "pods", "-l", uiSelector)
		logs, _ := kubectl("", "-n", managerNamespace, "logs", "-l", uiSelector, "--all-containers", "--tail=50")
		t.Fatalf("%v\n%s\n%s", err, out, logs)
	}
	var pod *corev1.Pod
	g.Eventually(func(g Gomega) {
		list := &corev1.PodList{}
		g.Expect(k8sClient.List(context.Background(), list, client.InNamespace(managerNamespace),
			client.MatchingLabels{"app.kubernetes.io/name": uiDeployment})).To(Succeed())
		pod = nil
		for i := range list.Items {
			p := &list.Items[i]
			if s := containerStatus(p, "ui"); p.DeletionTimestamp == nil && s != nil && s.Ready {
				pod = p
			}
		}
		g.Expect(pod).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())
	return pod
}

// newTokenUser creates a ServiceAccount bound in ns to role, and returns a token for it from
// the API server (a TokenRequest, as `kubectl create token` makes).
func newTokenUser(t *testing.T, ns, name, role string) string {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})).To(Succeed())
	g.Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + role, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	})).To(Succeed())
	tr, err := clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

// moveJSON is the revision page's request to move rev, on the version it shows now.
func moveJSON(g Gomega, ns, rev, move string) string {
	pr := &kpov1.PackageRevision{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: rev}, pr)).To(Succeed())
	b, err := json.Marshal(map[string]string{"namespace": ns, "name": rev, "move": move, "resourceVersion": pr.ResourceVersion})
	g.Expect(err).NotTo(HaveOccurred())
	return string(b)
}

// uiRequest sends method base+path to the UI pod, whatever host base names (the pod's
// address, or the public URL's name, which only this client resolves, to the pod), with body
// and headers, and returns the answer's status, body and headers.
func uiRequest(g Gomega, pod *corev1.Pod, base, method, path, body string, header map[string]string) (int, string, http.Header) {
	podAddr := net.JoinHostPort(pod.Status.PodIP, uiPort)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	c := &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, podAddr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	g.Expect(err).NotTo(HaveOccurred())
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b), resp.Header
}
