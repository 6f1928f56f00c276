package node_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/testenv"
)

// The images hack/node/images.sh builds and hack/node/cluster.sh imports into the node.
const (
	// kpoImage is kpo's own image (the manager, its sandbox and the function wrapper): the
	// IMG of make build-installer.
	kpoImage          = "kpo.local/e2e/kpo:dev"
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
	// functionAllowlist lets this tier's function images run.
	functionAllowlist = "kpo.local/e2e/fn-*"

	// managerNamespace and managerDeployment are the installer's.
	managerNamespace  = "kpo-system"
	managerDeployment = "kpo-controller-manager"
	managerSelector   = "app.kubernetes.io/name=kpo"
)

var (
	k8sClient client.Client
	clientset kubernetes.Interface
	restCfg   *rest.Config
	pods      *podRecorder
	// nodeDir is $KPO_NODE_DIR: the node's state (its containerd socket, its image tarballs,
	// its CA).
	nodeDir string
	// nodeIP is the node's address, where pods reach servers the tests start on this machine.
	nodeIP string
	// kubectlBin is the node's kubectl.
	kubectlBin string
	// fluxInstallErr is why Flux's controllers could not be installed, for the test that
	// needs them (nil once they are).
	fluxInstallErr error
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
	nodeIP = os.Getenv("KPO_NODE_IP")
	kubectlBin = filepath.Join(os.Getenv("KPO_NODE_ASSETS"), "kubectl")
	// The manager runs in its pod (its log: dumpManagerLogs); nothing here needs a log.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "node tier:", err)
		return 1
	}
	restCfg = cfg
	ctx := context.Background()

	// Flux first, so that the manager finds its kinds served when it starts and watches them
	// from there (it would look again only a minute later); its pods start while kpo's does.
	fluxInstallErr = installFlux()
	defer dumpFluxLogs()

	// kpo as a user installs it: dist/install.yaml from make build-installer, applied with
	// kubectl, with the function flags this node needs.
	if err := install(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "node tier: installing kpo:", err)
		dumpManagerLogs()
		return 1
	}
	defer dumpManagerLogs()

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
	clientset = cs
	stop := make(chan struct{})
	defer close(stop)
	pods = startPodRecorder(cs, functionNamespace, stop)
	return m.Run()
}

// installOverlay is what a user adds to dist/install.yaml for this node: the function images
// allowed to run, a timeout short enough for the timeout test, and no warm pods, so that the
// function tests see Jobs (the warm pool is tested on its own, and the failover test turns it
// on in the manager).
const installOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- install.yaml
patches:
- target: {kind: Deployment, name: kpo-controller-manager, namespace: kpo-system}
  patch: |
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --function-image-allowlist=` + functionAllowlist + `
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --function-timeout=` + "%s" + `
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --function-pods-per-image=0
`

// install writes dist/install.yaml with make build-installer (IMG=kpoImage), applies it with
// the overlay above, and waits for the CRDs, the admission policies and the manager's pod.
func install(ctx context.Context) error {
	root := testenv.RepoRoot()
	mk := exec.Command("make", "build-installer", "IMG="+kpoImage, "KUBECTL="+kubectlBin)
	mk.Dir = root
	if out, err := mk.CombinedOutput(); err != nil {
		return fmt.Errorf("make build-installer: %v: %s", err, out)
	}
	dir, err := os.MkdirTemp("", "kpo-node-install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	data, err := os.ReadFile(filepath.Join(root, "dist", "install.yaml"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "install.yaml"), data, 0o600); err != nil {
		return err
	}
	overlay := fmt.Sprintf(installOverlay, functionTimeout)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o600); err != nil {
		return err
	}
	if _, err := kubectl("", "apply", "--server-side", "--field-manager=kpo-install", "-k", dir); err != nil {
		return err
	}
	if _, err := kubectl("", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"); err != nil {
		return err
	}
	if err := testenv.WaitForPolicies(ctx, restCfg); err != nil {
		return err
	}
	if _, err := kubectl("", "-n", managerNamespace, "rollout", "status", "deployment/"+managerDeployment, "--timeout=120s"); err != nil {
		out, _ := kubectl("", "-n", managerNamespace, "describe", "pods", "-l", managerSelector)
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// kubectl runs the node's kubectl with kubeconfig (the admin's when empty) and returns its
// standard output.
func kubectl(kubeconfig string, args ...string) (string, error) {
	cmd := exec.Command(kubectlBin, args...)
	if kubeconfig != "" {
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// dumpManagerLogs keeps the manager pods' logs beside the node's own logs
// ($KPO_NODE_DIR/logs, kept after the teardown), for a look after a failure.
func dumpManagerLogs() {
	out, _ := kubectl("", "-n", managerNamespace, "logs", "-l", managerSelector, "--all-containers", "--prefix", "--tail=-1")
	_ = os.WriteFile(filepath.Join(nodeDir, "logs", "kpo-manager.log"), []byte(out), 0o600)
}

// newJobEvaluator is the job evaluator as the manager's --function-* flags would build it for
// this node: config/functions' namespace and uploader, the wrapper image built here, and an
// allowlist of this tier's images. The benchmark runs it in the test process.
func newJobEvaluator(c client.Client, r client.Reader) *job.Evaluator {
	return &job.Evaluator{
		Client: c, Reader: r, Namespace: functionNamespace, WrapperImage: wrapperImage,
		ServiceAccount: uploaderAccount, Allowlist: []string{functionAllowlist},
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
