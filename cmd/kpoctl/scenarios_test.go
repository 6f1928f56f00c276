package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/kpoctl"
	"kpo.dev/kpo/internal/testenv"
)

// A scenario is a sequence of kpoctl invocations against a real API server, the kpo manager
// and a Git server with basic auth, each with the exact output and exit code it must give.
// See testdata/scenarios/README.md for the format.
type scenario struct {
	Description string `json:"description"`
	Setup       struct {
		// Repos are Git repositories created on the scenario's Git server.
		Repos []struct {
			Name    string `json:"name"`
			Commits []struct {
				Files   map[string]string `json:"files"`
				Message string            `json:"message"`
				// Tags are created on this commit.
				Tags []string `json:"tags"`
			} `json:"commits"`
		} `json:"repos"`
		// Users maps a username (for a step's `as`) to the ClusterRoles bound to it in the
		// scenario's namespace.
		Users map[string][]string `json:"users"`
	} `json:"setup"`
	Steps []step `json:"steps"`
}

type step struct {
	// Args of kpoctl; ${VAR} is expanded (see expand).
	Args []string `json:"args"`
	// As is the user to impersonate (kubectl --as); empty is the cluster admin.
	As    string `json:"as"`
	Stdin string `json:"stdin"`
	// Stdout and Stderr are the exact expected output (after expansion), where {{name}} and
	// {{/regexp/}} match variable parts; omitted means empty.
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Exit   int    `json:"exit"`
	// WriteFiles are written into the scenario's work directory before the step.
	WriteFiles map[string]string `json:"writeFiles"`
	// RemoveFiles are removed from the work directory before the step.
	RemoveFiles []string `json:"removeFiles"`
	// ExpectFiles must have exactly this content in the work directory after the step.
	ExpectFiles map[string]string `json:"expectFiles"`
}

var (
	kubeconfigTemplate *clientcmdapi.Config
	adminClient        client.Client
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	logOut := io.Discard
	if os.Getenv("KPO_TEST_LOG") != "" {
		logOut = os.Stderr
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(logOut)))
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	kpo, err := testenv.StartKpo(env, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer kpo.Stop()

	if adminClient, err = client.New(env.Config, client.Options{Scheme: testenv.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kubeconfigTemplate = kubeconfigFor(env.Config)
	return m.Run()
}

// kubeconfigFor is a kubeconfig for the envtest admin, as `kind` or a cloud CLI would write.
func kubeconfigFor(cfg *rest.Config) *clientcmdapi.Config {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	return kc
}

const (
	gitUser     = "kpo-scenario"
	gitPassword = "scenario-Pa55word"
)

func TestScenarios(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no scenarios in testdata/scenarios (%v)", err)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, p)
		})
	}
}

func runScenario(t *testing.T, path string) {
	g := NewWithT(t)
	raw, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())
	var sc scenario
	g.Expect(yaml.UnmarshalStrict(raw, &sc)).To(Succeed(), "parsing %s", path)
	ctx := context.Background()

	ns, dir, kubeconfig := newWorkspace(t)
	for user, roles := range sc.Setup.Users {
		for _, role := range roles {
			g.Expect(adminClient.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role, Namespace: ns},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
				Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
			})).To(Succeed())
		}
	}

	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Username: gitUser, Password: gitPassword})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = srv.Close() })
	for _, r := range sc.Setup.Repos {
		repo, err := srv.CreateRepo(r.Name)
		g.Expect(err).NotTo(HaveOccurred())
		for _, c := range r.Commits {
			hash, err := repo.Commit("main", gitserver.Change{Files: c.Files, Message: c.Message})
			g.Expect(err).NotTo(HaveOccurred())
			for _, tag := range c.Tags {
				g.Expect(repo.Tag(tag, hash)).To(Succeed())
			}
		}
	}

	vars := map[string]string{"GIT": srv.URL(), "GIT_USER": gitUser, "GIT_PASSWORD": gitPassword, "NS": ns, "DIR": dir}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string {
			if v, ok := vars[k]; ok {
				return v
			}
			return "${" + k + "}"
		})
	}

	// KPO_SCENARIO_RECORD=1 logs what every step printed instead of checking it: a start for
	// writing a new scenario's expectations.
	recording := os.Getenv("KPO_SCENARIO_RECORD") != ""
	for i, st := range sc.Steps {
		for p, content := range st.WriteFiles {
			dest := filepath.Join(dir, filepath.FromSlash(p))
			g.Expect(os.MkdirAll(filepath.Dir(dest), 0o755)).To(Succeed())
			g.Expect(os.WriteFile(dest, []byte(expand(content)), 0o644)).To(Succeed())
		}
		for _, p := range st.RemoveFiles {
			g.Expect(os.RemoveAll(filepath.Join(dir, filepath.FromSlash(p)))).To(Succeed())
		}
		args := []string{"--kubeconfig", kubeconfig}
		if st.As != "" {
			args = append(args, "--as", st.As)
		}
		for _, a := range st.Args {
			args = append(args, expand(a))
		}
		var stdout, stderr bytes.Buffer
		start := time.Now()
		code := kpoctl.Run(ctx, args, kpoctl.IOStreams{In: strings.NewReader(expand(st.Stdin)), Out: &stdout, ErrOut: &stderr})
		where := fmt.Sprintf("%s step %d: kpoctl %s (as %q, %s)\nstdout:\n%s\nstderr:\n%s",
			filepath.Base(path), i+1, strings.Join(st.Args, " "), st.As, time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
		if recording {
			t.Logf("%s\nexit: %d", where, code)
			continue
		}
		g.Expect(code).To(Equal(st.Exit), where)
		g.Expect(stdout.String()).To(MatchOutput(expand(st.Stdout)), where)
		g.Expect(stderr.String()).To(MatchOutput(expand(st.Stderr)), where)
		for _, p := range slices.Sorted(mapsKeys(st.ExpectFiles)) {
			got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
			g.Expect(err).NotTo(HaveOccurred(), where)
			g.Expect(string(got)).To(MatchOutput(expand(st.ExpectFiles[p])), "%s: file %s", where, p)
		}
	}
}

// newWorkspace creates a namespace (deleted when the test ends), a work directory and, in it,
// a kubeconfig of the envtest admin whose context namespace is that namespace.
func newWorkspace(t *testing.T) (ns, dir, kubeconfig string) {
	t.Helper()
	g := NewWithT(t)
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kpoctl-"}}
	g.Expect(adminClient.Create(context.Background(), obj)).To(Succeed())
	t.Cleanup(func() { _ = adminClient.Delete(context.Background(), obj) })
	dir = t.TempDir()
	kc := kubeconfigTemplate.DeepCopy()
	kc.Contexts["envtest"].Namespace = obj.Name
	kubeconfig = filepath.Join(dir, "kubeconfig")
	g.Expect(clientcmd.WriteToFile(*kc, kubeconfig)).To(Succeed())
	return obj.Name, dir, kubeconfig
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
