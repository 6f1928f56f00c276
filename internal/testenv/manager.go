package testenv

import (
	"context"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/git"
)

// Scheme holds the kinds kpo's tests use: Kubernetes' own and kpo's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(kpov1.AddToScheme(s))
	return s
}

// Kpo is kpo's manager running in process against an Environment, as the test tiers and
// `make run` use it.
type Kpo struct {
	Manager ctrl.Manager
	// Requests counts the API requests the manager sends.
	Requests *Requests
	stop     func()
}

// StartKpo installs the cluster config (ClusterConfigFiles), waits for the admission policies,
// and runs kpo's controllers as the manager's identity. configure completes the controller
// options (GitCache defaults to a temporary directory); it may use the manager (its client).
func StartKpo(env *Environment, configure func(ctrl.Manager, *controller.Options) error) (*Kpo, error) {
	return startKpo(env, "", "", configure)
}

// StartShard runs kpo's controllers as StartKpo does, as one of several managers in the same
// process, each serving a shard: the Repositories selector (the manager's --watch-label-selector)
// matches. Its requests carry user agent "kpo-<name>", which the API server records as the field
// manager of what it writes (metadata.managedFields), so a test can tell the managers' writes
// apart.
func StartShard(env *Environment, name, selector string, configure func(ctrl.Manager, *controller.Options) error) (*Kpo, error) {
	return startKpo(env, name, selector, configure)
}

func startKpo(env *Environment, name, selector string, configure func(ctrl.Manager, *controller.Options) error) (*Kpo, error) {
	ctx := context.Background()
	shard, err := controller.ShardSelector(selector)
	if err != nil {
		return nil, err
	}
	if err := InstallConfig(ctx, env.Config); err != nil {
		return nil, fmt.Errorf("installing config: %w", err)
	}
	if err := WaitForPolicies(ctx, env.Config); err != nil {
		return nil, err
	}
	requests := &Requests{}
	cfg := requests.Wrap(ManagerConfig(env.Config))
	mgrOpts := ctrl.Options{
		Scheme:                 Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controller.ShardCacheOptions(shard),
		Client:                 controller.ClientOptions(),
	}
	if name != "" {
		cfg.UserAgent = "kpo-" + name
		// The managers of one process register controllers of the same names.
		mgrOpts.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	cacheDir, err := os.MkdirTemp("", "kpo-git-cache-")
	if err != nil {
		return nil, err
	}
	opts := controller.Options{GitCache: git.NewCache(cacheDir), RepositoryWorkers: 4, Shard: shard}
	if configure != nil {
		if err := configure(mgr, &opts); err != nil {
			_ = os.RemoveAll(cacheDir)
			return nil, err
		}
	}
	if err := controller.SetupWithManager(mgr, opts); err != nil {
		_ = os.RemoveAll(cacheDir)
		return nil, fmt.Errorf("setting up controllers: %w", err)
	}
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(mgrCtx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return &Kpo{Manager: mgr, Requests: requests, stop: func() {
		cancel()
		<-done
		_ = os.RemoveAll(cacheDir)
	}}, nil
}

// Stop stops the manager and removes its Git cache.
func (k *Kpo) Stop() { k.stop() }
