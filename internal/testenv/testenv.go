// Package testenv starts a real kube-apiserver and etcd (envtest) with kpo's CRDs installed,
// for tests and for `make run` without a cluster.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Environment is a running control plane.
type Environment struct {
	*envtest.Environment
	// Config is an admin (system:masters) config for the API server.
	Config *rest.Config
}

// RepoRoot is the directory of kpo's go.mod, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Start brings up kube-apiserver and etcd from $KUBEBUILDER_ASSETS (see
// hack/envtest-assets.sh, which `make test` runs) and installs the CRDs of config/crd/bases,
// and those of extraCRDDirs (for one, Flux's in the end-to-end test).
func Start(extraCRDDirs ...string) (*Environment, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, or export KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     append([]string{filepath.Join(RepoRoot(), "config", "crd", "bases")}, extraCRDDirs...),
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest control plane: %w", err)
	}
	return &Environment{Environment: env, Config: cfg}, nil
}
