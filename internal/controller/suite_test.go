package controller_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/fn/job/jobtest"
	"kpo.dev/kpo/internal/fn/sandbox"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/testenv"
)

// The control plane and the manager are shared by the tests of this package; each test works
// in its own namespace against its own Git server.
var (
	k8sClient client.Client
	// adminConfig is the control plane admin (system:masters) config, for impersonation.
	adminConfig *rest.Config
	managerLog  = &syncBuffer{}
	// managerRequests counts the API requests the manager sends.
	managerRequests *testenv.Requests
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	// Everything the manager logs is kept, so tests can assert what never reaches a log.
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(io.MultiWriter(managerLog, logSink()))))

	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()

	binDir, err := os.MkdirTemp("", "kpo-fn-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	kpo, err := testenv.StartKpo(env, func(mgr ctrl.Manager, opts *controller.Options) error {
		selector, err := startFunctionNode(env, mgr, binDir)
		if err != nil {
			return fmt.Errorf("starting the function node: %w", err)
		}
		opts.Render = selector.Render
		opts.GitOpsRecheck = time.Second // a GitOps tool installed by a test is watched at once
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer kpo.Stop()
	managerRequests = kpo.Requests

	adminConfig = env.Config
	k8sClient, err = client.New(env.Config, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Function images the tests' Job evaluator runs, through the node-playing helper.
const (
	jobSetNamespaceImage = "example.com/fns/namespacer:v1" // not a built-in name: runs as a Job
	notAllowedImage      = "docker.io/unknown/fn:v1"
	functionNamespace    = "kpo-fn"
)

var functionNode *jobtest.Node

// startFunctionNode builds kpo-fn-wrapper and kpo-fn, starts a node-playing helper for the
// function namespace, and returns the evaluator selection the manager renders with: Jobs for
// the function images, kpo-fn as the sandbox of starlark.
func startFunctionNode(env *testenv.Environment, mgr ctrl.Manager, dir string) (*fn.Selector, error) {
	for _, pkg := range []string{"cmd/kpo-fn-wrapper", "cmd/kpo-fn"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, filepath.Base(pkg)), "./"+pkg)
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s: %v\n%s", pkg, err, out)
		}
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "function-uploader", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	kubeconfigPath := filepath.Join(dir, "uploader.kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	admin, err := client.New(env.Config, client.Options{})
	if err != nil {
		return nil, err
	}
	if err := admin.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: functionNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	functionNode = &jobtest.Node{
		Client: admin, Namespace: functionNamespace, Kubeconfig: kubeconfigPath,
		Wrapper:   filepath.Join(dir, "kpo-fn-wrapper"),
		Functions: map[string][]string{jobSetNamespaceImage: {filepath.Join(dir, "kpo-fn"), "set-namespace"}},
	}
	functionNode.Start(context.Background())
	jobs := &job.Evaluator{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: functionNamespace,
		WrapperImage: "kpo-fn-wrapper:test", ServiceAccount: "kpo-fn-uploader",
		Allowlist: []string{"example.com/fns/*"}, Timeout: time.Minute, PollInterval: 20 * time.Millisecond,
	}
	selector := fn.NewSelector(nil, jobs, 64)
	// starlark runs in kpo-fn child processes, as in the image: see bounded_functions_test.go.
	selector.Sandbox = &sandbox.Evaluator{Binary: filepath.Join(dir, sandbox.BinaryName), Memory: sandboxMemory, Timeout: time.Minute}
	return selector, nil
}

// sandboxMemory is the memory budget of the manager's starlark runs.
const sandboxMemory = 256 << 20

// logSink is where the manager's log goes besides the buffer: stderr with KPO_TEST_LOG=1.
func logSink() io.Writer {
	if os.Getenv("KPO_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// syncBuffer is a goroutine-safe log buffer.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newNamespace creates a namespace for one test and deletes it when the test ends.
func newNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kpo-test-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), ns) })
	return ns.Name
}

const (
	gitUser     = "kpo-test"
	gitPassword = "s3cr3t-Pa55word-never-logged"
)

// newGitServer starts a real smart-HTTP Git server with basic auth for one test.
func newGitServer(t testing.TB) *gitserver.Server {
	t.Helper()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Username: gitUser, Password: gitPassword})
	if err != nil {
		t.Fatalf("starting git server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// newCredentials creates the basic-auth Secret of the test Git server in ns.
func newCredentials(t testing.TB, ns, name, password string) {
	t.Helper()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{corev1.BasicAuthUsernameKey: gitUser, corev1.BasicAuthPasswordKey: password},
	}
	if err := k8sClient.Create(context.Background(), secret); err != nil {
		t.Fatalf("creating secret: %v", err)
	}
}
