package node_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/testenv"
)

const (
	// failoverPackages publish failoverRevisions revisions each, side by side, in one repository.
	failoverRevisions = 5
	// killAfterApprovals: the leader is killed as soon as this many approvals were accepted.
	killAfterApprovals = 3
	// stepTimeout bounds one step of a stream: a takeover waits for the dead leader's Lease to
	// expire (15 s), then the new leader starts its controllers and syncs.
	stepTimeout = 2 * time.Minute
)

var failoverPackages = []string{"app-a", "app-b"}

// TestFailover_leaderKilledDuringApprovals: two manager replicas with leader election and warm
// function pods. Two streams of revisions (new draft, edit rendered by a function in a warm
// pod, propose, approve) run on two packages of one repository; when the third approval is
// accepted, the leader's process is SIGKILLed and its pod deleted. The other replica (or the
// replacement) takes over: every stream completes, each package has exactly tags v1..v5, each
// holding its own accepted edit, rendered; and the new leader replaced the dead one's warm pods.
func TestFailover_leaderKilledDuringApprovals(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	setManager(t, 2, 1)
	t.Cleanup(func() { setManager(t, 1, 0) })

	f := newRepoFixture(t, "kpo-failover-")
	var approvals atomic.Int32
	type kill struct {
		pod string
		err error
	}
	killed := make(chan kill, 1)
	var killOnce sync.Once
	approved := func() {
		if approvals.Add(1) == killAfterApprovals {
			killOnce.Do(func() {
				pod, err := killLeader(ctx)
				t.Logf("killed the leader %s", pod)
				killed <- kill{pod, err}
			})
		}
	}

	errs := make(chan error, len(failoverPackages))
	for _, pkg := range failoverPackages {
		go func() { errs <- revisionStream(ctx, f, pkg, approved, t.Logf) }()
	}
	for range failoverPackages {
		g.Expect(<-errs).NotTo(HaveOccurred())
	}
	var k kill
	g.Expect(killed).To(Receive(&k), "the leader was killed during the streams")
	g.Expect(k.err).NotTo(HaveOccurred())
	deadLeader := k.pod

	// Consecutive tags, no more, each with its own edit, rendered.
	refs, err := f.git.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	for _, pkg := range failoverPackages {
		var tags []string
		for ref := range refs {
			if strings.HasPrefix(ref, "refs/tags/"+pkg+"/") {
				tags = append(tags, strings.TrimPrefix(ref, "refs/tags/"+pkg+"/"))
			}
		}
		sort.Strings(tags)
		var want []string
		for i := 1; i <= failoverRevisions; i++ {
			want = append(want, fmt.Sprintf("v%d", i))
		}
		g.Expect(tags).To(Equal(want), pkg)
		for i := 1; i <= failoverRevisions; i++ {
			marker, err := f.git.ReadFile(fmt.Sprintf("refs/tags/%s/v%d", pkg, i), pkg+"/marker.yaml")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(marker).To(ContainSubstring(fmt.Sprintf("edit: %s-%d", pkg, i)))
			g.Expect(marker).To(ContainSubstring("namespace: ns-"+pkg), "rendered by the function")
		}
	}

	// No branch left behind, and one PackageRevision per published revision.
	for ref := range refs {
		for _, pkg := range failoverPackages {
			g.Expect(ref).NotTo(Or(HavePrefix("refs/heads/drafts/"+pkg+"/"), HavePrefix("refs/heads/proposed/"+pkg+"/")))
		}
	}
	for _, pkg := range failoverPackages {
		g.Eventually(func(g Gomega) {
			list := &kpov1.PackageRevisionList{}
			g.Expect(k8sClient.List(ctx, list, client.InNamespace(f.ns), client.MatchingLabels{kpov1.PackageLabel: pkg})).To(Succeed())
			var revisions []int
			for _, pr := range list.Items {
				if pr.Status.Revision > 0 {
					revisions = append(revisions, pr.Status.Revision)
					c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition)
					g.Expect(c).NotTo(BeNil(), pr.Name)
					g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s", pr.Name, c.Message)
				}
			}
			sort.Ints(revisions)
			want := make([]int, failoverRevisions)
			for i := range want {
				want[i] = i + 1
			}
			g.Expect(revisions).To(Equal(want), pkg)
		}, timeout, interval).Should(Succeed())
	}

	// The leader changed, and its warm pods were replaced by the new leader's.
	holder := leaseHolder(g)
	g.Expect(holder).NotTo(HavePrefix(deadLeader + "_"))
	g.Eventually(func(g Gomega) {
		list := &corev1.PodList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(functionNamespace), client.MatchingLabels{job.PoolLabel: "kpo"})).To(Succeed())
		instances := map[string]bool{}
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				instances[p.Labels[job.PoolInstanceLabel]] = true
			}
		}
		g.Expect(instances).To(HaveLen(1), "only the new leader's warm pods: %v", instances)
	}, timeout, interval).Should(Succeed())
}

// revisionStream publishes failoverRevisions revisions of pkg one after the other: a draft
// (init, then copies of the last published one), an edit of its content (a marker, and on the
// first one a pipeline with the set-namespace function image), propose, approve. It calls
// approved when an approval was accepted by the API server, and waits for each step's outcome;
// it logs how long each publication took after its approval (a takeover shows there).
func revisionStream(ctx context.Context, f *repoFixture, pkg string, approved func(), logf func(string, ...any)) error {
	prev := ""
	for i := 1; i <= failoverRevisions; i++ {
		ws := fmt.Sprintf("w%d", i)
		src := kpov1.PackageDraftSource{Init: &kpov1.InitSource{}}
		if prev != "" {
			src = kpov1.PackageDraftSource{Copy: &kpov1.CopySource{SourceRef: kpov1.LocalReference{Name: prev}}}
		}
		if err := k8sClient.Create(ctx, &kpov1.PackageDraft{
			ObjectMeta: metav1.ObjectMeta{Name: pkg + "-" + ws, Namespace: f.ns},
			Spec:       kpov1.PackageDraftSpec{Repository: "catalog", PackageName: pkg, WorkspaceName: ws, Source: src},
		}); err != nil {
			return fmt.Errorf("%s %s: creating the draft: %w", pkg, ws, err)
		}
		var rev string
		if err := poll(ctx, func(ctx context.Context) error {
			d := &kpov1.PackageDraft{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: pkg + "-" + ws}, d); err != nil {
				return err
			}
			if c := meta.FindStatusCondition(d.Status.Conditions, kpov1.ReadyCondition); c == nil || c.Status != metav1.ConditionTrue || d.Status.PackageRevision == "" {
				return fmt.Errorf("draft %s not Ready: %v", d.Name, c)
			}
			rev = d.Status.PackageRevision
			return nil
		}); err != nil {
			return fmt.Errorf("%s %s: %w", pkg, ws, err)
		}
		marker := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: marker\ndata:\n  edit: %s-%d\n", pkg, i)
		if err := poll(ctx, func(ctx context.Context) error {
			cm := &corev1.ConfigMap{}
			if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: rev}, cm); err != nil {
				return err
			}
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data["marker.yaml"] = marker
			if !strings.Contains(cm.Data["Kptfile"], "pipeline:") {
				cm.Data["Kptfile"] = strings.TrimRight(cm.Data["Kptfile"], "\n") + "\npipeline:\n" + mutator(setNamespaceImage, "ns-"+pkg)
			}
			return k8sClient.Update(ctx, cm)
		}); err != nil {
			return fmt.Errorf("%s %s: editing: %w", pkg, ws, err)
		}
		branch := "refs/heads/drafts/" + pkg + "/" + ws
		if err := poll(ctx, func(context.Context) error {
			data, err := f.git.ReadFile(branch, pkg+"/marker.yaml")
			if err != nil {
				return err
			}
			if !strings.Contains(data, fmt.Sprintf("edit: %s-%d", pkg, i)) || !strings.Contains(data, "namespace: ns-"+pkg) {
				return fmt.Errorf("the draft branch holds %q", data)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("%s %s: the edit committed: %w", pkg, ws, err)
		}
		for _, lc := range []kpov1.Lifecycle{kpov1.LifecycleProposed, kpov1.LifecyclePublished} {
			if err := poll(ctx, func(ctx context.Context) error {
				pr := &kpov1.PackageRevision{}
				if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: rev}, pr); err != nil {
					return err
				}
				patch := client.MergeFrom(pr.DeepCopy())
				pr.Spec.Lifecycle = lc
				return k8sClient.Patch(ctx, pr, patch)
			}); err != nil {
				return fmt.Errorf("%s %s: %s: %w", pkg, ws, lc, err)
			}
			accepted := time.Now()
			if lc == kpov1.LifecyclePublished {
				approved()
			}
			if err := poll(ctx, func(ctx context.Context) error {
				pr := &kpov1.PackageRevision{}
				if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: rev}, pr); err != nil {
					return err
				}
				if pr.Status.Lifecycle != lc {
					return fmt.Errorf("%s is %s, not yet %s", rev, pr.Status.Lifecycle, lc)
				}
				if lc == kpov1.LifecyclePublished && pr.Status.Revision != i {
					return fmt.Errorf("%s published as revision %d, want %d", rev, pr.Status.Revision, i)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("%s %s: %w", pkg, ws, err)
			}
			if lc == kpov1.LifecyclePublished {
				logf("%s v%d published %s after its approval", pkg, i, time.Since(accepted).Round(time.Millisecond))
			}
		}
		prev = rev
	}
	return nil
}

// poll retries check until it succeeds, for at most stepTimeout.
func poll(ctx context.Context, check func(context.Context) error) error {
	return testenv.PollUntil(ctx, interval, stepTimeout, func(ctx context.Context) (error, error) {
		return check(ctx), nil
	})
}

// killLeader SIGKILLs the process of the manager that holds the leader Lease (a crash: it
// releases nothing) and deletes its pod at once, and returns the pod's name. It runs in a
// stream's goroutine, so it returns its failure rather than failing the test.
func killLeader(ctx context.Context) (string, error) {
	lease := &coordinationv1.Lease{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: controller.LeaderElectionID(nil)}, lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", fmt.Errorf("the leader Lease has no holder")
	}
	name, _, _ := strings.Cut(*lease.Spec.HolderIdentity, "_")
	pod := &corev1.Pod{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: name}, pod); err != nil {
		return name, err
	}
	s := containerStatus(pod, "manager")
	if s == nil {
		return name, fmt.Errorf("pod %s has no manager container status", name)
	}
	procs, err := containerProcesses(s.ContainerID)
	if err != nil {
		return name, err
	}
	if len(procs) == 0 {
		return name, fmt.Errorf("no process of pod %s's manager on this node", name)
	}
	for _, p := range procs {
		if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
			return name, err
		}
	}
	return name, k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0))
}

// leaseHolder is the leader Lease's holder, "<pod>_<id>".
func leaseHolder(g Gomega) string {
	lease := &coordinationv1.Lease{}
	g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: managerNamespace, Name: controller.LeaderElectionID(nil)}, lease)).To(Succeed())
	g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
	return *lease.Spec.HolderIdentity
}

// setManager sets the installed Deployment's replicas and --function-pods-per-image (0: Jobs
// only), and waits for the rollout and for one of its pods to lead.
func setManager(t *testing.T, replicas int32, podsPerImage int) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	flag := "--function-pods-per-image="
	g.Eventually(func() error {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: managerDeployment}, dep); err != nil {
			return err
		}
		c := &dep.Spec.Template.Spec.Containers[0]
		var args []string
		for _, a := range c.Args {
			if !strings.HasPrefix(a, flag) {
				args = append(args, a)
			}
		}
		c.Args = append(args, fmt.Sprintf("%s%d", flag, podsPerImage))
		dep.Spec.Replicas = ptr.To(replicas)
		return k8sClient.Update(ctx, dep)
	}, timeout, interval).Should(Succeed())
	_, err := kubectl("", "-n", managerNamespace, "rollout", "status", "deployment/"+managerDeployment, "--timeout=120s")
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		list := &corev1.PodList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(managerNamespace), client.MatchingLabels{"app.kubernetes.io/name": "kpo"})).To(Succeed())
		var names []string
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				names = append(names, p.Name)
			}
		}
		g.Expect(names).To(HaveLen(int(replicas)))
		holder, _, _ := strings.Cut(leaseHolder(g), "_")
		g.Expect(names).To(ContainElement(holder), "a current pod leads")
	}, stepTimeout, interval).Should(Succeed())
}
