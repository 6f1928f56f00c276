// Command manager runs kpo's controllers.
package main

import (
	"flag"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/git"
)

func main() {
	var (
		metricsAddr, probeAddr, pprofAddr, gitCacheDir string
		watchLabelSelector                             string
		leaderElect                                    bool
		workers                                        int
		fns                                            functionFlags
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint (e.g. :8080); 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address of Go's pprof endpoints (/debug/pprof/, e.g. 127.0.0.1:6060), for profiling; empty disables them.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so only one manager replica is active.")
	flag.StringVar(&gitCacheDir, "git-cache-dir", defaultGitCacheDir(), "Directory of the local clones of registered repositories.")
	flag.IntVar(&workers, "repository-workers", 2, "Repositories synced in parallel.")
	flag.StringVar(&watchLabelSelector, "watch-label-selector", "",
		"Serve only the Repositories this label selector over "+kpov1.ShardLabel+" matches (sharding), e.g. "+
			kpov1.ShardLabel+"=shard1, or !"+kpov1.ShardLabel+" for the instance that serves the unlabelled ones; empty serves all.")
	fns.bind(flag.CommandLine)
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")
	shard, err := controller.ShardSelector(watchLabelSelector)
	if err != nil {
		setupLog.Error(err, "invalid --watch-label-selector")
		os.Exit(1)
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 newScheme(),
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		PprofBindAddress:       pprofAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       controller.LeaderElectionID(shard),
		// main returns as soon as the manager stops, so the Lease can be given up then: a
		// rolling update's new pod leads at once instead of after the Lease expires.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controller.ShardCacheOptions(shard),
		Client:                        controller.ClientOptions(),
	})
	if err != nil {
		setupLog.Error(err, "creating manager")
		os.Exit(1)
	}
	selector, err := fns.selector(mgr.GetClient(), mgr.GetAPIReader())
	if err != nil {
		setupLog.Error(err, "invalid function flags")
		os.Exit(1)
	}
	if selector.Pool != nil {
		// Under leader election: it reaps idle pods, and deletes them all when the manager stops.
		if err := mgr.Add(selector.Pool); err != nil {
			setupLog.Error(err, "adding the function pool")
			os.Exit(1)
		}
	}
	if err := controller.SetupWithManager(mgr, controller.Options{
		GitCache:          git.NewCache(gitCacheDir),
		RepositoryWorkers: workers,
		Render:            selector.Render,
		Shard:             shard,
	}); err != nil {
		setupLog.Error(err, "setting up controllers")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "adding health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "adding ready check")
		os.Exit(1)
	}
	setupLog.Info("starting manager", "gitCacheDir", gitCacheDir, "watchLabelSelector", shard.String(),
		"leaderElectionID", controller.LeaderElectionID(shard))
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "running manager")
		os.Exit(1)
	}
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(kpov1.AddToScheme(s))
	return s
}

func defaultGitCacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "kpo", "git")
	}
	return filepath.Join(os.TempDir(), "kpo-git")
}
