package scale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/testenv"
)

// Credentials of the benchmark's Git server (loopback only).
const (
	gitUser     = "kpo-bench"
	gitPassword = "kpo-bench-password" //nolint:gosec // G101: the password of the benchmark's own loopback Git server
)

// Namespaces the benchmark creates.
const (
	// Namespace holds the Repositories, their credentials and what kpo makes of them.
	Namespace = "bench"
	// SmallNamespace holds the small ConfigMaps listed for comparison.
	SmallNamespace = "bench-small"
)

// Options configure the run of one size.
type Options struct {
	Size Size
	// ManagerBin is the manager binary; ManagerArgs are flags added after the benchmark's.
	ManagerBin  string
	ManagerArgs []string
	// APIServerArgs are extra kube-apiserver flags, each "name=value".
	APIServerArgs []string
	// APIServerSettle is how long the benchmark waits after the full sync, with nothing else
	// happening, before it reads kube-apiserver's memory again (Result.APIServerSettled).
	APIServerSettle time.Duration
	// Dir is the work directory of this size (Git repositories, audit log, manager log and
	// Git cache); the caller removes it.
	Dir string
	// Authoring is the number of init → edit → propose → approve rounds measured.
	Authoring int
	// SyncTimeout bounds the wait for everything to be Ready after registration.
	SyncTimeout time.Duration
	// SyncInterval is spec.sync.interval of the Repositories: long, so no periodic sync falls
	// into a measurement.
	SyncInterval time.Duration
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// Latency holds the durations of the authoring rounds, per step.
type Latency struct {
	Init, Edit, Propose, Approve []time.Duration
}

// Resync is what one requested sync of one Repository cost.
type Resync struct {
	// Handled is the time from the request to status.lastHandledSyncRequest (and, for a new
	// tag, its PackageRevision Ready).
	Handled time.Duration
	// Requests are the manager's requests until it was quiet again (its metrics).
	Requests Requests
	// Writes are its writes by verb and object (the audit log).
	Writes WriteSummary
	// Quiet is false when the manager did not become quiet within the bound.
	Quiet bool
}

// Result is everything measured for one size.
type Result struct {
	Size Size
	// GitGen is the time to generate the repositories.
	GitGen time.Duration
	// PackageRevisions is the number of PackageRevisions after the full sync.
	PackageRevisions int
	// FullSync is the time from registering the Repositories until all are Ready with the
	// expected packageCount and every PackageRevision exists and is Ready.
	FullSync time.Duration
	// Settle is the time after FullSync until the manager was quiet; Settled false when it
	// was not within the bound.
	Settle  time.Duration
	Settled bool
	// SyncRequests are the manager's requests from registration until quiet; SyncAudit the
	// same requests from the audit log, by verb and resource.
	SyncRequests Requests
	SyncAudit    map[string]int
	SyncWrites   WriteSummary
	// ManagerPeak is the manager's VmHWM after the full sync; ManagerPeakEnd at the end of
	// the run (after lists, authoring and resyncs).
	ManagerPeak, ManagerPeakEnd int64
	// APIServerBase is kube-apiserver's memory before registration, APIServer right after the
	// full sync, APIServerSettled Options.APIServerSettle later with nothing else happening:
	// without the garbage of the sync's requests, which the Go runtime collects and returns
	// to the system within about two minutes on an idle process.
	APIServerBase, APIServer, APIServerSettled Memory
	// APIServerBaseHeap and APIServerHeap are kube-apiserver's Go heap in use (its
	// go_memstats_heap_inuse_bytes) before registration and when APIServerSettled was read:
	// what it holds, without the memory its runtime has not returned yet.
	APIServerBaseHeap, APIServerHeap int64
	// EtcdBase and Etcd are etcd's size before registration and after the full sync.
	EtcdBase, Etcd EtcdSize
	// ListRevisions is a client List of all PackageRevisions as JSON (`kubectl get rpkg -A -o
	// json`), ListConfigMaps of as many small ConfigMaps, ListCustom of as many small custom
	// resources (one short spec field): what any kind defined by a CRD costs the API server.
	ListRevisions, ListConfigMaps, ListCustom List
	// TableRevisions, TableConfigMaps and TableCustom are the same lists as tables, what
	// `kubectl get rpkg -A` and `kubectl get cm` ask the API server for (its printer columns).
	TableRevisions, TableConfigMaps, TableCustom List
	Authoring                                    Latency
	// Unchanged is a resync of a repository nothing changed in; NewTag a resync after one new
	// tag was pushed to it.
	Unchanged, NewTag Resync
	// ResyncRepository is the Repository both resyncs were asked of.
	ResyncRepository string
	// LoadBefore and LoadAfter are the machine's load averages (/proc/loadavg) when the size
	// started and ended: other work on the machine skews every time measured.
	LoadBefore, LoadAfter string
}

// Run measures one size: it generates and serves the repositories, starts a fresh control
// plane and the manager, and measures the full sync, the footprint, lists, authoring and two
// resyncs. It stops everything it started before it returns.
func Run(ctx context.Context, o Options) (*Result, error) {
	res := &Result{Size: o.Size, LoadBefore: LoadAverage()}
	defer func() { res.LoadAfter = LoadAverage() }()
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}

	srv, err := gitserver.Start(gitserver.Options{Root: filepath.Join(o.Dir, "git"), Username: gitUser, Password: gitPassword})
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.Close() }()
	start := time.Now()
	for i := range o.Size.Repositories {
		if err := GenerateRepository(ctx, srv, RepositoryName(i), o.Size); err != nil {
			return nil, err
		}
	}
	res.GitGen = time.Since(start)
	logf("generated %d repositories (%d published revisions) in %s", o.Size.Repositories, o.Size.Published(), res.GitGen.Round(time.Millisecond))

	cp, err := StartControlPlane(ctx, o.Dir, o.APIServerArgs)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cp.Stop() }()
	cfg := rest.CopyConfig(cp.Env.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return nil, err
	}
	if res.APIServerBase, err = ProcMemory(cp.APIServerPID); err != nil {
		return nil, err
	}
	if res.APIServerBaseHeap, err = cp.APIServerHeapInUse(ctx); err != nil {
		return nil, err
	}
	if res.EtcdBase, err = cp.EtcdSize(ctx); err != nil {
		return nil, err
	}

	kubeconfig := filepath.Join(o.Dir, "manager.kubeconfig")
	if err := cp.WriteManagerKubeconfig(kubeconfig); err != nil {
		return nil, err
	}
	mgr, err := StartManager(ctx, o.ManagerBin, kubeconfig, filepath.Join(o.Dir, "git-cache"), filepath.Join(o.Dir, "manager.log"), o.ManagerArgs)
	if err != nil {
		return nil, err
	}
	defer mgr.Stop()
	logf("control plane and manager (pid %d) started; manager log %s", mgr.PID(), filepath.Join(o.Dir, "manager.log"))

	if err := createNamespace(ctx, c, Namespace); err != nil {
		return nil, err
	}
	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "git-credentials", Namespace: Namespace},
		Type:       corev1.SecretTypeBasicAuth,
		StringData: map[string]string{corev1.BasicAuthUsernameKey: gitUser, corev1.BasicAuthPasswordKey: gitPassword},
	}); err != nil {
		return nil, err
	}

	// The full sync.
	before, err := mgr.Requests(ctx)
	if err != nil {
		return nil, err
	}
	if err := cp.Audit.Skip(); err != nil {
		return nil, err
	}
	start = time.Now()
	for i := range o.Size.Repositories {
		if err := c.Create(ctx, repository(RepositoryName(i), srv.RepoURL(RepositoryName(i)), o.SyncInterval)); err != nil {
			return nil, err
		}
	}
	n, err := waitSynced(ctx, c, mgr, o.Size, o.SyncTimeout, start, logf)
	if err != nil {
		return res, fmt.Errorf("full sync: %w", err)
	}
	res.FullSync, res.PackageRevisions = time.Since(start), n
	logf("full sync: %d PackageRevisions Ready in %s", n, res.FullSync.Round(time.Second))
	start = time.Now()
	if res.Settled, err = mgr.WaitQuiet(ctx, 3*time.Second, 3*time.Minute); err != nil {
		return res, err
	}
	res.Settle = time.Since(start)
	after, err := mgr.Requests(ctx)
	if err != nil {
		return res, err
	}
	res.SyncRequests = after.Sub(before)
	events, err := cp.Audit.Next()
	if err != nil {
		return res, err
	}
	res.SyncAudit, res.SyncWrites = CountKinds(events), SummarizeWrites(events)
	mem, err := mgr.Memory()
	if err != nil {
		return res, err
	}
	res.ManagerPeak = mem.Peak
	if res.APIServer, err = ProcMemory(cp.APIServerPID); err != nil {
		return res, err
	}
	if res.Etcd, err = cp.EtcdSize(ctx); err != nil {
		return res, err
	}
	if res.APIServerSettled, err = settledMemory(ctx, cp.APIServerPID, o.APIServerSettle); err != nil {
		return res, err
	}
	if res.APIServerHeap, err = cp.APIServerHeapInUse(ctx); err != nil {
		return res, err
	}
	logf("kube-apiserver RSS %d MiB after the sync, %d MiB %s later (Go heap in use %d MiB)",
		res.APIServer.RSS>>20, res.APIServerSettled.RSS>>20, o.APIServerSettle, res.APIServerHeap>>20)
	// Kept with -keep: where kube-apiserver's memory after the sync goes.
	if err := cp.WriteAPIServerHeap(ctx, filepath.Join(o.Dir, "kube-apiserver-heap.pprof")); err != nil {
		logf("kube-apiserver heap profile: %v", err)
	}

	// Two resyncs of the last repository (authoring below works in the first).
	repo := RepositoryName(o.Size.Repositories - 1)
	res.ResyncRepository = repo
	if res.Unchanged, err = resync(ctx, c, mgr, cp, repo, "unchanged", nil); err != nil {
		return res, fmt.Errorf("unchanged resync: %w", err)
	}
	logf("unchanged resync of %s: handled in %s, writes: %s", repo, res.Unchanged.Handled.Round(time.Millisecond), res.Unchanged.Writes)
	gitRepo, err := srv.OpenRepo(repo)
	if err != nil {
		return res, err
	}
	newRev := o.Size.Tags + 1
	if err := PushTag(gitRepo, PackageName(0), newRev, o.Size.PackageBytes); err != nil {
		return res, err
	}
	newName := fmt.Sprintf("%s.%s.v%d", repo, PackageName(0), newRev)
	if res.NewTag, err = resync(ctx, c, mgr, cp, repo, "new-tag", func(ctx context.Context) error {
		pr := &kpov1.PackageRevision{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: newName}, pr); err != nil {
			return err
		}
		return readyFor(pr.Generation, pr.Status.Conditions)
	}); err != nil {
		return res, fmt.Errorf("resync after a new tag: %w", err)
	}
	logf("resync of %s after tag %s/v%d: handled in %s, writes: %s", repo, PackageName(0), newRev, res.NewTag.Handled.Round(time.Millisecond), res.NewTag.Writes)

	// Lists: every PackageRevision, then as many small ConfigMaps, both as JSON (as kubectl
	// reads them; the client would ask for ConfigMaps as protobuf).
	jsonCfg := rest.CopyConfig(cfg)
	jsonCfg.ContentType, jsonCfg.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	lc, err := client.New(jsonCfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return res, err
	}
	if res.ListRevisions, err = timeList(ctx, lc, &kpov1.PackageRevisionList{}); err != nil {
		return res, err
	}
	small := res.ListRevisions.Items
	if err := createNamespace(ctx, c, SmallNamespace); err != nil {
		return res, err
	}
	if err := createSmall(ctx, c, small, func(i int) client.Object {
		return &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "small-" + strconv.Itoa(i), Namespace: SmallNamespace},
			Data:       map[string]string{"value": strconv.Itoa(i)},
		}
	}); err != nil {
		return res, err
	}
	if res.ListConfigMaps, err = timeList(ctx, lc, &corev1.ConfigMapList{}, client.InNamespace(SmallNamespace)); err != nil {
		return res, err
	}
	if err := createSmallCRD(ctx, c); err != nil {
		return res, err
	}
	if err := createSmall(ctx, c, small, smallObject); err != nil {
		return res, err
	}
	smallList := &unstructured.UnstructuredList{}
	smallList.SetGroupVersionKind(smallGVK.GroupVersion().WithKind(smallGVK.Kind + "List"))
	if res.ListCustom, err = timeList(ctx, lc, smallList, client.InNamespace(SmallNamespace)); err != nil {
		return res, err
	}
	if res.TableRevisions, err = timeTable(ctx, cfg, "/apis/kpo.dev/v1alpha1/packagerevisions"); err != nil {
		return res, err
	}
	if res.TableConfigMaps, err = timeTable(ctx, cfg, "/api/v1/namespaces/"+SmallNamespace+"/configmaps"); err != nil {
		return res, err
	}
	if res.TableCustom, err = timeTable(ctx, cfg, "/apis/"+smallGVK.Group+"/"+smallGVK.Version+"/namespaces/"+SmallNamespace+"/"+smallPlural); err != nil {
		return res, err
	}
	logf("list: %d PackageRevisions in %s (table %s), small ConfigMaps in %s (table %s), small custom resources in %s (table %s)",
		res.ListRevisions.Items, res.ListRevisions.Time.Round(time.Millisecond), res.TableRevisions.Time.Round(time.Millisecond),
		res.ListConfigMaps.Time.Round(time.Millisecond), res.TableConfigMaps.Time.Round(time.Millisecond),
		res.ListCustom.Time.Round(time.Millisecond), res.TableCustom.Time.Round(time.Millisecond))

	// Authoring in the first repository.
	if _, err := mgr.WaitQuiet(ctx, 2*time.Second, 2*time.Minute); err != nil {
		return res, err
	}
	for i := range o.Authoring {
		if err := author(ctx, c, RepositoryName(0), i, &res.Authoring); err != nil {
			return res, fmt.Errorf("authoring round %d: %w", i, err)
		}
	}
	if o.Authoring > 0 {
		logf("authoring p50: init %s, edit %s, propose %s, approve %s", p50(res.Authoring.Init), p50(res.Authoring.Edit),
			p50(res.Authoring.Propose), p50(res.Authoring.Approve))
	}
	if mem, err = mgr.Memory(); err != nil {
		return res, err
	}
	res.ManagerPeakEnd = mem.Peak
	return res, nil
}

func createNamespace(ctx context.Context, c client.Client, name string) error {
	return c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

// repository is the Repository object registering Git repository name at url.
func repository(name, url string, interval time.Duration) *kpov1.Repository {
	return &kpov1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
		Spec: kpov1.RepositorySpec{
			Type: kpov1.GitRepositoryType,
			Git: kpov1.GitRepository{
				Repo: url, Branch: "main", SecretRef: &kpov1.LocalReference{Name: "git-credentials"},
			},
			Sync: &kpov1.RepositorySync{Interval: &metav1.Duration{Duration: interval}},
		},
	}
}

// readyFor returns nil when conditions hold Ready=True for generation, else why not.
func readyFor(generation int64, conditions []metav1.Condition) error {
	c := meta.FindStatusCondition(conditions, kpov1.ReadyCondition)
	switch {
	case c == nil:
		return errors.New("no Ready condition")
	case c.Status != metav1.ConditionTrue:
		return fmt.Errorf("condition Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
	case c.ObservedGeneration != generation:
		return fmt.Errorf("condition Ready is for generation %d, not %d", c.ObservedGeneration, generation)
	}
	return nil
}

// waitSynced waits until every Repository is Ready with packageCount = Packages and every
// expected PackageRevision exists and is Ready; it returns the number of PackageRevisions.
// Listing every PackageRevision is costly at scale, so it happens only once the Repositories
// are done, and never more often than every three list durations.
func waitSynced(ctx context.Context, c client.Client, mgr *Manager, size Size, timeout time.Duration, start time.Time,
	logf func(string, ...any)) (int, error) {
	var (
		count               int
		lastList            time.Time
		listTook            time.Duration
		lastLog             = time.Now()
		expected            = size.PackageRevisions()
		repositoriesPending string
	)
	err := testenv.PollUntil(ctx, time.Second, timeout, func(ctx context.Context) (error, error) {
		if mgr.Exited() {
			return nil, errors.New("the manager exited")
		}
		repos := &kpov1.RepositoryList{}
		if err := c.List(ctx, repos, client.InNamespace(Namespace)); err != nil {
			return err, nil
		}
		pending := 0
		repositoriesPending = ""
		for _, r := range repos.Items {
			err := readyFor(r.Generation, r.Status.Conditions)
			if err == nil && r.Status.PackageCount != size.Packages {
				err = fmt.Errorf("packageCount %d, want %d", r.Status.PackageCount, size.Packages)
			}
			if err != nil {
				pending++
				if repositoriesPending == "" {
					repositoriesPending = fmt.Sprintf("repository %s: %v", r.Name, err)
				}
			}
		}
		if time.Since(lastLog) >= 15*time.Second {
			lastLog = time.Now()
			logf("  %s: %d of %d repositories synced", time.Since(start).Round(time.Second), len(repos.Items)-pending, len(repos.Items))
		}
		if pending > 0 {
			return fmt.Errorf("%d of %d repositories not synced; %s", pending, len(repos.Items), repositoriesPending), nil
		}
		if time.Since(lastList) < max(2*time.Second, 3*listTook) {
			return errors.New("waiting to list PackageRevisions again"), nil
		}
		prs := &kpov1.PackageRevisionList{}
		listStart := time.Now()
		if err := c.List(ctx, prs, client.InNamespace(Namespace)); err != nil {
			return err, nil
		}
		lastList, listTook, count = time.Now(), time.Since(listStart), len(prs.Items)
		if count != expected {
			return fmt.Errorf("%d of %d PackageRevisions", count, expected), nil
		}
		for i := range prs.Items {
			pr := &prs.Items[i]
			if err := readyFor(pr.Generation, pr.Status.Conditions); err != nil {
				return fmt.Errorf("PackageRevision %s: %w", pr.Name, err), nil
			}
		}
		return nil, nil
	})
	return count, err
}

// resync asks for a sync of repo (annotation kpo.dev/sync-requested) once the manager is
// quiet, waits until it is handled (and done, when given, reports nothing missing), then
// until the manager is quiet again, and returns what it cost.
func resync(ctx context.Context, c client.Client, mgr *Manager, cp *ControlPlane, repo, value string,
	done func(context.Context) error) (Resync, error) {
	var r Resync
	if _, err := mgr.WaitQuiet(ctx, 2*time.Second, 2*time.Minute); err != nil {
		return r, err
	}
	before, err := mgr.Requests(ctx)
	if err != nil {
		return r, err
	}
	if err := cp.Audit.Skip(); err != nil {
		return r, err
	}
	start := time.Now()
	obj := &kpov1.Repository{ObjectMeta: metav1.ObjectMeta{Name: repo, Namespace: Namespace}}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, kpov1.SyncRequestedAnnotation, value)
	if err := c.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		return r, err
	}
	err = testenv.PollUntil(ctx, 5*time.Millisecond, 5*time.Minute, func(ctx context.Context) (error, error) {
		got := &kpov1.Repository{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
			return err, nil
		}
		if got.Status.LastHandledSyncRequest != value {
			return fmt.Errorf("sync request %q not handled yet", value), nil
		}
		if err := readyFor(got.Generation, got.Status.Conditions); err != nil {
			return err, nil
		}
		if done != nil {
			return done(ctx), nil
		}
		return nil, nil
	})
	if err != nil {
		return r, err
	}
	r.Handled = time.Since(start)
	if r.Quiet, err = mgr.WaitQuiet(ctx, 3*time.Second, 2*time.Minute); err != nil {
		return r, err
	}
	after, err := mgr.Requests(ctx)
	if err != nil {
		return r, err
	}
	r.Requests = after.Sub(before)
	events, err := cp.Audit.Next()
	if err != nil {
		return r, err
	}
	r.Writes = SummarizeWrites(events)
	return r, nil
}

// List is what one List request cost.
type List struct {
	// Time is the median of three lists.
	Time time.Duration
	// Items is the number of objects; Bytes their size as JSON.
	Items, Bytes int
}

// timeList lists list (with opts) three times.
func timeList(ctx context.Context, c client.Client, list client.ObjectList, opts ...client.ListOption) (List, error) {
	var times []time.Duration
	for range 3 {
		start := time.Now()
		if err := c.List(ctx, list, opts...); err != nil {
			return List{}, err
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	data, err := json.Marshal(list)
	if err != nil {
		return List{}, err
	}
	return List{Time: times[1], Items: meta.LenList(list), Bytes: len(data)}, nil
}

// settledMemory waits d, then reads the memory of process pid.
func settledMemory(ctx context.Context, pid int, d time.Duration) (Memory, error) {
	select {
	case <-ctx.Done():
		return Memory{}, ctx.Err()
	case <-time.After(d):
	}
	return ProcMemory(pid)
}

// timeTable lists path three times as a table, as kubectl get does, and decodes the table.
func timeTable(ctx context.Context, cfg *rest.Config, path string) (List, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return List{}, err
	}
	var times []time.Duration
	var table metav1.Table
	var size int
	for range 3 {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.Host, "/")+path, nil)
		if err != nil {
			return List{}, err
		}
		req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return List{}, err
		}
		data, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return List{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return List{}, fmt.Errorf("listing %s as a table: %s", path, resp.Status)
		}
		if err := json.Unmarshal(data, &table); err != nil {
			return List{}, fmt.Errorf("listing %s as a table: %w", path, err)
		}
		times = append(times, time.Since(start))
		size = len(data)
	}
	slices.Sort(times)
	return List{Time: times[1], Items: len(table.Rows), Bytes: size}, nil
}

// createSmall creates the n objects newObj makes (in SmallNamespace), 16 at a time.
func createSmall(ctx context.Context, c client.Client, n int, newObj func(i int) client.Object) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if err := c.Create(ctx, newObj(i)); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
	go func() {
		defer close(work)
		for i := range n {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	return <-errs
}

// author runs one authoring round in repo as the kubectl tour does: a PackageDraft (init)
// until its revision is a Ready Draft, an edit of the content ConfigMap until it is committed
// and Ready, then spec.lifecycle Proposed and Published, each until Git follows and the
// revision is Ready. Each step is polled every 5 ms, so the time measured is the manager's.
func author(ctx context.Context, c client.Client, repo string, i int, lat *Latency) error {
	const (
		poll    = 5 * time.Millisecond
		timeout = 2 * time.Minute
	)
	pkg := fmt.Sprintf("bench-author-%d", i)
	draft := &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Name: pkg, Namespace: Namespace},
		Spec: kpov1.PackageDraftSpec{Repository: repo, PackageName: pkg, WorkspaceName: "w",
			Source: kpov1.PackageDraftSource{Init: &kpov1.InitSource{Description: "authoring latency"}}},
	}
	getPR := func(ctx context.Context, name string) (*kpov1.PackageRevision, error) {
		pr := &kpov1.PackageRevision{}
		return pr, c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: name}, pr)
	}
	// waitRevision waits until the revision is Ready for its generation and ok holds.
	waitRevision := func(name string, ok func(*kpov1.PackageRevision) error) error {
		return testenv.PollUntil(ctx, poll, timeout, func(ctx context.Context) (error, error) {
			pr, err := getPR(ctx, name)
			if err != nil {
				return err, nil
			}
			if err := ok(pr); err != nil {
				return err, nil
			}
			return readyFor(pr.Generation, pr.Status.Conditions), nil
		})
	}
	lifecycleIs := func(l kpov1.Lifecycle) func(*kpov1.PackageRevision) error {
		return func(pr *kpov1.PackageRevision) error {
			if pr.Status.Lifecycle != l {
				return fmt.Errorf("lifecycle %s, want %s", pr.Status.Lifecycle, l)
			}
			return nil
		}
	}
	setLifecycle := func(name string, l kpov1.Lifecycle) error {
		pr := &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace}}
		return c.Patch(ctx, pr, client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"lifecycle":%q}}`, l)))
	}

	start := time.Now()
	if err := c.Create(ctx, draft); err != nil {
		return err
	}
	var name string
	if err := testenv.PollUntil(ctx, poll, timeout, func(ctx context.Context) (error, error) {
		d := &kpov1.PackageDraft{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(draft), d); err != nil {
			return err, nil
		}
		if err := readyFor(d.Generation, d.Status.Conditions); err != nil {
			return fmt.Errorf("PackageDraft %s: %w", d.Name, err), nil
		}
		name = d.Status.PackageRevision
		return nil, nil
	}); err != nil {
		return err
	}
	if err := waitRevision(name, lifecycleIs(kpov1.LifecycleDraft)); err != nil {
		return err
	}
	lat.Init = append(lat.Init, time.Since(start))

	pr, err := getPR(ctx, name)
	if err != nil {
		return err
	}
	commit := pr.Status.Commit
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: name}, cm); err != nil {
		return err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data["edit.yaml"] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-edit\ndata:\n  round: %q\n", pkg, strconv.Itoa(i))
	start = time.Now()
	if err := c.Update(ctx, cm); err != nil {
		return err
	}
	if err := waitRevision(name, func(pr *kpov1.PackageRevision) error {
		if pr.Status.Commit == commit {
			return errors.New("edit not committed yet")
		}
		return nil
	}); err != nil {
		return err
	}
	lat.Edit = append(lat.Edit, time.Since(start))

	start = time.Now()
	if err := setLifecycle(name, kpov1.LifecycleProposed); err != nil {
		return err
	}
	if err := waitRevision(name, lifecycleIs(kpov1.LifecycleProposed)); err != nil {
		return err
	}
	lat.Propose = append(lat.Propose, time.Since(start))

	start = time.Now()
	if err := setLifecycle(name, kpov1.LifecyclePublished); err != nil {
		return err
	}
	if err := waitRevision(name, func(pr *kpov1.PackageRevision) error {
		if err := lifecycleIs(kpov1.LifecyclePublished)(pr); err != nil {
			return err
		}
		if pr.Status.Revision < 1 {
			return errors.New("no revision number yet")
		}
		return nil
	}); err != nil {
		return err
	}
	lat.Approve = append(lat.Approve, time.Since(start))
	return nil
}

// p50 is the median of times, 0 when there are none.
func p50(times []time.Duration) time.Duration { return percentile(times, 0.5) }

// percentile is the p-th percentile (nearest rank below) of times.
func percentile(times []time.Duration, p float64) time.Duration {
	if len(times) == 0 {
		return 0
	}
	s := slices.Clone(times)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}
