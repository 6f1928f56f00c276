package crash_test

import (
	"context"
	"fmt"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/testenv"
)

// The kill schedule: the manager lives a random 0.5–3 s, then is SIGKILLed and restarted after
// a random pause of up to 1 s.
const (
	lifeMin  = 500 * time.Millisecond
	lifeMax  = 3 * time.Second
	pauseMax = time.Second
	// settleWindow ends the wait for convergence early when the violations found have not
	// changed for this long: longer than the manager's longest retry pause (1 min).
	settleWindow = 65 * time.Second
)

const (
	namespace   = "kpo-crash"
	gitUser     = "kpo-crash"
	gitPassword = "crash-test-password"
)

// crashConfig is one run's size, from the environment.
type crashConfig struct {
	// seed (KPO_CRASH_SEED, default 1; "random" picks one) fixes each worker's sequence of
	// operations and the kill schedule; the interleaving with the manager still varies.
	seed uint64
	// ops (KPO_CRASH_OPS, default 120) is the least number of accepted operations.
	ops int
	// duration (KPO_CRASH_DURATION, default 45s) is the least time traffic runs.
	duration time.Duration
	// workers (KPO_CRASH_WORKERS, default 4) issue operations concurrently.
	workers int
	// converge (KPO_CRASH_CONVERGE, default 3m) bounds the wait for convergence after the
	// last restart.
	converge time.Duration
	// kill (KPO_CRASH_KILL, default true): false runs the same traffic without kills, a
	// baseline that tells crash bugs from others.
	kill bool
}

// trafficLimit bounds the traffic phase: time for the operations asked for at a pace a
// working manager keeps several times over (it does a few per second).
func (c crashConfig) trafficLimit() time.Duration {
	return c.duration + max(time.Minute, time.Duration(c.ops)*500*time.Millisecond)
}

func loadConfig() (crashConfig, error) {
	cfg := crashConfig{seed: 1, ops: 120, duration: 45 * time.Second, workers: 4, converge: 3 * time.Minute, kill: true}
	var err error
	if s := os.Getenv("KPO_CRASH_KILL"); s != "" {
		if cfg.kill, err = strconv.ParseBool(s); err != nil {
			return cfg, fmt.Errorf("KPO_CRASH_KILL=%q: want true or false", s)
		}
	}
	if s := os.Getenv("KPO_CRASH_SEED"); s == "random" {
		cfg.seed = rand.Uint64() % 1_000_000
	} else if s != "" {
		if cfg.seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			return cfg, fmt.Errorf("KPO_CRASH_SEED=%q: want a number or \"random\"", s)
		}
	}
	for _, v := range []struct {
		env string
		n   *int
	}{{"KPO_CRASH_OPS", &cfg.ops}, {"KPO_CRASH_WORKERS", &cfg.workers}} {
		if s := os.Getenv(v.env); s != "" {
			if *v.n, err = strconv.Atoi(s); err != nil || *v.n < 1 {
				return cfg, fmt.Errorf("%s=%q: want a positive number", v.env, s)
			}
		}
	}
	for _, v := range []struct {
		env string
		d   *time.Duration
	}{{"KPO_CRASH_DURATION", &cfg.duration}, {"KPO_CRASH_CONVERGE", &cfg.converge}} {
		if s := os.Getenv(v.env); s != "" {
			if *v.d, err = time.ParseDuration(s); err != nil || *v.d < 0 {
				return cfg, fmt.Errorf("%s=%q: want a duration such as 90s or 15m", v.env, s)
			}
		}
	}
	return cfg, nil
}

// TestCrash_managerKilledDuringLifecycleTraffic_convergesConsistently runs the manager binary,
// SIGKILLs it at random points while workers create drafts, edit, propose, reject, approve and
// delete, propose published revisions for deletion and approve or withdraw that, and create,
// upgrade, re-customise and delete PackageVariants, restarts it a last time, and checks that it
// converges to a state where every invariant holds: consecutive tags without gaps (but approved
// deletions) or duplicates, one tag per accepted approval, each where it was published, nothing
// left of an approved deletion, no orphaned branch or PackageRevision, every accepted edit in
// Git, everything Ready, every variant's downstream following its upstream, nothing left of a
// deleted variant.
func TestCrash_managerKilledDuringLifecycleTraffic_convergesConsistently(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs the manager for a minute or more; -short skips it")
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logSink())))
	// The Git server (net/http/cgi) logs a broken pipe for every fetch a kill cuts short.
	log.SetOutput(logSink())
	defer log.SetOutput(os.Stderr)
	g := NewWithT(t)
	cfg, err := loadConfig()
	g.Expect(err).NotTo(HaveOccurred())
	reproduce := fmt.Sprintf("KPO_CRASH_SEED=%d KPO_CRASH_OPS=%d KPO_CRASH_DURATION=%s KPO_CRASH_WORKERS=%d",
		cfg.seed, cfg.ops, cfg.duration, cfg.workers)
	if !cfg.kill {
		reproduce += " KPO_CRASH_KILL=false"
	}
	t.Logf("crash test: seed %d, at least %d operations and %s of traffic, %d workers (reproduce: %s)",
		cfg.seed, cfg.ops, cfg.duration, cfg.workers, reproduce)

	work, err := os.MkdirTemp("", "kpo-crash-")
	g.Expect(err).NotTo(HaveOccurred())
	defer func() {
		if t.Failed() {
			t.Logf("kept %s for inspection: manager.log (every start), trace.log (every accepted operation, kill and start), git/ (the served repositories), git-cache/ (the manager's cache)", work)
			return
		}
		_ = os.RemoveAll(work)
	}()

	setupStart := time.Now()
	env, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = env.Stop() }()
	bin, err := buildManager(work)
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(testenv.InstallConfig(ctx, env.Config)).To(Succeed())
	g.Expect(testenv.WaitForPolicies(ctx, env.Config)).To(Succeed())
	adminConfig := rest.CopyConfig(env.Config)
	adminConfig.QPS, adminConfig.Burst = 500, 1000
	c, err := client.New(adminConfig, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	srv, err := gitserver.Start(gitserver.Options{Root: filepath.Join(work, "git"), Username: gitUser, Password: gitPassword})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = srv.Close() }()
	repoNames := []string{"alpha", "beta"}
	gitRepos := registerRepositories(t, c, srv, repoNames)

	trace, err := newTracer(filepath.Join(work, "trace.log"))
	g.Expect(err).NotTo(HaveOccurred())
	defer trace.close()
	kubeconfig := filepath.Join(work, "manager.kubeconfig")
	g.Expect(writeManagerKubeconfig(env, kubeconfig)).To(Succeed())
	m := &managerProcess{bin: bin, kubeconfig: kubeconfig, cacheDir: filepath.Join(work, "git-cache"),
		logPath: filepath.Join(work, "manager.log"), trace: trace}
	g.Expect(m.start()).To(Succeed())
	defer m.kill()
	defer func() {
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", m.logPath, m.logTail(15))
		}
	}()
	g.Eventually(func(g Gomega) {
		for _, name := range repoNames {
			r := &kpov1.Repository{}
			g.Expect(c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, r)).To(Succeed())
			cond := meta.FindStatusCondition(r.Status.Conditions, kpov1.ReadyCondition)
			g.Expect(cond).NotTo(BeNil(), "Repository %s has no Ready condition", name)
			g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), "Repository %s: %s", name, cond.Message)
		}
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	setup := time.Since(setupStart)

	// Traffic, with the manager killed at random points.
	tr := newTraffic(c, namespace, repoNames, trace)
	for i := range cfg.workers {
		tr.workers = append(tr.workers, &worker{id: i, tr: tr, rng: rand.New(rand.NewPCG(cfg.seed, uint64(i)))})
	}
	gcCtx, stopGC := context.WithCancel(ctx)
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		garbageCollector(gcCtx, c, namespace)
	}()
	trafficStart := time.Now()
	var wg sync.WaitGroup
	for _, w := range tr.workers {
		wg.Go(func() { w.run(ctx) })
	}
	killerDone := make(chan error, 1)
	go func() {
		if !cfg.kill {
			killerDone <- nil
			return
		}
		killerDone <- killer(tr, m, rand.New(rand.NewPCG(cfg.seed, 1<<32)), lifeMin, lifeMax, pauseMax)
	}()
	limitReached := false
	for !tr.stop.Load() {
		elapsed := time.Since(trafficStart)
		switch {
		case int(tr.ops.Load()) >= cfg.ops && elapsed >= cfg.duration:
			tr.stopTraffic()
		case elapsed >= cfg.trafficLimit():
			limitReached = true
			tr.stopTraffic()
		default:
			time.Sleep(100 * time.Millisecond) // checks the stop condition, waits for nothing
		}
	}
	wg.Wait()
	g.Expect(<-killerDone).To(Succeed())
	trafficTime := time.Since(trafficStart)

	// A last restart, then convergence.
	m.kill()
	g.Expect(m.start()).To(Succeed())
	k := &checker{c: c, ns: namespace, gitRepo: gitRepos, workers: tr.workers,
		messages: map[string]string{}, blobs: map[string]string{}}
	convergeStart := time.Now()
	violations, converged := converge(ctx, k, cfg.converge)
	convergeTime := time.Since(convergeStart)
	stopGC()
	<-gcDone

	for _, w := range tr.workers {
		violations = append(violations, w.violations...)
	}
	starts, kills, selfExits := m.counts()
	for _, e := range selfExits {
		violations = append(violations, invManagerStaysAlive+": "+e)
	}
	if limitReached {
		violations = append(violations, fmt.Sprintf("%s: only %d of %d operations accepted in %s: the workers waited for the manager too long (see the notes)",
			invTrafficNotStranded, tr.ops.Load(), cfg.ops, cfg.trafficLimit()))
	}
	t.Log(summary(cfg, tr, k, setup, trafficTime, convergeTime, converged, starts, kills, reproduce))
	for _, w := range tr.workers {
		for _, n := range w.notes {
			t.Logf("note: %s", n)
		}
	}
	for _, v := range violations {
		t.Errorf("invariant violated: %s", v)
	}
	if len(violations) > 0 {
		if empty := emptyFiles(m.cacheDir); len(empty) > 0 {
			t.Logf("the manager's Git cache holds empty files (a write cut short by a kill?): %s", strings.Join(empty, ", "))
		}
		t.Logf("%d violations (seed %d); reproduce with %s go test ./internal/crash/ -count=1 -v", len(violations), cfg.seed, reproduce)
	}
}

// registerRepositories creates a Git repository with one commit on main per name, the
// credentials Secret and a Repository each, in the test namespace.
func registerRepositories(t *testing.T, c client.Client, srv *gitserver.Server, names []string) map[string]*gitserver.Repo {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
	g.Expect(c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "git-creds", Namespace: namespace},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{corev1.BasicAuthUsernameKey: gitUser, corev1.BasicAuthPasswordKey: gitPassword},
	})).To(Succeed())
	repos := map[string]*gitserver.Repo{}
	for _, name := range names {
		r, err := srv.CreateRepo(name)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = r.Commit("main", gitserver.Change{Message: "Initial commit", Files: map[string]string{"README.md": "# " + name + "\n"}})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Create(ctx, &kpov1.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Spec: kpov1.RepositorySpec{Git: kpov1.GitRepository{
				Repo: srv.RepoURL(name), SecretRef: &kpov1.LocalReference{Name: "git-creds"},
			}},
		})).To(Succeed())
		repos[name] = r
	}
	return repos
}

// converge waits, at most limit, until no invariant is violated. It gives up sooner when the
// violations have not changed for settleWindow. It returns the last violations found.
func converge(ctx context.Context, k *checker, limit time.Duration) ([]string, bool) {
	var last []string
	lastChange := time.Now()
	gm := NewGomega(func(string, ...int) {}) // the outcome is the returned violations
	ok := gm.Eventually(func() error {
		v, err := k.violations(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(v, last) {
			last, lastChange = v, time.Now()
		}
		switch {
		case len(v) == 0:
			return nil
		case time.Since(lastChange) >= settleWindow:
			return StopTrying(fmt.Sprintf("%d violations unchanged for %s", len(v), settleWindow))
		}
		return fmt.Errorf("%d violations", len(v))
	}).WithTimeout(limit).WithPolling(time.Second).Should(Succeed())
	return last, ok
}

// garbageCollector plays Kubernetes' garbage collector, which envtest does not run, until ctx
// is done: every half second it deletes the PackageDrafts of deleted PackageVariants.
func garbageCollector(ctx context.Context, c client.Client, ns string) {
	for ctx.Err() == nil {
		_ = collectGarbage(ctx, c, ns) // the next round tries again
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// summary describes a run in a few lines.
func summary(cfg crashConfig, tr *traffic, k *checker, setup, trafficTime, convergeTime time.Duration, converged bool, starts, kills int, reproduce string) string {
	var kinds []string
	for kind, n := range tr.byKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", kind, n))
	}
	sort.Strings(kinds)
	var pkgs, revs, published, open, deleted, deletedPub, edits, stuck int
	for _, w := range tr.workers {
		for _, p := range w.pkgs {
			pkgs++
			for _, r := range p.revs {
				if r.lifecycle == "" {
					continue
				}
				revs++
				edits += len(r.markers)
				switch {
				case deletedPublished(r):
					deleted++
					deletedPub++
				case r.deleted:
					deleted++
				case r.lifecycle == kpov1.LifecyclePublished:
					published++
				default:
					open++
				}
				if r.stuck != "" {
					stuck++
				}
			}
		}
	}
	outcome := fmt.Sprintf("converged in %s", convergeTime.Round(time.Second))
	if !converged {
		outcome = fmt.Sprintf("did not converge (gave up after %s)", convergeTime.Round(time.Second))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "crash test summary (seed %d):\n", cfg.seed)
	fmt.Fprintf(&b, "  setup %s; traffic %s: %d accepted operations (%s)\n", setup.Round(time.Second),
		trafficTime.Round(time.Second), tr.ops.Load(), strings.Join(kinds, ", "))
	fmt.Fprintf(&b, "  manager SIGKILLed %d times, started %d times (the last restart after the traffic); %s\n", kills, starts, outcome)
	fmt.Fprintf(&b, "  %d packages, %d revisions: %d published, %d draft, proposed or proposed for deletion, %d deleted (%d of them published, their deletion approved); %d accepted edits; revisions given up during traffic: %d\n",
		pkgs, revs, published, open, deleted, deletedPub, edits, stuck)
	var variants, deletedVariants, bumps int
	for _, w := range tr.workers {
		variants += len(w.variants)
		deletedVariants += len(w.variants) - len(w.liveVariants())
		bumps += w.bumps
	}
	fmt.Fprintf(&b, "  %d PackageVariants (%d deleted); %d upstream revisions published for them; %d downstream revisions the variants published\n",
		variants, deletedVariants, bumps, k.variantRevisions)
	fmt.Fprintf(&b, "  reproduce: %s go test ./internal/crash/ -count=1 -v", reproduce)
	return b.String()
}

// emptyFiles lists the empty files below dir (relative paths): in a Git directory, a ref or
// object file a crash left empty.
func emptyFiles(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, walkErr error) error {
		if walkErr != nil || d.IsDir() {
			return walkErr
		}
		if info, err := d.Info(); err == nil && info.Size() == 0 {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	return out
}
