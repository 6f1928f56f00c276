package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/testenv"
)

// The control plane, kpo's manager and the two Flux controllers are shared by the tests of this
// package; each test works in its own namespace against its own Git server.
var (
	k8sClient client.Client
	flux      *fluxControllers
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(logSink())))

	assets, err := fluxAssets()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	env, err := testenv.Start(filepath.Join(assets, "crd"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()

	// kpo's manager, in process, as its own identity (the one the admission policies exempt);
	// rendering uses the built-in functions.
	kpo, err := testenv.StartKpo(env, func(_ ctrl.Manager, opts *controller.Options) error {
		opts.Render = fn.NewSelector(nil, nil, 0).Render
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer kpo.Stop()
	ctx := context.Background()
	workDir, err := os.MkdirTemp("", "kpo-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(workDir)

	k8sClient, err = client.New(env.Config, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		fmt.Fprintln(os.Stderr, "e2e: creating namespace", fluxNamespace+":", err)
		return 1
	}

	// Flux, as two processes against the same API server.
	flux, err = startFlux(env, assets, filepath.Join(workDir, "flux"))
	if err != nil {
		if flux != nil {
			flux.dumpLogs(os.Stderr)
			flux.stop()
		}
		fmt.Fprintln(os.Stderr, "e2e: starting Flux:", err)
		return 1
	}
	defer flux.stop()

	code := m.Run()
	if code != 0 {
		flux.dumpLogs(os.Stderr)
	}
	return code
}

// fluxAssets returns the directory of Flux's binaries and CRDs (see hack/flux-assets.sh):
// $FLUX_ASSETS when it is complete, otherwise whatever the script finds in its cache or builds.
func fluxAssets() (string, error) {
	if dir := os.Getenv("FLUX_ASSETS"); dir != "" {
		err := checkFluxAssets(dir)
		if err == nil {
			return dir, nil
		}
		fmt.Fprintf(os.Stderr, "e2e: FLUX_ASSETS=%s is not usable (%v); running hack/flux-assets.sh\n", dir, err)
	}
	script := filepath.Join(testenv.RepoRoot(), "hack", "flux-assets.sh")
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "FLUX_ASSETS=")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("the Flux controllers this test runs (source-controller and kustomize-controller) "+
			"are not available and could not be built: %s failed: %v. It builds them from the Go module proxy; "+
			"run it by hand to see why, or set FLUX_ASSETS to a directory it produced", script, err)
	}
	dir := strings.TrimSpace(string(out))
	if err := checkFluxAssets(dir); err != nil {
		return "", fmt.Errorf("%s printed %q, which is not usable: %w", script, dir, err)
	}
	return dir, nil
}

func checkFluxAssets(dir string) error {
	for _, name := range []string{
		"source-controller", "kustomize-controller",
		filepath.Join("crd", "source.toolkit.fluxcd.io_gitrepositories.yaml"),
		filepath.Join("crd", "kustomize.toolkit.fluxcd.io_kustomizations.yaml"),
	} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return errors.New(name + " is missing")
		}
	}
	return nil
}

// logSink is where the manager's and Flux's logs go besides their files: stderr with
// KPO_TEST_LOG=1.
func logSink() io.Writer {
	if os.Getenv("KPO_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
