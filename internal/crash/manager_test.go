package crash_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/testenv"
)

// buildManager builds the manager (./cmd) into dir, as `make build` does.
func buildManager(dir string) (string, error) {
	bin := filepath.Join(dir, "manager")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the manager: %v\n%s", err, out)
	}
	return bin, nil
}

// writeManagerKubeconfig writes a kubeconfig of a client-certificate user named like the
// manager's service account, the identity the admission policies exempt (as `make run` does).
func writeManagerKubeconfig(env *testenv.Environment, path string) error {
	u, err := env.ControlPlane.AddUser(envtest.User{Name: kpov1.ManagerUsername, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the manager's user: %w", err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// managerProcess runs the manager binary, kills it with SIGKILL and restarts it, always with
// the same Git cache directory: what a crash leaves there is part of what is tested.
type managerProcess struct {
	bin, kubeconfig, cacheDir, logPath string
	trace                              *tracer

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	killing bool
	starts  int
	kills   int
	// selfExits describes every exit the test did not cause.
	selfExits []string
}

// start starts the manager; it must not be running.
func (m *managerProcess) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("the manager is already running (pid %d)", m.cmd.Process.Pid)
	}
	logFile, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	m.starts++
	n := m.starts
	fmt.Fprintf(logFile, "=== crash test: manager start #%d at %s ===\n", n, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(m.bin,
		"--git-cache-dir="+m.cacheDir,
		"--health-probe-bind-address=0",
		"--metrics-bind-address=0",
		"--leader-elect=false",
	)
	// Later entries win: the test's API server, never the developer's cluster.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+m.kubeconfig)
	out := io.MultiWriter(logFile, logSink())
	cmd.Stdout, cmd.Stderr = out, out
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting the manager: %w", err)
	}
	exited := make(chan struct{})
	m.cmd, m.exited, m.killing = cmd, exited, false
	m.trace.log("manager start #%d pid %d", n, cmd.Process.Pid)
	go func() {
		err := cmd.Wait()
		_ = logFile.Close()
		m.mu.Lock()
		if !m.killing {
			msg := fmt.Sprintf("manager start #%d (pid %d) exited by itself: %v", n, cmd.Process.Pid, err)
			m.selfExits = append(m.selfExits, msg)
			m.trace.log("%s", msg)
		}
		if m.cmd == cmd {
			m.cmd = nil
		}
		m.mu.Unlock()
		close(exited)
	}()
	return nil
}

// kill sends SIGKILL to the running manager and waits until it is gone; it does nothing when
// the manager is not running (it exited by itself).
func (m *managerProcess) kill() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	if cmd == nil {
		m.mu.Unlock()
		return
	}
	m.killing = true
	m.kills++
	n := m.kills
	m.mu.Unlock()
	m.trace.log("kill #%d: SIGKILL pid %d", n, cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// counts returns the number of starts and kills, and the exits the test did not cause.
func (m *managerProcess) counts() (starts, kills int, selfExits []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.starts, m.kills, append([]string(nil), m.selfExits...)
}

// logTail returns the last n lines of the manager's log.
func (m *managerProcess) logTail(n int) string {
	data, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", m.logPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b bytes.Buffer
	for _, l := range lines {
		if len(l) > 400 {
			l = l[:400] + "…"
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// logSink is where the manager's log goes besides its file: stderr with KPO_TEST_LOG=1.
func logSink() io.Writer {
	if os.Getenv("KPO_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// tracer writes a time-stamped line per accepted operation, kill and start to a file, so a
// violation can be matched against the manager's log.
type tracer struct {
	mu    sync.Mutex
	f     *os.File
	start time.Time
}

func newTracer(path string) (*tracer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &tracer{f: f, start: time.Now()}, nil
}

func (t *tracer) log(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.f, "%s +%8.3fs %s\n", time.Now().Format("15:04:05.000"), time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}

func (t *tracer) close() { _ = t.f.Close() }
