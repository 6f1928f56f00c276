package job_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/fn/job/jobtest"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
	"kpo.dev/kpo/internal/testenv"
)

const (
	setNamespaceImage = "example.com/fns/set-namespace:v1"
	failingImage      = "example.com/fns/fails:v1"
	unpulledImage     = "example.com/fns/never-runs:v1"
)

var (
	k8sClient client.Client
	node      *jobtest.Node
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	bin, err := os.MkdirTemp("", "kpo-job-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bin)
	for _, pkg := range []string{"cmd/kpo-fn-wrapper", "cmd/kpo-fn"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, filepath.Base(pkg)), "./"+pkg)
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "uploader", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kubeconfigPath := filepath.Join(bin, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	if k8sClient, err = client.New(env.Config, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kpo-fn"}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node = &jobtest.Node{
		Client: k8sClient, Namespace: "kpo-fn", Kubeconfig: kubeconfigPath,
		Wrapper: filepath.Join(bin, "kpo-fn-wrapper"),
		Functions: map[string][]string{
			setNamespaceImage: {filepath.Join(bin, "kpo-fn"), "set-namespace"},
			failingImage:      {filepath.Join(bin, "kpo-fn"), "no-such-function"},
		},
	}
	node.Start(ctx)
	return m.Run()
}

func evaluator(timeout time.Duration) *job.Evaluator {
	return &job.Evaluator{
		Client: k8sClient, Reader: k8sClient, Namespace: "kpo-fn", WrapperImage: "kpo-fn-wrapper:dev",
		ServiceAccount: "kpo-fn-uploader", Allowlist: []string{"example.com/fns/*"},
		Timeout: timeout, PollInterval: 20 * time.Millisecond,
	}
}

func resourceList(t *testing.T) *framework.ResourceList {
	t.Helper()
	item, err := yaml.Parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm # keep this comment\ndata:\n  a: b\n")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	cfg, err := yaml.Parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: function-input\ndata:\n  namespace: prod\n")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return &framework.ResourceList{Items: []*yaml.RNode{item}, FunctionConfig: cfg}
}

func expectCleanedUp(g Gomega) {
	g.Eventually(func(g Gomega) {
		jobs := &batchv1.JobList{}
		g.Expect(k8sClient.List(context.Background(), jobs, client.InNamespace("kpo-fn"), client.HasLabels{job.FunctionLabel})).To(Succeed())
		g.Expect(jobs.Items).To(BeEmpty())
		cms := &corev1.ConfigMapList{}
		g.Expect(k8sClient.List(context.Background(), cms, client.InNamespace("kpo-fn"), client.HasLabels{job.FunctionLabel})).To(Succeed())
		g.Expect(cms.Items).To(BeEmpty())
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
}

func TestEvaluator_runsTheFunctionInAJobAndCleansUp(t *testing.T) {
	g := NewWithT(t)
	rl := resourceList(t)
	err := evaluator(time.Minute).Evaluate(context.Background(), kptfile.Function{Image: setNamespaceImage}, rl)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rl.Items).To(HaveLen(1))
	g.Expect(rl.Items[0].GetNamespace()).To(Equal("prod"))
	g.Expect(rl.Items[0].MustString()).To(ContainSubstring("# keep this comment"))
	expectCleanedUp(g)
}

func TestEvaluator_failingFunction_isAFunctionErrorWithExitCodeAndStderr(t *testing.T) {
	g := NewWithT(t)
	err := evaluator(time.Minute).Evaluate(context.Background(), kptfile.Function{Image: failingImage}, resourceList(t))
	var fe *render.FunctionError
	g.Expect(errors.As(err, &fe)).To(BeTrue(), "got %v", err)
	g.Expect(fe.ExitCode).NotTo(BeZero())
	g.Expect(fe.Stderr).To(ContainSubstring("no-such-function"))
	expectCleanedUp(g)
}

func TestEvaluator_imageNotOnTheAllowlist_isRefusedBeforeAnyJob(t *testing.T) {
	g := NewWithT(t)
	err := evaluator(time.Minute).Evaluate(context.Background(), kptfile.Function{Image: "docker.io/evil/fn:latest"}, resourceList(t))
	g.Expect(errors.Is(err, job.ErrImageNotAllowed)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("--function-image-allowlist"))
	jobs := &batchv1.JobList{}
	g.Expect(k8sClient.List(context.Background(), jobs, client.InNamespace("kpo-fn"))).To(Succeed())
	for _, j := range jobs.Items {
		g.Expect(j.Spec.Template.Spec.Containers[0].Image).NotTo(Equal("docker.io/evil/fn:latest"))
	}
}

func TestEvaluator_functionThatNeverFinishes_timesOut(t *testing.T) {
	g := NewWithT(t)
	err := evaluator(2*time.Second).Evaluate(context.Background(), kptfile.Function{Image: unpulledImage}, resourceList(t))
	g.Expect(errors.Is(err, job.ErrTimeout)).To(BeTrue(), "got %v", err)
	expectCleanedUp(g)
}
