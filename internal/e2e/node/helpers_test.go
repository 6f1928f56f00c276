package node_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
)

const (
	// timeout bounds kpo's part plus one function Job (a few seconds on this node; the first
	// one of a run also unpacks its images).
	timeout  = 90 * time.Second
	interval = 250 * time.Millisecond

	gitUser     = "kpo"
	gitPassword = "kpo-node-e2e"
)

// draftFixture is a draft PackageRevision of package pkg (workspace ws) in a Repository backed
// by a real Git server, in a namespace of its own.
type draftFixture struct {
	ns, rev, pkg, ws string
	git              *gitserver.Repo
}

func (f *draftFixture) draftBranch() string { return draftRef(f.pkg, f.ws) }

// draftRef is the branch kpo keeps the draft of package pkg in workspace ws on.
func draftRef(pkg, ws string) string { return "refs/heads/drafts/" + pkg + "/" + ws }

// newDraftFixture creates the namespace, Git server, Repository and draft; all go when the
// test ends (the namespace first, so kpo stops rendering the draft).
func newDraftFixture(t *testing.T, pkg string) *draftFixture {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	repo := newRepoFixture(t, "kpo-node-e2e-")
	g.Eventually(func(g Gomega) {
		r := &kpov1.Repository{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: repo.ns, Name: "catalog"}, r)).To(Succeed())
		c := meta.FindStatusCondition(r.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, timeout, interval).Should(Succeed())

	ws := "w"
	g.Expect(k8sClient.Create(ctx, &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Name: pkg, Namespace: repo.ns},
		Spec: kpov1.PackageDraftSpec{Repository: "catalog", PackageName: pkg, WorkspaceName: ws,
			Source: kpov1.PackageDraftSource{Init: &kpov1.InitSource{}}},
	})).To(Succeed())
	var rev string
	g.Eventually(func(g Gomega) {
		d := &kpov1.PackageDraft{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: repo.ns, Name: pkg}, d)).To(Succeed())
		c := meta.FindStatusCondition(d.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(d.Status.PackageRevision).NotTo(BeEmpty())
		rev = d.Status.PackageRevision
	}, timeout, interval).Should(Succeed())
	return &draftFixture{ns: repo.ns, rev: rev, pkg: pkg, ws: ws, git: repo.git}
}

// repoFixture is a Repository "catalog" backed by a Git server on the node's address, in a
// namespace of its own; both go when the test ends.
type repoFixture struct {
	ns  string
	git *gitserver.Repo
}

func newRepoFixture(t *testing.T, nsPrefix string) *repoFixture {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	srv, err := startGitServer(t)
	g.Expect(err).NotTo(HaveOccurred())
	repo := createGitRepo(g, srv, "catalog")
	ns := newNamespace(t, nsPrefix)
	g.Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "git-credentials", Namespace: ns},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{corev1.BasicAuthUsernameKey: gitUser, corev1.BasicAuthPasswordKey: gitPassword},
	})).To(Succeed())
	g.Expect(k8sClient.Create(ctx, &kpov1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: ns},
		Spec:       kpov1.RepositorySpec{Git: kpov1.GitRepository{Repo: srv.RepoURL("catalog"), SecretRef: &kpov1.LocalReference{Name: "git-credentials"}}},
	})).To(Succeed())
	return &repoFixture{ns: ns, git: repo}
}

// samplesFixture is gitserver.SeedSamples' repositories (blueprints, with basens v1
// published, and the deployment repository deployments) on a Git server of their own,
// registered with kpoctl by alice in a namespace of their own.
type samplesFixture struct {
	ns          string
	deployments *gitserver.Repo
	// alice (kpo-author, kpo-repository-admin) and bob (kpo-approver) are kubeconfigs.
	alice, bob string
}

// newSamplesFixture returns once blueprints.basens.v1 is listed; everything goes when the
// test ends.
func newSamplesFixture(t *testing.T, nsPrefix string) *samplesFixture {
	t.Helper()
	g := NewWithT(t)
	srv, err := startGitServer(t)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(gitserver.SeedSamples(srv)).To(Succeed())
	deployments, err := srv.OpenRepo("deployments")
	g.Expect(err).NotTo(HaveOccurred())
	ns := newNamespace(t, nsPrefix)
	f := &samplesFixture{ns: ns, deployments: deployments,
		alice: newUser(t, "alice", ns, "kpo-author", "kpo-repository-admin"), bob: newUser(t, "bob", ns, "kpo-approver")}
	f.kpoctl(t, f.alice, "repo", "reg", srv.RepoURL("blueprints"), "--repo-basic-username", gitUser, "--repo-basic-password", gitPassword)
	f.kpoctl(t, f.alice, "repo", "reg", srv.RepoURL("deployments"), "--deployment", "--repo-basic-username", gitUser, "--repo-basic-password", gitPassword)
	g.Eventually(func() string {
		out, _ := runKpoctl(t, ns, f.alice, "rpkg", "get")
		return out
	}, timeout, interval).Should(ContainSubstring("blueprints.basens.v1"))
	return f
}

// kpoctl runs kpoctl in the fixture's namespace as the user of kubeconfig, fails the test when
// it fails, and returns its output.
func (f *samplesFixture) kpoctl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := runKpoctl(t, f.ns, kubeconfig, args...)
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), out)
	return out
}

// createGitRepo creates repository name on srv with a first commit on main.
func createGitRepo(g Gomega, srv *gitserver.Server, name string) *gitserver.Repo {
	repo, err := srv.CreateRepo(name)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Commit("main", gitserver.Change{Message: "Initial commit", Files: map[string]string{"README.md": "# " + name + "\n"}})
	g.Expect(err).NotTo(HaveOccurred())
	return repo
}

// newNamespace creates a namespace named from prefix; it is deleted when the test ends.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), ns)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), ns) })
	return ns.Name
}

// startGitServer starts a Git server for one test on the node's address, where the manager's
// pod reaches it; it stops when the test ends.
func startGitServer(t *testing.T) (*gitserver.Server, error) {
	t.Helper()
	if nodeIP == "" {
		return nil, fmt.Errorf("KPO_NODE_IP is unset: hack/node/cluster.sh run sets it")
	}
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Username: gitUser, Password: gitPassword, Addr: nodeIP + ":0"})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, nil
}

// runKpoctl runs the kpoctl hack/node/images.sh built, in namespace ns, as the user of kubeconfig,
// and logs its command line (passwords redacted) and output.
func runKpoctl(t *testing.T, ns, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(nodeDir, "images", "bin", "kpoctl"), append([]string{"-n", ns}, args...)...) //nolint:gosec // G204: the kpoctl built for this tier, with the test's arguments
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	t.Logf("kpoctl %s\n%s", strings.ReplaceAll(strings.Join(args, " "), gitPassword, "<redacted>"), out)
	return string(out), err
}

// setPipeline edits the draft's content as `kubectl edit` would: the files, and the Kptfile
// with the given pipeline appended.
func (f *draftFixture) setPipeline(t *testing.T, files map[string]string, pipeline string) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		cm := &corev1.ConfigMap{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: f.rev}, cm); err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		for k, v := range files {
			cm.Data[k] = v
		}
		cm.Data["Kptfile"] = strings.TrimRight(cm.Data["Kptfile"], "\n") + "\npipeline:\n" + pipeline
		return k8sClient.Update(context.Background(), cm)
	}, timeout, interval).Should(Succeed())
}

// rendered returns the draft's Rendered condition (nil before the first render).
func (f *draftFixture) rendered(g Gomega) *metav1.Condition {
	pr := &kpov1.PackageRevision{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: f.rev}, pr)).To(Succeed())
	return meta.FindStatusCondition(pr.Status.Conditions, kpov1.RenderedCondition)
}

func mutator(image, namespace string) string {
	s := "  mutators:\n  - image: " + image + "\n"
	if namespace != "" {
		s += "    configMap:\n      namespace: " + namespace + "\n"
	}
	return s
}

// functionPod waits for the one pod seen running image after `after` and returns its last
// state, with whether it is gone.
func functionPod(g Gomega, image string, after time.Time) (*corev1.Pod, bool) {
	var found *corev1.Pod
	var isGone bool
	g.Eventually(func(g Gomega) {
		ps, gone := pods.ofImage(image)
		found = nil
		for i, p := range ps {
			if !p.CreationTimestamp.Time.Before(after.Truncate(time.Second)) {
				found, isGone = p, gone[i]
			}
		}
		g.Expect(found).NotTo(BeNil(), "no pod of %s since %s", image, after)
	}, timeout, interval).Should(Succeed())
	return found, isGone
}

// containerByName returns the spec of a pod's container.
func containerByName(p *corev1.Pod, name string) *corev1.Container {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i]
		}
	}
	return nil
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// hostProcess is what this machine's kernel says about a container's process.
type hostProcess struct {
	pid     int
	cmdline string
	status  map[string]string
	// mounts maps each mount point to its mount options.
	mounts map[string]string
}

// containerProcesses finds the processes of a container (by its containerd ID, which names its
// cgroup) in /proc: the tests run as root on the node itself.
func containerProcesses(containerID string) ([]hostProcess, error) {
	id := strings.TrimPrefix(containerID, "containerd://")
	if id == "" {
		return nil, fmt.Errorf("no container ID")
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []hostProcess
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil || !strings.Contains(string(cg), id) {
			continue
		}
		p := hostProcess{pid: pid, status: map[string]string{}, mounts: map[string]string{}}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		if f, err := os.Open(filepath.Join("/proc", e.Name(), "status")); err == nil {
			s := bufio.NewScanner(f)
			for s.Scan() {
				if k, v, ok := strings.Cut(s.Text(), ":"); ok {
					p.status[k] = strings.TrimSpace(v)
				}
			}
			_ = f.Close()
		}
		// mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...
		if data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo")); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if fields := strings.Fields(line); len(fields) > 5 {
					p.mounts[fields[4]] = fields[5]
				}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func hasOption(options, opt string) bool {
	for _, o := range strings.Split(options, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// expectRestrictedProcesses checks what the kernel says of a restricted container's processes
// (there is at least one): the non-root user 65532, no new privileges, no capabilities, a
// read-only root filesystem. It returns them for the checks particular to the container.
func expectRestrictedProcesses(g Gomega, containerID string) []hostProcess {
	procs, err := containerProcesses(containerID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(procs).NotTo(BeEmpty(), "processes of container %s", containerID)
	for _, p := range procs {
		expectRestrictedProcess(g, p)
	}
	return procs
}

func expectRestrictedProcess(g Gomega, p hostProcess) {
	g.Expect(p.status["Uid"]).To(MatchRegexp(`^65532\s+65532\s+65532\s+65532$`), p.cmdline)
	g.Expect(p.status["NoNewPrivs"]).To(Equal("1"), p.cmdline)
	g.Expect(p.status["CapEff"]).To(Equal("0000000000000000"), p.cmdline)
	g.Expect(hasOption(p.mounts["/"], "ro")).To(BeTrue(), "root filesystem of %q: %s", p.cmdline, p.mounts["/"])
}
