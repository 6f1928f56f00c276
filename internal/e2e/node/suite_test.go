package node_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/testenv"
)

// The images hack/node/images.sh builds and hack/node/cluster.sh imports into the node.
const (
	wrapperImage      = "kpo.local/e2e/kpo-fn-wrapper:dev"
	setNamespaceImage = "kpo.local/e2e/fn-set-namespace:dev"
	failingImage      = "kpo.local/e2e/fn-fail:dev"
	sleepingImage     = "kpo.local/e2e/fn-sleep:dev"
	// failingStderrTail is the last line the failing function writes to stderr.
	failingStderrTail = "testfn: failing on purpose"

	// functionNamespace and its uploader ServiceAccount come from config/functions.
	functionNamespace = "kpo-fn"
	uploaderAccount   = "kpo-fn-uploader"
	// functionTimeout is the job evaluator's limit: a Job on this node takes a few seconds.
	functionTimeout = 20 * time.Second
)

var (
	k8sClient client.Client
	restCfg   *rest.Config
	pods      *podRecorder
	// nodeDir is $KPO_NODE_DIR: the node's state (its containerd socket, its image tarballs).
	nodeDir string
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	nodeDir = os.Getenv("KPO_NODE_DIR")
	if nodeDir == "" || os.Getenv("KUBECONFIG") == "" {
		// go test ./... (make test) lands here; make e2e never does: hack/node/cluster.sh run
		// sets both, or fails saying why the node cannot come up.
		fmt.Println("node tier: not run: no node is up (KPO_NODE_DIR and KUBECONFIG unset); run `make e2e`")
		return 0
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(logSink())))
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "node tier:", err)
		return 1
	}
	restCfg = cfg

	// kpo's CRDs, ClusterRoles, admission policies and config/functions, on the node's cluster.
	env := &envtest.Environment{
		UseExistingCluster:    ptr.To(true),
		Config:                cfg,
		CRDDirectoryPaths:     []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	if _, err := env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "node tier: installing CRDs:", err)
		return 1
	}
	ctx := context.Background()
	if err := testenv.InstallConfig(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "node tier: installing config:", err)
		return 1
	}
	if err := testenv.WaitForPolicies(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "node tier:", err)
		return 1
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(kpov1.AddToScheme(scheme))
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "node tier:", err)
		return 1
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "node tier:", err)
		return 1
	}
	stop := make(chan struct{})
	defer close(stop)
	pods = startPodRecorder(cs, functionNamespace, stop)

	// kpo's manager, in process, as its own identity, as internal/e2e sets it up, but with the
	// job evaluator on: functions that are not built in run as Jobs on the node.
	mgr, err := ctrl.NewManager(testenv.ManagerConfig(cfg), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controller.CacheOptions(),
		Client:                 controller.ClientOptions(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "node tier: creating manager:", err)
		return 1
	}
	workDir, err := os.MkdirTemp("", "kpo-e2e-node-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "node tier:", err)
		return 1
	}
	defer os.RemoveAll(workDir)
	jobs := newJobEvaluator(mgr.GetClient(), mgr.GetAPIReader())
	if err := controller.SetupWithManager(mgr, controller.Options{
		GitCache:          git.NewCache(filepath.Join(workDir, "git-cache")),
		RepositoryWorkers: 4,
		// No function cache: every render the tests cause runs a Job.
		Render: fn.NewSelector(nil, jobs, -1).Render,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "node tier: setting up controllers:", err)
		return 1
	}
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(mgrCtx); err != nil {
			fmt.Fprintln(os.Stderr, "node tier: manager:", err)
		}
	}()
	defer func() { cancel(); <-done }()
	return m.Run()
}

// newJobEvaluator is the job evaluator as the manager's --function-* flags would build it for
// this node: config/functions' namespace and uploader, the wrapper image built here, and an
// allowlist of this tier's images.
func newJobEvaluator(c client.Client, r client.Reader) *job.Evaluator {
	return &job.Evaluator{
		Client: c, Reader: r, Namespace: functionNamespace, WrapperImage: wrapperImage,
		ServiceAccount: uploaderAccount, Allowlist: []string{"kpo.local/e2e/fn-*"},
		Timeout: functionTimeout, PollInterval: 50 * time.Millisecond,
	}
}

// podRecorder keeps the last state seen of every pod of a namespace, deleted ones included, so
// that tests can inspect the pod that ran a function after the evaluator cleaned it up.
type podRecorder struct {
	mu   sync.Mutex
	pods map[string]*corev1.Pod
	gone map[string]bool
}

func startPodRecorder(cs kubernetes.Interface, ns string, stop <-chan struct{}) *podRecorder {
	r := &podRecorder{pods: map[string]*corev1.Pod{}, gone: map[string]bool{}}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	record := func(obj any, deleted bool) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.pods[p.Name] = p.DeepCopy()
		r.gone[p.Name] = r.gone[p.Name] || deleted
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { record(o, false) },
		UpdateFunc: func(_, o any) { record(o, false) },
		DeleteFunc: func(o any) { record(o, true) },
	})
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	return r
}

// ofImage returns the pods seen whose function container ran image, and whether each is gone.
func (r *podRecorder) ofImage(image string) (out []*corev1.Pod, gone []bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, p := range r.pods {
		if len(p.Spec.Containers) > 0 && p.Spec.Containers[0].Image == image {
			out = append(out, p.DeepCopy())
			gone = append(gone, r.gone[name])
		}
	}
	return out, gone
}

// logSink is where the manager's log goes: stderr with KPO_TEST_LOG=1.
func logSink() io.Writer {
	if os.Getenv("KPO_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
