package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"kpo.dev/kpo/internal/testenv"
)

// fluxNamespace is Flux's RUNTIME_NAMESPACE, where the test's Flux objects live too.
const fluxNamespace = "flux-system"

// fluxControllers are the running Flux processes.
type fluxControllers struct {
	procs []*fluxProcess
}

type fluxProcess struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	health  string        // host:port of the health endpoint
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// startFlux starts source-controller and kustomize-controller from assets against the API
// server of env, as a system:masters user, with every address on loopback and their state
// below dir, and returns once both report ready.
func startFlux(env *testenv.Environment, assets, dir string) (*fluxControllers, error) {
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return nil, err
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "flux", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	kubeconfigPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	addrs, err := freeAddrs(5)
	if err != nil {
		return nil, err
	}
	storage, scMetrics, scHealth, kcMetrics, kcHealth := addrs[0], addrs[1], addrs[2], addrs[3], addrs[4]
	common := []string{"--enable-leader-election=false", "--watch-all-namespaces", "--log-level=debug"}
	specs := []struct {
		name, health string
		args         []string
	}{
		{"source-controller", scHealth, append([]string{
			"--storage-path=" + filepath.Join(dir, "storage"),
			"--storage-addr=" + storage,
			"--storage-adv-addr=" + storage,
			"--metrics-addr=" + scMetrics,
			"--health-addr=" + scHealth,
		}, common...)},
		{"kustomize-controller", kcHealth, append([]string{
			"--metrics-addr=" + kcMetrics,
			"--health-addr=" + kcHealth,
		}, common...)},
	}
	f := &fluxControllers{}
	for _, s := range specs {
		p, err := startProcess(s.name, filepath.Join(assets, s.name), s.args, kubeconfigPath, dir)
		if err != nil {
			f.stop()
			return nil, err
		}
		p.health = s.health
		f.procs = append(f.procs, p)
	}
	for _, p := range f.procs {
		if err := p.waitReady(2 * time.Minute); err != nil {
			return f, err
		}
	}
	return f, nil
}

func startProcess(name, binary string, args []string, kubeconfig, dir string) (*fluxProcess, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	// Later entries win: the test's API server, never the developer's cluster.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "RUNTIME_NAMESPACE="+fluxNamespace, "TMPDIR="+dir)
	out := io.MultiWriter(logFile, logSink())
	cmd.Stdout, cmd.Stderr = out, out
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &fluxProcess{name: name, cmd: cmd, logPath: logPath, log: logFile, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitReady polls the process's readiness endpoint.
func (p *fluxProcess) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	url := "http://" + p.health + "/readyz"
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready: %v (log: %s)", p.name, p.waitErr, p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s after %s (log: %s)", p.name, url, timeout, p.logPath)
		case <-time.After(200 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
}

// stop kills every process and waits for it to exit.
func (f *fluxControllers) stop() {
	for _, p := range f.procs {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		_ = p.log.Close()
	}
}

// running reports an error naming any process that has exited.
func (f *fluxControllers) running() error {
	var errs []error
	for _, p := range f.procs {
		select {
		case <-p.exited:
			errs = append(errs, fmt.Errorf("%s exited: %v (log: %s)", p.name, p.waitErr, p.logPath))
		default:
		}
	}
	return errors.Join(errs...)
}

// dumpLogs writes the end of each process's log to w.
func (f *fluxControllers) dumpLogs(w io.Writer) {
	for _, p := range f.procs {
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "--- last lines of %s (%s) ---\n", p.name, p.logPath)
		b.WriteString(strings.Join(lines, "\n"))
		b.WriteString("\n")
		_, _ = w.Write(b.Bytes())
	}
}

// freeAddrs returns n distinct free loopback addresses.
func freeAddrs(n int) ([]string, error) {
	var out []string
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}
