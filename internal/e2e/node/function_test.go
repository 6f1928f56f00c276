package node_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

const appYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web # the web tier
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  env: production
`

const tokenPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// TestJobFunction_runsInARealPodAndTheResultIsCommitted: a draft whose pipeline uses a function
// image (kpo-fn set-namespace, built from this repository) renders through a real Job: a pod
// on the node with the wrapper copied in by its init container; the rendered result is
// committed. The pod that ran was restricted: non-root, read-only root filesystem, no token in
// the function container.
func TestJobFunction_runsInARealPodAndTheResultIsCommitted(t *testing.T) {
	g := NewWithT(t)
	f := newDraftFixture(t, "web")
	start := time.Now()
	f.setPipeline(t, map[string]string{"app.yaml": appYAML}, mutator(setNamespaceImage, f.ns))

	g.Eventually(func() (string, error) {
		return f.git.ReadFile(f.draftBranch(), "web/app.yaml")
	}, timeout, interval).Should(And(ContainSubstring("namespace: "+f.ns), ContainSubstring("# the web tier")))
	g.Eventually(func(g Gomega) {
		rendered := f.rendered(g)
		g.Expect(rendered).NotTo(BeNil())
		g.Expect(rendered.Status).To(Equal(metav1.ConditionTrue), rendered.Message)
	}, timeout, interval).Should(Succeed())

	// The pod that ran, as the API server admitted it and the kubelet reported it.
	var pod *corev1.Pod
	g.Eventually(func(g Gomega) {
		pod, _ = functionPod(g, setNamespaceImage, start)
		for _, name := range []string{"function", "upload"} {
			s := containerStatus(pod, name)
			g.Expect(s).NotTo(BeNil(), name)
			g.Expect(s.State.Terminated).NotTo(BeNil(), "%s has not terminated: %+v", name, s.State)
			g.Expect(s.State.Terminated.ExitCode).To(BeZero(), "%s: %s", name, s.State.Terminated.Message)
		}
		g.Expect(pod.Status.InitContainerStatuses).To(HaveLen(1))
		init := pod.Status.InitContainerStatuses[0].State.Terminated
		g.Expect(init).NotTo(BeNil())
		g.Expect(init.ExitCode).To(BeZero())
	}, timeout, interval).Should(Succeed())
	g.Expect(pod.Spec.NodeName).NotTo(BeEmpty())
	expectRestricted(g, pod)
	g.Eventually(func() bool {
		_, gone := functionPod(g, setNamespaceImage, start)
		return gone
	}, timeout, interval).Should(BeTrue(), "the evaluator deleted the Job and its pod")
}

// expectRestricted checks the pod spec of a function run: the restricted security context on
// every container, and a token for the uploader only.
func expectRestricted(g Gomega, pod *corev1.Pod) {
	spec := pod.Spec
	g.Expect(spec.AutomountServiceAccountToken).To(HaveValue(BeFalse()))
	g.Expect(spec.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		sc := c.SecurityContext
		g.Expect(sc).NotTo(BeNil(), c.Name)
		g.Expect(sc.RunAsNonRoot).To(HaveValue(BeTrue()), c.Name)
		g.Expect(sc.RunAsUser).To(HaveValue(BeNumerically(">", 0)), c.Name)
		g.Expect(sc.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()), c.Name)
		g.Expect(sc.AllowPrivilegeEscalation).To(HaveValue(BeFalse()), c.Name)
	}
	fn := containerByName(pod, "function")
	g.Expect(fn).NotTo(BeNil())
	for _, m := range fn.VolumeMounts {
		g.Expect(m.MountPath).NotTo(HavePrefix("/var/run/secrets"), "the function container mounts %s", m.Name)
		g.Expect(m.Name).NotTo(Equal("token"))
	}
	for _, v := range spec.Volumes {
		g.Expect(v.Name).NotTo(HavePrefix("kube-api-access"), "no automounted token volume")
	}
}

// TestJobFunction_failureIsReportedWithItsStderrTail: a function that exits 1 leaves the draft
// Rendered=False with the tail of what it wrote on stderr, and nothing is committed.
func TestJobFunction_failureIsReportedWithItsStderrTail(t *testing.T) {
	g := NewWithT(t)
	f := newDraftFixture(t, "broken")
	start := time.Now()
	f.setPipeline(t, map[string]string{"app.yaml": appYAML}, mutator(failingImage, ""))

	g.Eventually(func(g Gomega) {
		c := f.rendered(g)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.FunctionFailedReason))
		g.Expect(c.Message).To(And(ContainSubstring(failingImage), ContainSubstring("exit code 1"), ContainSubstring(failingStderrTail)))
	}, timeout, interval).Should(Succeed())
	_, err := f.git.ReadFile(f.draftBranch(), "broken/app.yaml")
	g.Expect(err).To(HaveOccurred(), "a failed render commits nothing")

	g.Eventually(func(g Gomega) {
		pod, _ := functionPod(g, failingImage, start)
		s := containerStatus(pod, "function")
		g.Expect(s).NotTo(BeNil())
		// The wrapper records the exit code and exits 0 itself.
		g.Expect(s.State.Terminated).NotTo(BeNil(), "%+v", s.State)
		expectRestricted(g, pod)
	}, timeout, interval).Should(Succeed())
}

// TestJobFunction_timeoutKillsTheFunction: a function running past the evaluator's timeout is
// reported (Rendered=False, Timeout) and killed with its pod. While it runs, the kernel's view
// of its processes is checked: not root, no privileges, read-only root filesystem, no token.
func TestJobFunction_timeoutKillsTheFunction(t *testing.T) {
	g := NewWithT(t)
	f := newDraftFixture(t, "slow")
	start := time.Now()
	f.setPipeline(t, map[string]string{"app.yaml": appYAML}, mutator(sleepingImage, ""))

	// The running containers, seen from the host.
	var fnProcs, upProcs []hostProcess
	var fnID string
	g.Eventually(func(g Gomega) {
		pod, _ := functionPod(g, sleepingImage, start)
		fs, us := containerStatus(pod, "function"), containerStatus(pod, "upload")
		g.Expect(fs).NotTo(BeNil())
		g.Expect(us).NotTo(BeNil())
		g.Expect(fs.State.Running).NotTo(BeNil())
		g.Expect(us.State.Running).NotTo(BeNil())
		fnID = fs.ContainerID
		var err error
		fnProcs, err = containerProcesses(fs.ContainerID)
		g.Expect(err).NotTo(HaveOccurred())
		upProcs, err = containerProcesses(us.ContainerID)
		g.Expect(err).NotTo(HaveOccurred())
		// The wrapper and the function it started.
		g.Expect(fnProcs).To(HaveLen(2))
		g.Expect(upProcs).NotTo(BeEmpty())
	}, timeout, interval).Should(Succeed())
	for _, p := range fnProcs {
		expectRestrictedProcess(g, p)
		// The image declares no user: without the pod's runAsGroup its group would be root.
		g.Expect(p.status["Gid"]).To(MatchRegexp(`^65532\s+65532\s+65532\s+65532$`), p.cmdline)
		g.Expect(strings.Fields(p.status["Groups"])).NotTo(ContainElement("0"), p.cmdline)
		g.Expect(p.status["Seccomp"]).To(Equal("2"), p.cmdline)
		g.Expect(p.mounts).NotTo(HaveKey(tokenPath), "the function container has no token")
		g.Expect(hasOption(p.mounts["/kpo/out"], "rw")).To(BeTrue(), "the output directory is writable")
	}
	var cmdlines []string
	for _, p := range fnProcs {
		cmdlines = append(cmdlines, p.cmdline)
	}
	g.Expect(cmdlines).To(ContainElement("/usr/local/bin/function"))
	// The uploader, for contrast, holds the narrow account's token.
	g.Expect(upProcs[0].mounts).To(HaveKey(tokenPath))

	g.Eventually(func(g Gomega) {
		c := f.rendered(g)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.TimeoutReason), c.Message)
		g.Expect(c.Message).To(ContainSubstring("timed out after " + functionTimeout.String()))
	}, functionTimeout+timeout, interval).Should(Succeed())
	g.Expect(time.Since(start)).To(BeNumerically(">=", functionTimeout))
	// Killed: its processes are gone from the node and its pod from the API.
	g.Eventually(func() ([]hostProcess, error) { return containerProcesses(fnID) }, timeout, interval).Should(BeEmpty())
	g.Eventually(func(g Gomega) {
		ps, gone := pods.ofImage(sleepingImage)
		for i, p := range ps {
			if p.Status.ContainerStatuses != nil && containerStatus(p, "function").ContainerID == fnID {
				g.Expect(gone[i]).To(BeTrue())
			}
		}
	}, timeout, interval).Should(Succeed())
}
