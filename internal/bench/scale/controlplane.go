package scale

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/testenv"
)

// ControlPlane is a fresh envtest kube-apiserver and etcd with kpo's CRDs, cluster config and
// admission policies, whose API server writes the manager's requests to an audit log.
type ControlPlane struct {
	Env *testenv.Environment
	// Audit reads the manager's requests from the API server's audit log.
	Audit *AuditLog
	// APIServerPID and EtcdPID are the processes envtest started.
	APIServerPID, EtcdPID int
}

// StartControlPlane starts the control plane (KUBEBUILDER_ASSETS must be set), as
// testenv.Start does but with an audit policy, installs kpo's cluster config and waits for
// the admission policies. dir holds the audit policy and log; apiServerArgs are extra
// kube-apiserver flags, each "name=value".
func StartControlPlane(ctx context.Context, dir string, apiServerArgs []string) (*ControlPlane, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run `make bench-scale`, or export KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)")
	}
	policy, log := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	env.ControlPlane.GetAPIServer().Configure().
		Set("audit-policy-file", policy).
		Set("audit-log-path", log).
		Set("audit-log-maxsize", "0").
		Set("audit-log-format", "json")
	for _, arg := range apiServerArgs {
		name, value, ok := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if !ok {
			return nil, fmt.Errorf("kube-apiserver flag %q: want name=value", arg)
		}
		env.ControlPlane.GetAPIServer().Configure().Set(name, value)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest control plane: %w", err)
	}
	cp := &ControlPlane{Env: &testenv.Environment{Environment: env, Config: cfg}, Audit: &AuditLog{path: log}}
	if cp.APIServerPID, err = ChildPID(os.Getpid(), "kube-apiserver"); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	if cp.EtcdPID, err = ChildPID(os.Getpid(), "etcd"); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	if err := testenv.InstallConfig(ctx, cfg); err != nil {
		_ = cp.Stop()
		return nil, fmt.Errorf("installing config: %w", err)
	}
	if err := testenv.WaitForPolicies(ctx, cfg); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	return cp, nil
}

// WriteManagerKubeconfig writes a kubeconfig of a client-certificate user named like the
// manager's service account, the identity the admission policies exempt (as `make run` and
// the crash test do).
func (cp *ControlPlane) WriteManagerKubeconfig(path string) error {
	u, err := cp.Env.ControlPlane.AddUser(envtest.User{Name: kpov1.ManagerUsername, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the manager's user: %w", err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// EtcdSize is etcd's size: its database file as etcd reports it (etcd_mvcc_db_total_size_in_bytes
// and …_in_use_in_bytes, from its client URL's /metrics) and its data directory on disk
// (database and write-ahead log).
type EtcdSize struct {
	DB, InUse, Dir int64
}

// EtcdSize reads etcd's size.
func (cp *ControlPlane) EtcdSize(ctx context.Context) (EtcdSize, error) {
	var s EtcdSize
	etcd := cp.Env.ControlPlane.Etcd
	samples, err := Scrape(ctx, etcd.URL.String()+"/metrics")
	if err != nil {
		return s, fmt.Errorf("etcd metrics: %w", err)
	}
	s.DB = int64(samples.Sum("etcd_mvcc_db_total_size_in_bytes", nil))
	s.InUse = int64(samples.Sum("etcd_mvcc_db_total_size_in_use_in_bytes", nil))
	s.Dir, err = DirSize(etcd.DataDir)
	return s, err
}

// Stop stops kube-apiserver and etcd and removes etcd's data.
func (cp *ControlPlane) Stop() error { return cp.Env.Stop() }

// APIServerHeapInUse reads kube-apiserver's Go heap in use from its metrics.
func (cp *ControlPlane) APIServerHeapInUse(ctx context.Context) (int64, error) {
	data, err := cp.apiServerGet(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	samples, err := ParseMetrics(bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	return int64(samples.Sum("go_memstats_heap_inuse_bytes", nil)), nil
}

// WriteAPIServerHeap writes kube-apiserver's heap profile (pprof format, after a garbage
// collection) to path: where its memory goes (`go tool pprof -top path`).
func (cp *ControlPlane) WriteAPIServerHeap(ctx context.Context, path string) error {
	data, err := cp.apiServerGet(ctx, "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// apiServerGet reads path from kube-apiserver as its administrator.
func (cp *ControlPlane) apiServerGet(ctx context.Context, path string) ([]byte, error) {
	cfg := cp.Env.Config
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.Host, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s from kube-apiserver: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
