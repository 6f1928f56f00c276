package scale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"kpo.dev/kpo/internal/testenv"
)

// BuildManager builds the manager (./cmd) and its function sandbox kpo-fn into dir, as `make
// build` does, and returns the manager's path.
func BuildManager(ctx context.Context, dir string) (string, error) {
	for _, b := range []struct{ out, pkg string }{{"manager", "./cmd"}, {"kpo-fn", "./cmd/kpo-fn"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b.out), b.pkg) //nolint:gosec // G204: go build of the repository's own commands
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("building %s: %w\n%s", b.pkg, err, out)
		}
	}
	return filepath.Join(dir, "manager"), nil
}

// Manager is the manager binary running as a process with the manager identity's kubeconfig
// and its metrics served over plain HTTP on a loopback port.
type Manager struct {
	cmd        *exec.Cmd
	exited     chan struct{}
	metricsURL string
}

// StartManager starts bin with its Git cache in cacheDir, its log in logPath, the metrics
// endpoint on a free loopback port, no probes and no leader election, and extra flags after
// those. It returns once the metrics endpoint answers (at most a minute).
func StartManager(ctx context.Context, bin, kubeconfig, cacheDir, logPath string, extra []string) (*Manager, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath) //nolint:gosec // G304: a file in the benchmark's own work directory
	if err != nil {
		return nil, err
	}
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{
		"--git-cache-dir=" + cacheDir,
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=0",
		"--leader-elect=false",
	}, extra...)
	cmd := exec.Command(bin, args...) //nolint:gosec // G204: the manager binary the benchmark built (or -manager), with its own flags
	// Later entries win: the benchmark's API server, never the developer's cluster.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting the manager: %w", err)
	}
	m := &Manager{cmd: cmd, exited: make(chan struct{}), metricsURL: "http://" + metricsAddr + "/metrics"}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(m.exited)
	}()
	err = testenv.PollUntil(ctx, 200*time.Millisecond, time.Minute, func(ctx context.Context) (error, error) {
		select {
		case <-m.exited:
			return nil, fmt.Errorf("the manager exited at start; see %s", logPath)
		default:
		}
		_, err := Scrape(ctx, m.metricsURL)
		return err, nil
	})
	if err != nil {
		m.Stop()
		return nil, fmt.Errorf("waiting for the manager's metrics endpoint: %w", err)
	}
	return m, nil
}

// PID is the manager's process id.
func (m *Manager) PID() int { return m.cmd.Process.Pid }

// Exited reports whether the manager has exited.
func (m *Manager) Exited() bool {
	select {
	case <-m.exited:
		return true
	default:
		return false
	}
}

// Metrics scrapes the manager's metrics endpoint.
func (m *Manager) Metrics(ctx context.Context) (Samples, error) {
	if m.Exited() {
		return nil, errors.New("the manager has exited")
	}
	return Scrape(ctx, m.metricsURL)
}

// Requests reads the manager's request counters.
func (m *Manager) Requests(ctx context.Context) (Requests, error) {
	ss, err := m.Metrics(ctx)
	if err != nil {
		return Requests{}, err
	}
	return RequestsOf(ss), nil
}

// Memory reads the manager's resident set and its peak.
func (m *Manager) Memory() (Memory, error) { return ProcMemory(m.PID()) }

// WaitQuiet waits until the manager has sent no request and its work queues were empty for
// quiet in a row, at most max. It returns whether it became quiet.
func (m *Manager) WaitQuiet(ctx context.Context, quiet, maxWait time.Duration) (bool, error) {
	deadline := time.Now().Add(maxWait)
	var last float64 = -1
	var since time.Time
	for {
		ss, err := m.Metrics(ctx)
		if err != nil {
			return false, err
		}
		total := RequestsOf(ss).Total()
		depth := ss.Sum("workqueue_depth", nil)
		now := time.Now()
		if total != last || depth > 0 {
			last, since = total, now
		} else if now.Sub(since) >= quiet {
			return true, nil
		}
		if now.After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM, waits at most 15 seconds, then kills the manager.
func (m *Manager) Stop() {
	if m.Exited() {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(15 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
