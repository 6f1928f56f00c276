// Command localenv is what `make run` starts when no KUBECONFIG is set: a local control plane
// (the envtest kube-apiserver and etcd), kpo's CRDs and ClusterRoles, a local Git server with
// sample repositories, and the manager. It prints the KUBECONFIG line for a second terminal
// and stops everything it started on Ctrl-C or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/testenv"
	"kpo.dev/kpo/internal/ui"
)

// The local Git server's address and credentials, as config/samples expects them.
const (
	sampleGitUser     = "kpo"
	sampleGitPassword = "kpo-local-dev" //nolint:gosec // G101: the published password of the local development Git server (config/samples), not a secret
)

// managerUser is the identity the manager runs as, the same as its service account in a
// cluster install, so admission policies that exempt the manager work alike.
const managerUser = "system:serviceaccount:kpo-system:kpo-controller-manager"

func main() {
	var managerBin, dir, gitAddr, uiAddr string
	flag.StringVar(&managerBin, "manager", "bin/manager", "Path of the manager binary.")
	flag.StringVar(&dir, "dir", ".kpo-run", "Directory for the kubeconfig, the Git server and the manager's cache.")
	flag.StringVar(&gitAddr, "git-addr", "127.0.0.1:8180", "Address of the local Git server (config/samples uses it).")
	flag.StringVar(&uiAddr, "ui-addr", "127.0.0.1:8765", "Address of the web UI, served as the local admin (empty: no UI).")
	flag.Parse()
	if err := run(managerBin, dir, gitAddr, uiAddr); err != nil {
		fmt.Fprintln(os.Stderr, "localenv:", err)
		os.Exit(1)
	}
}

func run(managerBin, dir, gitAddr, uiAddr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "localenv: starting kube-apiserver and etcd")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	if err := testenv.InstallConfig(ctx, env.Config); err != nil {
		return err
	}
	if err := testenv.WaitForPolicies(ctx, env.Config); err != nil {
		return err
	}
	userKubeconfig, err := writeKubeconfig(env, envtest.User{Name: "kpo-admin", Groups: []string{"system:masters"}}, filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return err
	}
	managerKubeconfig, err := writeKubeconfig(env, envtest.User{Name: managerUser, Groups: []string{"system:masters"}}, filepath.Join(dir, "manager.kubeconfig"))
	if err != nil {
		return err
	}

	srv, err := gitserver.Start(gitserver.Options{
		Root: filepath.Join(dir, "git"), Username: sampleGitUser, Password: sampleGitPassword, Addr: gitAddr,
	})
	if err != nil {
		return fmt.Errorf("starting the local Git server on %s: %w", gitAddr, err)
	}
	defer func() { _ = srv.Close() }()
	if err := gitserver.SeedSamples(srv); err != nil {
		return err
	}

	manager := exec.CommandContext(ctx, managerBin, //nolint:gosec // G204: the developer's own manager binary (-manager), run with fixed flags
		"--git-cache-dir="+filepath.Join(dir, "git-cache"),
		"--health-probe-bind-address=127.0.0.1:0")
	manager.Env = append(os.Environ(), "KUBECONFIG="+managerKubeconfig)
	manager.Stdout, manager.Stderr = os.Stdout, os.Stderr
	manager.Cancel = func() error { return manager.Process.Signal(syscall.SIGTERM) }
	if err := manager.Start(); err != nil {
		return fmt.Errorf("starting the manager: %w", err)
	}

	fmt.Fprintf(os.Stderr, "localenv: Git server at %s (user %q, password %q); sample repositories: blueprints, deployments\n",
		srv.URL(), sampleGitUser, sampleGitPassword)
	fmt.Fprintln(os.Stderr, "localenv: ready. In a second terminal run:")
	fmt.Printf("export KUBECONFIG=%s\n", userKubeconfig)
	if uiAddr != "" {
		if url, err := serveUI(ctx, userKubeconfig, uiAddr); err != nil {
			fmt.Fprintf(os.Stderr, "localenv: no web UI: %v\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "localenv: web UI (as kpo-admin): %s\n", url)
		}
	}

	err = manager.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "localenv: stopping")
		return nil
	}
	return fmt.Errorf("the manager exited: %v", err)
}

// writeKubeconfig writes a kubeconfig of a new client-certificate user of the control plane.
func writeKubeconfig(env *testenv.Environment, user envtest.User, path string) (string, error) {
	u, err := env.ControlPlane.AddUser(user, nil)
	if err != nil {
		return "", fmt.Errorf("adding user %s: %w", user.Name, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, data, 0o600)
}

// serveUI serves the web UI as the local admin (the kubeconfig of the export line) until ctx
// ends, and returns its URL.
func serveUI(ctx context.Context, kubeconfig, addr string) (string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listening on %s: %w", addr, err)
	}
	srv, err := ui.New(ui.Options{Config: cfg, Namespace: "default"}, l.Addr().String())
	if err != nil {
		_ = l.Close()
		return "", err
	}
	go func() {
		if err := srv.Serve(ctx, l); err != nil {
			fmt.Fprintln(os.Stderr, "localenv: web UI:", err)
		}
	}()
	return srv.URL(), nil
}
