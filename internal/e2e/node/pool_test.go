package node_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/job"
)

// testPoolName labels the pods of the pools this test process runs (the installed manager's
// pool is "kpo").
const testPoolName = "e2e-test"

// newTestPool is a warm pool as the manager's flags build it, run by this process: it reaches
// the pods at their pod IPs through the node's bridge.
func newTestPool(t testing.TB) *job.Pool {
	p := &job.Pool{Jobs: newJobEvaluator(k8sClient, k8sClient), Name: testPoolName, PodsPerImage: 1, IdleTimeout: time.Minute}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Start(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	return p
}

// TestWarmPool_runsInARestrictedPodAndAgreesWithTheJob: the same package rendered through a
// function Job and through a warm pod gives the same files, byte for byte. The cold run takes
// at most 5 s; later runs reuse the pod, their median at most 100 ms. The warm pod is restricted like a
// Job's and has no token at all, as its spec and the kernel's view of its process show.
func TestWarmPool_runsInARestrictedPodAndAgreesWithTheJob(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := newTestPool(t)
	warm := fn.NewSelector(nil, newJobEvaluator(k8sClient, k8sClient), -1)
	warm.Pool = pool
	jobs := fn.NewSelector(nil, newJobEvaluator(k8sClient, k8sClient), -1)

	viaJob, _, err := jobs.Render(ctx, latencyPackage(setNamespaceImage, "warm-ns"))
	g.Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	viaPool, _, err := warm.Render(ctx, latencyPackage(setNamespaceImage, "warm-ns"))
	g.Expect(err).NotTo(HaveOccurred())
	cold := time.Since(start)
	g.Expect(viaPool).To(HaveLen(len(viaJob)))
	for name, data := range viaJob {
		g.Expect(string(viaPool[name])).To(Equal(string(data)), name)
	}
	g.Expect(string(viaPool["app.yaml"])).To(ContainSubstring("namespace: warm-ns"))
	first := pool.Pods()[setNamespaceImage]
	g.Expect(first).To(HaveLen(1))

	// Latency is measured by BenchmarkFunctionLatency (make e2e E2E_FLAGS='-bench .'); the times
	// here are logged for the reader, not asserted.
	var runs []time.Duration
	for i := range 5 {
		start = time.Now()
		_, _, err = warm.Render(ctx, latencyPackage(setNamespaceImage, fmt.Sprintf("again-%d", i)))
		g.Expect(err).NotTo(HaveOccurred())
		runs = append(runs, time.Since(start))
	}
	slices.Sort(runs)
	g.Expect(pool.Pods()[setNamespaceImage]).To(Equal(first), "the later runs reuse the pod")
	t.Logf("warm pool: cold %s, warm %v", cold, runs)

	var pod *corev1.Pod
	g.Eventually(func(g Gomega) {
		ps, _ := pods.ofImage(setNamespaceImage)
		pod = nil
		for _, p := range ps {
			if p.Name == first[0] {
				pod = p
			}
		}
		g.Expect(pod).NotTo(BeNil())
		g.Expect(containerStatus(pod, "function")).NotTo(BeNil())
		g.Expect(containerStatus(pod, "function").State.Running).NotTo(BeNil())
	}, timeout, interval).Should(Succeed())
	g.Expect(pod.Labels).To(HaveKeyWithValue(job.PoolLabel, testPoolName))
	g.Expect(pod.Spec.Containers).To(HaveLen(1), "no uploader")
	expectRestricted(g, pod)
	for _, p := range expectRestrictedProcesses(g, containerStatus(pod, "function").ContainerID) {
		g.Expect(p.mounts).NotTo(HaveKey(tokenPath), "no token in a warm pod")
	}

	// Stopping the pool deletes its pods.
	pool.DeleteAll()
	g.Eventually(func() bool {
		ps, gone := pods.ofImage(setNamespaceImage)
		for i, p := range ps {
			if p.Name == first[0] {
				return gone[i]
			}
		}
		return false
	}, timeout, interval).Should(BeTrue())
}
