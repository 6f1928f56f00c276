package job

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/fn/job/wrapper"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

const poolImage = "example.com/fns/warm:v1"

// poolFixture is a Pool over a fake API server whose "kubelet" starts every pod at once on
// 127.0.0.1, where one real kpo-fn-wrapper server (wrapper.Handler) runs command for requests
// that carry the bearer token of a pod created.
type poolFixture struct {
	pool    *Pool
	client  client.Client
	tokens  sync.Map
	creates atomic.Int32
	running atomic.Int32
	maxRuns atomic.Int32
}

func newPoolFixture(t *testing.T, command ...string) *poolFixture {
	t.Helper()
	f := &poolFixture{}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	f.client = fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if pod, ok := obj.(*corev1.Pod); ok {
				f.creates.Add(1)
				f.tokens.Store("Bearer "+podToken(pod), true)
				pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", ContainerStatuses: []corev1.ContainerStatus{
					{Name: functionName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := wrapper.Handler(command, wrapper.Scratch{})
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wrapper.RunPath {
			if _, ok := f.tokens.Load(r.Header.Get("Authorization")); !ok {
				http.Error(w, "not a pod's token", http.StatusUnauthorized)
				return
			}
			n := f.running.Add(1)
			defer f.running.Add(-1)
			for m := f.maxRuns.Load(); n > m && !f.maxRuns.CompareAndSwap(m, n); m = f.maxRuns.Load() {
			}
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	f.pool = &Pool{
		Jobs: &Evaluator{Client: f.client, Reader: f.client, Namespace: "kpo-fn", WrapperImage: "kpo:dev",
			Allowlist: []string{"example.com/fns/*"}, Timeout: 5 * time.Second},
		Port: l.Addr().(*net.TCPAddr).Port,
	}
	return f
}

func (f *poolFixture) pods(g Gomega) []corev1.Pod {
	list := &corev1.PodList{}
	g.Expect(f.client.List(context.Background(), list)).To(Succeed())
	return list.Items
}

func resourceList(g Gomega) *framework.ResourceList {
	n, err := yaml.Parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  env: prod\n")
	g.Expect(err).NotTo(HaveOccurred())
	return &framework.ResourceList{Items: []*yaml.RNode{n}}
}

func TestPool_secondRun_reusesTheWarmPod(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "cat")
	for range 3 {
		rl := resourceList(g)
		g.Expect(f.pool.Evaluate(context.Background(), kptfile.Function{Image: poolImage}, rl)).To(Succeed())
		g.Expect(rl.Items).To(HaveLen(1))
		g.Expect(rl.Items[0].MustString()).To(ContainSubstring("env: prod"))
	}
	g.Expect(f.creates.Load()).To(Equal(int32(1)))
	g.Expect(f.pool.Pods()[poolImage]).To(HaveLen(1))
}

func TestPool_podSpec_isRestrictedWithoutToken(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "cat")
	g.Expect(f.pool.Evaluate(context.Background(), kptfile.Function{Image: poolImage}, resourceList(g))).To(Succeed())
	pods := f.pods(g)
	g.Expect(pods).To(HaveLen(1))
	spec := pods[0].Spec
	g.Expect(spec.AutomountServiceAccountToken).To(HaveValue(BeFalse()))
	g.Expect(spec.ServiceAccountName).To(BeEmpty())
	g.Expect(spec.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	g.Expect(spec.Containers).To(HaveLen(1), "no uploader: the outcome comes back over HTTP")
	g.Expect(podToken(&pods[0])).To(HaveLen(48), "the pod's server has a token of its own")
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		g.Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()), c.Name)
		g.Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()), c.Name)
		g.Expect(c.SecurityContext.Capabilities.Drop).To(ContainElement(corev1.Capability("ALL")), c.Name)
		g.Expect(c.Resources.Limits).To(HaveKey(corev1.ResourceMemory), c.Name)
	}
	g.Expect(spec.Containers[0].Image).To(Equal(poolImage))
	g.Expect(spec.Containers[0].Command).To(ContainElements("serve", DefaultEntrypoint))
	g.Expect(pods[0].Annotations).To(HaveKeyWithValue(ImageAnnotation, poolImage))
}

func TestPool_concurrentRuns_stayWithinPodsPerImage(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "sh", "-c", "sleep 0.1; cat")
	f.pool.PodsPerImage = 1
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.pool.Evaluate(context.Background(), kptfile.Function{Image: poolImage}, resourceList(g))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(f.creates.Load()).To(Equal(int32(1)))
	g.Expect(f.maxRuns.Load()).To(Equal(int32(1)), "one run at a time on the one pod")
}

func TestPool_failingFunction_isReportedAndThePodKept(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "sh", "-c", "cat >/dev/null; echo giving up >&2; exit 3")
	err := f.pool.Evaluate(context.Background(), kptfile.Function{Image: poolImage}, resourceList(g))
	var fe *render.FunctionError
	g.Expect(errors.As(err, &fe)).To(BeTrue(), "%v", err)
	g.Expect(fe.ExitCode).To(Equal(3))
	g.Expect(fe.Stderr).To(ContainSubstring("giving up"))
	g.Expect(f.pool.Pods()[poolImage]).To(HaveLen(1), "a function's failure is not the pod's")
}

func TestPool_timeout_killsTheRunAndDeletesThePod(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "sleep", "30")
	f.pool.Jobs.Timeout = 300 * time.Millisecond
	start := time.Now()
	err := f.pool.Evaluate(context.Background(), kptfile.Function{Image: poolImage}, resourceList(g))
	g.Expect(err).To(MatchError(ErrTimeout))
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	g.Expect(f.pool.Pods()[poolImage]).To(BeEmpty())
	g.Expect(f.pods(g)).To(BeEmpty())
}

func TestPool_podGone_theRunGoesToANewPod(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "cat")
	g.Expect(f.pool.Evaluate(context.Background(), kptfile.Function{Image: poolImage}, resourceList(g))).To(Succeed())
	// The pod vanished: nothing listens where it was.
	f.pool.mu.Lock()
	gone := f.pool.images[poolImage].pods[0]
	gone.addr = "127.0.0.1:1"
	f.pool.mu.Unlock()
	rl := resourceList(g)
	g.Expect(f.pool.Evaluate(context.Background(), kptfile.Function{Image: poolImage}, rl)).To(Succeed())
	g.Expect(rl.Items).To(HaveLen(1))
	g.Expect(f.creates.Load()).To(Equal(int32(2)))
	g.Expect(f.pool.Pods()[poolImage]).To(HaveLen(1))
	g.Expect(f.pool.Pods()[poolImage]).NotTo(ContainElement(gone.name))
}

func TestPool_imageNotAllowed_startsNoPod(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "cat")
	err := f.pool.Evaluate(context.Background(), kptfile.Function{Image: "example.org/other:v1"}, resourceList(g))
	g.Expect(err).To(MatchError(ErrImageNotAllowed))
	g.Expect(f.creates.Load()).To(BeZero())
}

func TestPool_start_reapsIdlePodsAndEarlierInstancesPods(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "cat")
	ctx := context.Background()
	leftover := func(name, pool string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kpo-fn",
			Labels: map[string]string{PoolLabel: pool, PoolInstanceLabel: "gone"}}}
	}
	g.Expect(f.client.Create(ctx, leftover("earlier", "kpo"))).To(Succeed())
	g.Expect(f.client.Create(ctx, leftover("other-pool", "elsewhere"))).To(Succeed())
	f.pool.IdleTimeout = 200 * time.Millisecond
	g.Expect(f.pool.Evaluate(ctx, kptfile.Function{Image: poolImage}, resourceList(g))).To(Succeed())

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- f.pool.Start(runCtx) }()
	names := func() []string {
		var out []string
		for _, p := range f.pods(g) {
			out = append(out, p.Name)
		}
		return out
	}
	g.Eventually(names, 5*time.Second, 20*time.Millisecond).Should(ConsistOf("other-pool"))
	g.Expect(f.pool.Pods()[poolImage]).To(BeEmpty())
	stop()
	g.Eventually(done).Should(Receive(BeNil()))
}

func TestPool_stop_deletesItsPods(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "cat")
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.pool.Start(ctx) }()
	g.Expect(f.pool.Evaluate(context.Background(), kptfile.Function{Image: poolImage}, resourceList(g))).To(Succeed())
	g.Expect(f.pods(g)).To(HaveLen(1))
	stop()
	g.Eventually(done).Should(Receive(BeNil()))
	g.Expect(f.pods(g)).To(BeEmpty())
	g.Expect(f.pool.Pods()[poolImage]).To(BeEmpty())
}

func TestServing(t *testing.T) {
	running := corev1.ContainerStatus{Name: functionName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	for _, tc := range []struct {
		name    string
		pod     corev1.PodStatus
		ready   bool
		failure string
	}{
		{name: "pending", pod: corev1.PodStatus{Phase: corev1.PodPending}},
		{name: "running with an address", pod: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.9", ContainerStatuses: []corev1.ContainerStatus{running}}, ready: true},
		{name: "running without an address yet", pod: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{running}}},
		{name: "image not pulled", pod: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: functionName,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "not found"}}}}}, failure: "ErrImagePull: not found"},
		{name: "wrapper not installed", pod: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{Name: "install-wrapper",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}}}}, failure: "exited with code 2"},
		{name: "ended", pod: corev1.PodStatus{Phase: corev1.PodFailed, Message: "evicted"}, failure: "evicted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ready, err := serving(&corev1.Pod{Status: tc.pod})
			g.Expect(ready).To(Equal(tc.ready))
			if tc.failure == "" {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				g.Expect(err).To(MatchError(ContainSubstring(tc.failure)))
			}
		})
	}
}

// The same outcome, whichever way it travels: what a Job's uploader stores and what a warm
// pod answers are Execute's files, and apply reads both.
func TestPool_andJobRun_recordTheSameOutcome(t *testing.T) {
	g := NewWithT(t)
	f := newPoolFixture(t, "sh", "-c", "cat; echo note >&2")
	rlPool := resourceList(g)
	g.Expect(f.pool.Evaluate(context.Background(), kptfile.Function{Image: poolImage}, rlPool)).To(Succeed())
	input, err := render.FunctionInput(resourceList(g))
	g.Expect(err).NotTo(HaveOccurred())
	rlJob := resourceList(g)
	out := wrapper.Execute(context.Background(), strings.NewReader(string(input)), []string{"sh", "-c", "cat; echo note >&2"})
	g.Expect(apply(poolImage, out, rlJob)).To(Succeed())
	g.Expect(rlPool.Items[0].MustString()).To(Equal(rlJob.Items[0].MustString()))
}
