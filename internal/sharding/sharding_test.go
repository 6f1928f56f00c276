package sharding_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/kpotest"
	"kpo.dev/kpo/internal/testenv"
)

const (
	timeout  = 60 * time.Second
	interval = 100 * time.Millisecond
)

// The managers of the tests, as a team that outgrew one manager runs them: one per shard, and
// the main instance, which serves the Repositories without the shard key label (as Flux's main
// instance does), among them those of PackageDrafts that name no existing Repository.
var shards = []struct{ manager, selector string }{
	{"a", "kpo.dev/shard=a"},
	{"b", "kpo.dev/shard=b"},
	{"main", "!kpo.dev/shard"},
}

// managerOf is the manager that serves a Repository labelled kpo.dev/shard=shard ("" for none).
func managerOf(shard string) string {
	if shard == "" {
		return "main"
	}
	return shard
}

// The control plane and the managers are shared by the tests of this package; each test works
// in its own namespace against its own Git server.
var (
	k8sClient client.Client
	managers  = map[string]*testenv.Kpo{}
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(logSink())))
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	for _, s := range shards {
		kpo, err := testenv.StartShard(env, s.manager, s.selector, nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "starting manager %s: %v\n", s.manager, err)
			return 1
		}
		defer kpo.Stop()
		managers[s.manager] = kpo
	}
	if k8sClient, err = client.New(env.Config, client.Options{Scheme: testenv.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// fixture is a Git repository of published packages, registered in a shard.
type fixture struct {
	name, shard string
	packages    []string
}

func TestSharding_twoManagersNeverActOnOneRepository(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	fixtures := []fixture{
		{name: "a-one", shard: "a", packages: []string{"web"}},
		{name: "a-two", shard: "a", packages: []string{"web", "db"}},
		{name: "b-one", shard: "b", packages: []string{"web", "db", "cache"}},
		{name: "b-two", shard: "b", packages: []string{"api"}},
		{name: "m-one", packages: []string{"web", "db"}},
	}
	for _, f := range fixtures {
		seed(t, srv, f.name, f.packages...)
		register(t, ns, f.name, srv.RepoURL(f.name), f.shard)
	}
	for _, f := range fixtures {
		waitSynced(t, ns, f.name, len(f.packages))
		// The content of a published revision is in a ConfigMap on request only.
		requestContent(t, ns, f.name+"."+f.packages[0]+".v1")
		g.Eventually(func(g Gomega) {
			objs := objectsOf(g, ns, f.name)
			g.Expect(objs).To(HaveLen(2*len(f.packages)+1), "PackageRevisions v1 and main of each package, and the content requested")
			g.Expect(objs).To(HaveKey("ConfigMap/" + f.name + "." + f.packages[0] + ".v1"))
			expectShard(g, objs, f.shard)
		}, timeout, interval).Should(Succeed())
	}

	// A PackageDraft in each shard is carried out by the manager of its Repository's shard.
	for _, f := range fixtures {
		if strings.HasSuffix(f.name, "-one") {
			newDraft(t, ns, f.name+"-new", f.name)
		}
	}
	for _, f := range fixtures {
		if !strings.HasSuffix(f.name, "-one") {
			continue
		}
		g.Expect(draftReady(t, ns, f.name+"-new")).To(Equal(f.name + ".new.w"))
		g.Eventually(func(g Gomega) {
			objs := objectsOf(g, ns, f.name)
			g.Expect(objs).To(HaveKey("PackageRevision/" + f.name + ".new.w"))
			g.Expect(objs).To(HaveKey("ConfigMap/" + f.name + ".new.w"))
			expectShard(g, objs, f.shard)
		}, timeout, interval).Should(Succeed())
	}
	// One that names no existing Repository is reported by the main instance alone.
	newDraft(t, ns, "ghost-new", "ghost")
	g.Eventually(func(g Gomega) {
		c := draftCondition(g, ns, "ghost-new")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(kpov1.RepositoryNotReadyReason))
		g.Expect(c.Message).To(ContainSubstring(`repository "ghost" does not exist`))
	}, timeout, interval).Should(Succeed())

	// A requested sync of every Repository is carried out by its shard's manager.
	for _, f := range fixtures {
		packages := len(f.packages)
		if strings.HasSuffix(f.name, "-one") {
			packages++ // "new"
		}
		waitSyncHandled(t, ns, f.name, requestSync(t, ns, f.name), packages)
	}

	// Each manager's writes name only objects of its own shard's Repositories...
	ownerOf := func(name string) string {
		for _, f := range fixtures {
			if name == f.name || strings.HasPrefix(name, f.name+".") || strings.HasPrefix(name, f.name+"-") {
				return managerOf(f.shard)
			}
		}
		if strings.HasPrefix(name, "ghost-new") {
			return "main"
		}
		return "unknown: " + name
	}
	for manager, kpo := range managers {
		writes := kpo.Requests.Writes(ns)
		g.Expect(writes).NotTo(BeEmpty(), "manager %s", manager)
		for key := range writes {
			if fields := strings.Fields(key); len(fields) == 3 { // creates have no name: see below
				g.Expect(ownerOf(fields[2])).To(Equal(manager), "manager %s sent %s", manager, key)
			}
		}
	}
	// ...and the API server recorded every object, created or changed, as written by one manager:
	// its shard's.
	var all []client.Object
	for _, list := range []client.ObjectList{&kpov1.RepositoryList{}, &kpov1.PackageRevisionList{}, &kpov1.PackageDraftList{}, &corev1.ConfigMapList{}} {
		g.Expect(k8sClient.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		items, err := meta.ExtractList(list)
		g.Expect(err).NotTo(HaveOccurred())
		for _, item := range items {
			all = append(all, item.(client.Object))
		}
	}
	g.Expect(len(all)).To(BeNumerically(">", 2*len(fixtures)))
	for _, obj := range all {
		if obj.GetName() == "kube-root-ca.crt" {
			continue
		}
		if pr, ok := obj.(*kpov1.PackageRevision); ok && pr.Status.Lifecycle == kpov1.LifecyclePublished && len(pr.ManagedFields) == 0 {
			// A published revision read from Git (a tag, or the registered branch) keeps no
			// managed fields: the sync drops them with a patch that names it, counted above.
			continue
		}
		g.Expect(writers(obj)).To(Equal([]string{"kpo-" + ownerOf(obj.GetName())}),
			"%T %s", obj, obj.GetName())
	}
}

func TestSharding_relabelledRepositoryIsHandedOver(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	gitRepo := seed(t, srv, "moving", "web", "db")
	register(t, ns, "moving", srv.RepoURL("moving"), "a")
	waitSynced(t, ns, "moving", 2)
	newDraft(t, ns, "moving-new", "moving")
	g.Expect(draftReady(t, ns, "moving-new")).To(Equal("moving.new.w"))
	var before map[string]types.UID
	g.Eventually(func(g Gomega) {
		before = uids(objectsOf(g, ns, "moving"))
		g.Expect(before).To(HaveLen(6), "PackageRevisions v1 and main of web and db, and the draft of new with its ConfigMap")
		g.Expect(packageCount(g, ns, "moving")).To(Equal(3))
	}, timeout, interval).Should(Succeed())
	revisions := kpotest.Revisions{Client: k8sClient, Timeout: timeout, Interval: interval}

	// Moved to shard b: its manager takes the same objects over (nothing deleted or created
	// again), and carries out what users ask of them from then on. Shard a's manager, idle when
	// the Repository left it, writes nothing at all.
	quiet(t, ns)
	handOver(t, ns, "moving", "b", before)
	waitSyncHandled(t, ns, "moving", requestSync(t, ns, "moving"), 3)
	for key := range managers["b"].Requests.Writes(ns) {
		g.Expect(key).NotTo(ContainSubstring("packagedrafts"), "the PackageDraft's revision, on its way from a to b, is never reported lost")
	}
	editContent(t, ns, "moving.new.w", "README.md", "# new, edited in shard b\n")
	g.Expect(kpotest.SetLifecycle(k8sClient, ns, "moving.new.w", kpov1.LifecycleProposed)).To(Succeed())
	revisions.WaitLifecycle(t, ns, "moving.new.w", kpov1.LifecycleProposed)
	g.Expect(gitRepo.ReadFile("refs/heads/proposed/new/w", "new/README.md")).To(Equal("# new, edited in shard b\n"))
	g.Expect(managers["b"].Requests.Writes(ns)).To(HaveKey("PATCH repositories/status moving"))
	expectNoWritesBut(g, ns, "b")

	// Moved to the main instance (the label removed): the same again.
	quiet(t, ns)
	handOver(t, ns, "moving", "", before)
	waitSyncHandled(t, ns, "moving", requestSync(t, ns, "moving"), 3)
	g.Expect(kpotest.SetLifecycle(k8sClient, ns, "moving.new.w", kpov1.LifecyclePublished)).To(Succeed())
	revisions.WaitLifecycle(t, ns, "moving.new.w", kpov1.LifecyclePublished)
	g.Expect(gitRepo.ReadFile("refs/tags/new/v1", "new/README.md")).To(Equal("# new, edited in shard b\n"))
	g.Expect(managers["main"].Requests.Writes(ns)).To(HaveKey("PATCH repositories/status moving"))
	expectNoWritesBut(g, ns, "main")

	// Back to shard a, whose manager served it before: it takes the objects over again, whatever
	// it remembers of the Repository.
	quiet(t, ns)
	g.Eventually(func(g Gomega) {
		before = uids(objectsOf(g, ns, "moving"))
		g.Expect(before).To(HaveLen(6), "new/v1 published: new on main is a revision too, and its content is in Git alone")
	}, timeout, interval).Should(Succeed())
	handOver(t, ns, "moving", "a", before)
	waitSynced(t, ns, "moving", 3)
	expectNoWritesBut(g, ns, "a")
	c := draftCondition(g, ns, "moving-new")
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "the PackageDraft keeps its revision across the moves: %s", c.Message)
}

func TestSharding_repositoryMovedToAShardNoManagerServes_isLeftAlone(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	gitRepo := seed(t, srv, "parked", "web")
	register(t, ns, "parked", srv.RepoURL("parked"), "a")
	waitSynced(t, ns, "parked", 1)
	newDraft(t, ns, "parked-new", "parked")
	g.Expect(draftReady(t, ns, "parked-new")).To(Equal("parked.new.w"))
	waitSynced(t, ns, "parked", 2)

	// Shard c has no manager yet. Its revisions, still labelled a and in a's cache, are left as
	// they are: a's manager neither carries out what users ask of them nor reports their
	// Repository missing, and a deleted draft keeps its finalizer, so that its branch is deleted
	// once c's manager runs, instead of staying behind in Git.
	quiet(t, ns)
	relabel(t, ns, "parked", "c")
	g.Expect(kpotest.SetLifecycle(k8sClient, ns, "parked.web.v1", kpov1.LifecycleDeletionProposed)).To(Succeed())
	g.Expect(k8sClient.Delete(context.Background(), &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Name: "parked.new.w", Namespace: ns}})).To(Succeed())
	g.Consistently(func(g Gomega) {
		for name, kpo := range managers {
			g.Expect(kpo.Requests.Writes(ns)).To(BeEmpty(), "manager %s", name)
		}
	}, "2s", interval).Should(Succeed())
	g.Expect(gitRepo.RefHash("refs/heads/drafts/new/w")).NotTo(BeEmpty())

	// Moved to b, it is served again, and what users asked meanwhile is carried out.
	relabel(t, ns, "parked", "b")
	kpotest.Revisions{Client: k8sClient, Timeout: timeout, Interval: interval}.WaitLifecycle(t, ns, "parked.web.v1", kpov1.LifecycleDeletionProposed)
	g.Eventually(func(g Gomega) {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "parked.new.w"}, &kpov1.PackageRevision{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "deleted: %v", err)
		_, err = gitRepo.RefHash("refs/heads/drafts/new/w")
		g.Expect(err).To(MatchError(gitserver.ErrRefNotFound), "its branch deleted")
	}, timeout, interval).Should(Succeed())
	for _, other := range []string{"a", "main"} {
		g.Expect(managers[other].Requests.Writes(ns)).To(BeEmpty(), "manager %s", other)
	}
}

// seed creates a Git repository with each package published as v1 (tag <package>/v1).
func seed(t testing.TB, srv *gitserver.Server, name string, packages ...string) *gitserver.Repo {
	t.Helper()
	g := NewWithT(t)
	repo, err := srv.CreateRepo(name)
	g.Expect(err).NotTo(HaveOccurred())
	for _, pkg := range packages {
		commit, err := repo.Commit("main", gitserver.Change{
			Message: fmt.Sprintf("Approve %s v1\n\nkpt:{\"package\":%q,\"workspaceName\":\"v1\",\"revision\":\"1\"}", pkg, pkg),
			Files: map[string]string{
				pkg + "/Kptfile": "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: " + pkg +
					"\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\ninfo:\n  description: " + pkg + "\n",
				pkg + "/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + pkg + "\n",
			},
		})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(repo.Tag(pkg+"/v1", commit)).To(Succeed())
	}
	return repo
}

// requestContent asks for the content of a published revision in a ConfigMap, as `kpoctl rpkg
// pull` does.
func requestContent(t testing.TB, ns, name string) {
	t.Helper()
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+
		kpov1.ContentRequestedAnnotation+`":"`+time.Now().UTC().Format(time.RFC3339)+`"}}}`))
	pr := &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	NewWithT(t).Expect(k8sClient.Patch(context.Background(), pr, patch)).To(Succeed())
}

// register creates a Repository in shard ("" for none). Its periodic sync is an hour away, so
// every sync of a test is one the test asked for.
func register(t testing.TB, ns, name, url, shard string) {
	t.Helper()
	repo := &kpov1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kpov1.RepositorySpec{Git: kpov1.GitRepository{Repo: url},
			Sync: &kpov1.RepositorySync{Interval: &metav1.Duration{Duration: time.Hour}}},
	}
	if shard != "" {
		repo.Labels = map[string]string{kpov1.ShardLabel: shard}
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), repo)).To(Succeed())
}

// relabel moves a Repository to shard ("" removes the label), as a user does with
// `kubectl label repository NAME kpo.dev/shard=SHARD --overwrite`.
func relabel(t testing.TB, ns, name, shard string) {
	t.Helper()
	label := `null`
	if shard != "" {
		label = `"` + shard + `"`
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"`+kpov1.ShardLabel+`":`+label+`}}}`))
	repo := &kpov1.Repository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	NewWithT(t).Expect(k8sClient.Patch(context.Background(), repo, patch)).To(Succeed())
}

func getRepository(g Gomega, ns, name string) *kpov1.Repository {
	repo := &kpov1.Repository{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, repo)).To(Succeed())
	return repo
}

func packageCount(g Gomega, ns, name string) int {
	return getRepository(g, ns, name).Status.PackageCount
}

// waitSynced waits until a Repository is Ready for its generation with packages packages.
func waitSynced(t testing.TB, ns, name string, packages int) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		repo := getRepository(g, ns, name)
		c := meta.FindStatusCondition(repo.Status.Conditions, kpov1.ReadyCondition)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(c.ObservedGeneration).To(Equal(repo.Generation))
		g.Expect(repo.Status.PackageCount).To(Equal(packages))
	}, timeout, interval).Should(Succeed())
}

// requestSync asks for a sync of a Repository (annotation kpo.dev/sync-requested) and returns
// the request's token.
func requestSync(t testing.TB, ns, name string) string {
	t.Helper()
	token := time.Now().Format(time.RFC3339Nano)
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+kpov1.SyncRequestedAnnotation+`":"`+token+`"}}}`))
	repo := &kpov1.Repository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	NewWithT(t).Expect(k8sClient.Patch(context.Background(), repo, patch)).To(Succeed())
	return token
}

// waitSyncHandled waits until the sync requested with token succeeded, counting packages.
func waitSyncHandled(t testing.TB, ns, name, token string, packages int) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(getRepository(g, ns, name).Status.LastHandledSyncRequest).To(Equal(token))
	}, timeout, interval).Should(Succeed())
	waitSynced(t, ns, name, packages)
}

// objectsOf returns a Repository's PackageRevisions and content ConfigMaps, keyed "Kind/name",
// as the API server holds them.
func objectsOf(g Gomega, ns, repo string) map[string]client.Object {
	own := client.MatchingLabels{kpov1.RepositoryLabel: repo}
	prs := &kpov1.PackageRevisionList{}
	g.Expect(k8sClient.List(context.Background(), prs, client.InNamespace(ns), own)).To(Succeed())
	cms := &corev1.ConfigMapList{}
	g.Expect(k8sClient.List(context.Background(), cms, client.InNamespace(ns), own, client.MatchingLabels{kpov1.ContentLabel: "true"})).To(Succeed())
	out := map[string]client.Object{}
	for i := range prs.Items {
		out["PackageRevision/"+prs.Items[i].Name] = &prs.Items[i]
	}
	for i := range cms.Items {
		out["ConfigMap/"+cms.Items[i].Name] = &cms.Items[i]
	}
	return out
}

// uids are the UIDs of objs: the same UIDs are the same objects, never deleted and created again.
func uids(objs map[string]client.Object) map[string]types.UID {
	out := map[string]types.UID{}
	for key, obj := range objs {
		out[key] = obj.GetUID()
	}
	return out
}

// expectShard checks that every object of objs carries kpo.dev/shard=shard, or no such label
// for "".
func expectShard(g Gomega, objs map[string]client.Object, shard string) {
	for key, obj := range objs {
		if shard == "" {
			g.Expect(obj.GetLabels()).NotTo(HaveKey(kpov1.ShardLabel), key)
		} else {
			g.Expect(obj.GetLabels()).To(HaveKeyWithValue(kpov1.ShardLabel, shard), key)
		}
	}
}

// handOver relabels Repository name to shard ("" for none) and waits until its objects, the
// same ones (before, by UID), carry that shard.
func handOver(t testing.TB, ns, name, shard string, before map[string]types.UID) {
	t.Helper()
	relabel(t, ns, name, shard)
	NewWithT(t).Eventually(func(g Gomega) {
		objs := objectsOf(g, ns, name)
		g.Expect(uids(objs)).To(Equal(before))
		expectShard(g, objs, shard)
	}, timeout, interval).Should(Succeed())
}

// expectNoWritesBut checks that no manager but writer wrote in ns since the counts were reset.
func expectNoWritesBut(g Gomega, ns, writer string) {
	for name, kpo := range managers {
		if name != writer {
			g.Expect(kpo.Requests.Writes(ns)).To(BeEmpty(), "manager %s wrote after the Repository left it", name)
		}
	}
}

// writers are the kpo managers the API server recorded as writers of obj (metadata.managedFields:
// StartShard names each manager's requests "kpo-<manager>").
func writers(obj client.Object) []string {
	var out []string
	for _, f := range obj.GetManagedFields() {
		if strings.HasPrefix(f.Manager, "kpo-") && !slices.Contains(out, f.Manager) {
			out = append(out, f.Manager)
		}
	}
	slices.Sort(out)
	return out
}

// quiet waits until no manager has sent a write in ns for a second, and resets their counts.
func quiet(t testing.TB, ns string) {
	t.Helper()
	NewWithT(t).Eventually(func() map[string]map[string]int {
		writes := map[string]map[string]int{}
		for name, kpo := range managers {
			if w := kpo.Requests.Writes(ns); len(w) > 0 {
				writes[name] = w
			}
			kpo.Requests.Reset()
		}
		return writes
	}, timeout, time.Second).Should(BeEmpty())
}

// newDraft applies a PackageDraft that inits package "new" in workspace "w" of repo: its revision
// is <repo>.new.w.
func newDraft(t testing.TB, ns, name, repo string) {
	t.Helper()
	d := &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kpov1.PackageDraftSpec{Repository: repo, PackageName: "new", WorkspaceName: "w",
			Source: kpov1.PackageDraftSource{Init: &kpov1.InitSource{Description: "a new package"}}},
	}
	NewWithT(t).Expect(k8sClient.Create(context.Background(), d)).To(Succeed())
}

func draftCondition(g Gomega, ns, name string) metav1.Condition {
	d := &kpov1.PackageDraft{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
	c := meta.FindStatusCondition(d.Status.Conditions, kpov1.ReadyCondition)
	g.Expect(c).NotTo(BeNil())
	return *c
}

// draftReady waits until a PackageDraft produced its revision and returns the revision's name.
func draftReady(t testing.TB, ns, name string) string {
	t.Helper()
	var produced string
	NewWithT(t).Eventually(func(g Gomega) {
		c := draftCondition(g, ns, name)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		d := &kpov1.PackageDraft{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
		produced = d.Status.PackageRevision
	}, timeout, interval).Should(Succeed())
	return produced
}

// editContent sets one file of a draft's content ConfigMap, as `kubectl edit` would.
func editContent(t testing.TB, ns, name, file, data string) {
	t.Helper()
	g := NewWithT(t)
	cm := &corev1.ConfigMap{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm)).To(Succeed())
	cm.Data[file] = data
	g.Expect(k8sClient.Update(context.Background(), cm)).To(Succeed())
}

// newNamespace creates a namespace for one test and deletes it when the test ends.
func newNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kpo-shard-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), ns) })
	return ns.Name
}

// newGitServer starts a real smart-HTTP Git server, open to anonymous access, for one test.
func newGitServer(t testing.TB) *gitserver.Server {
	t.Helper()
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatalf("starting git server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// logSink is where the managers' log goes: stderr with KPO_TEST_LOG=1.
func logSink() io.Writer {
	if os.Getenv("KPO_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
