package controller

import (
	"context"
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
)

// variantStepFixture is a variant "app" of blueprints/base (following the newest revision,
// approval policy always) into deployments/app, whose upstream moved while its first draft was
// under way: its clone PackageDraft asks for blueprints.base.r3 (v2), but r2 was approved
// after it and is v3 now. The crash test found the interleaving.
type variantStepFixture struct {
	pv      *kpov1.PackageVariant
	objects []client.Object
}

func newVariantStepFixture(t *testing.T) *variantStepFixture {
	t.Helper()
	pv := &kpov1.PackageVariant{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", UID: "uid-app", Generation: 1,
			Annotations: map[string]string{kpov1.ApprovalPolicyAnnotation: kpov1.ApprovalPolicyAlways, kpov1.ApprovedByAnnotation: "alice"}},
		Spec: kpov1.PackageVariantSpec{
			Upstream:   kpov1.UpstreamPackage{Repo: "blueprints", Package: "base"},
			Downstream: kpov1.DownstreamPackage{Repo: "deployments", Package: "app"},
		},
	}
	f := &variantStepFixture{pv: pv, objects: []client.Object{pv,
		&kpov1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "deployments"}},
		stepRevision("blueprints", "base", "r3", kpov1.LifecyclePublished, 2),
		stepRevision("blueprints", "base", "r2", kpov1.LifecyclePublished, 3),
	}}
	return f
}

// stepRevision is a PackageRevision labelled as the manager labels the ones it lists.
func stepRevision(repo, pkg, ws string, l kpov1.Lifecycle, revision int) *kpov1.PackageRevision {
	return &kpov1.PackageRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: discovery.RevisionName(repo, pkg, ws),
			Labels: map[string]string{kpov1.RepositoryLabel: repo, kpov1.PackageLabel: discovery.PackageLabelValue(pkg)}},
		Spec:   kpov1.PackageRevisionSpec{Repository: repo, PackageName: pkg, WorkspaceName: ws, Lifecycle: l},
		Status: kpov1.PackageRevisionStatus{Lifecycle: l, Revision: revision},
	}
}

// cloneDraft is the variant's PackageDraft cloning blueprints.base.r3, as ensureDraft makes it.
func (f *variantStepFixture) cloneDraft(t *testing.T, scheme *runtime.Scheme, produced string) *kpov1.PackageDraft {
	t.Helper()
	src := kpov1.PackageDraftSource{Clone: &kpov1.CloneSource{UpstreamRef: &kpov1.LocalReference{Name: "blueprints.base.r3"}}}
	d := &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: variantDraftName(f.pv, src), Labels: map[string]string{kpov1.PackageVariantLabel: "app"}},
		Spec:       kpov1.PackageDraftSpec{Repository: "deployments", PackageName: "app", WorkspaceName: "packagevariant-1", Source: src},
		Status:     kpov1.PackageDraftStatus{PackageRevision: produced},
	}
	NewWithT(t).Expect(controllerutil.SetControllerReference(f.pv, d, scheme)).To(Succeed())
	return d
}

// runSteps runs the variant's steps up to the next draft, as Reconcile does, on cached (what
// the cache lists) and live (what the API server holds).
func (f *variantStepFixture) runSteps(cached, live client.Client) (*variantScope, error) {
	r := &PackageVariantReconciler{Client: cached, APIReader: live}
	s := &variantScope{pv: f.pv.DeepCopy()}
	ctx := context.Background()
	for _, step := range []func(context.Context, *variantScope) error{r.reconcileUpstream, r.reconcileOwnership, r.reconcileNextDraft} {
		if err := step(ctx, s); err != nil {
			return s, err
		}
	}
	return s, nil
}

func stepScheme(t *testing.T) *runtime.Scheme {
	scheme := runtime.NewScheme()
	NewWithT(t).Expect(kpov1.AddToScheme(scheme)).To(Succeed())
	return scheme
}

func packageDraftNames(t *testing.T, c client.Client) []string {
	t.Helper()
	list := &kpov1.PackageDraftList{}
	NewWithT(t).Expect(c.List(context.Background(), list, client.InNamespace("ns"))).To(Succeed())
	var out []string
	for _, d := range list.Items {
		out = append(out, d.Name)
	}
	return out
}

// A variant whose upstream moved while its clone PackageDraft had not produced its revision
// waits for that PackageDraft: it used to start a second clone for the new upstream, which
// raced the first for workspace packagevariant-1 and was refused (DuplicateWorkspace) for good.
func TestPackageVariant_upstreamMovesWhileDraftPending_waitsForItsPackageDraft(t *testing.T) {
	g := NewWithT(t)
	scheme := stepScheme(t)
	f := newVariantStepFixture(t)
	d := f.cloneDraft(t, scheme, "")
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(f.objects, d)...).Build()

	s, err := f.runSteps(c, c)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.upstream.Name).To(Equal("blueprints.base.r2"))
	g.Expect(s.waiting).To(Equal(kpov1.WaitingForDraftReason), s.waitingMessage)
	g.Expect(s.waitingMessage).To(ContainSubstring(d.Name))
	g.Expect(packageDraftNames(t, c)).To(ConsistOf(d.Name), "no second PackageDraft")

	t.Run("the PackageDraft not in the cache yet", func(t *testing.T) {
		g := NewWithT(t)
		live := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(f.objects, d)...).Build()
		cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(f.objects...).Build()
		s, err := f.runSteps(cachedView{Client: live, cache: cache}, live)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.waiting).To(Equal(kpov1.WaitingForDraftReason), s.waitingMessage)
		g.Expect(s.waitingMessage).To(ContainSubstring(d.Name))
		g.Expect(packageDraftNames(t, live)).To(ConsistOf(d.Name), "no second PackageDraft")
	})
}

// A variant whose pending clone PackageDraft fails in a way it retries (Ready=False, a Git
// error, not Stalled) waits for it as for any draft under way; once the PackageDraft is refused
// for good (Stalled) the variant is done with it and asks again for the upstream it now follows.
func TestPackageVariant_upstreamMovesWhileDraftRetries_waitsUntilItIsRefusedForGood(t *testing.T) {
	g := NewWithT(t)
	scheme := stepScheme(t)
	f := newVariantStepFixture(t)
	d := f.cloneDraft(t, scheme, "")
	d.Status.Conditions = []metav1.Condition{{Type: kpov1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: kpov1.GitErrorReason, Message: "pushing the draft branch: connection refused"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(f.objects, d)...).WithStatusSubresource(d).Build()

	s, err := f.runSteps(c, c)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.waiting).To(Equal(kpov1.WaitingForDraftReason), s.waitingMessage)
	g.Expect(s.waitingMessage).To(ContainSubstring(d.Name))
	g.Expect(packageDraftNames(t, c)).To(ConsistOf(d.Name), "no second PackageDraft while the first retries")

	setDraftReady(d, nil, terminal(kpov1.DuplicateWorkspaceReason, errors.New("workspace packagevariant-1 is taken")))
	g.Expect(c.Status().Update(context.Background(), d)).To(Succeed())
	s, err = f.runSteps(c, c)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.waiting).To(Equal(kpov1.WaitingForDraftReason), s.waitingMessage)
	g.Expect(packageDraftNames(t, c)).To(HaveLen(2), "a PackageDraft for the upstream the variant follows now")
}

// A variant whose clone PackageDraft produced a revision the cache does not list yet waits for
// it to be listed (the API server has it) rather than cloning again.
func TestPackageVariant_producedRevisionNotCachedYet_waitsForIt(t *testing.T) {
	g := NewWithT(t)
	scheme := stepScheme(t)
	f := newVariantStepFixture(t)
	d := f.cloneDraft(t, scheme, "deployments.app.packagevariant-1")
	cached := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(f.objects, d)...).Build()
	pr := stepRevision("deployments", "app", "packagevariant-1", kpov1.LifecycleDraft, 0)
	pr.Labels[kpov1.DraftLabel] = d.Name
	live := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(f.objects, d, pr)...).Build()

	s, err := f.runSteps(cached, live)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.waiting).To(Equal(kpov1.WaitingForDraftReason), s.waitingMessage)
	g.Expect(s.waitingMessage).To(ContainSubstring("deployments.app.packagevariant-1"))
	g.Expect(packageDraftNames(t, cached)).To(ConsistOf(d.Name), "no second PackageDraft")

	t.Run("listed, not confirmed by Git yet", func(t *testing.T) {
		unconfirmed := pr.DeepCopy()
		delete(unconfirmed.Labels, kpov1.DraftLabel)
		c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(f.objects, d, unconfirmed)...).Build()
		s, err := f.runSteps(c, c)
		g := NewWithT(t)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(s.waitingMessage).To(ContainSubstring("to be confirmed by Git"))
		g.Expect(packageDraftNames(t, c)).To(ConsistOf(d.Name), "no second PackageDraft")
	})

	t.Run("deleted since", func(t *testing.T) {
		s, err := f.runSteps(cached, cached)
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		NewWithT(t).Expect(s.waitingMessage).NotTo(ContainSubstring("to be listed"))
	})
}

// A variant's draft based on an upstream revision that is no longer the one the variant
// follows is published by an approval policy that publishes it, then upgraded; without one the
// variant stalls (DraftBehindUpstream), as before.
func TestPackageVariant_draftBehindUpstream_publishedUnderApprovalPolicy(t *testing.T) {
	scheme := stepScheme(t)
	for _, tc := range []struct {
		name   string
		policy string
		stalls bool
	}{
		{name: "always", policy: kpov1.ApprovalPolicyAlways},
		{name: "initial, nothing published yet", policy: kpov1.ApprovalPolicyInitial},
		{name: "no approval policy", stalls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := newVariantStepFixture(t)
			if tc.policy == "" {
				delete(f.pv.Annotations, kpov1.ApprovalPolicyAnnotation)
			} else {
				f.pv.Annotations[kpov1.ApprovalPolicyAnnotation] = tc.policy
			}
			pr := stepRevision("deployments", "app", "packagevariant-1", kpov1.LifecycleDraft, 0)
			pr.Labels[kpov1.PackageVariantLabel] = "app"
			pr.Status.UpstreamRevision = "blueprints.base.r3"
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(f.objects, pr)...).Build()

			s, err := f.runSteps(c, c)
			var se *stepError
			if tc.stalls {
				g.Expect(errors.As(err, &se)).To(BeTrue(), "%v", err)
				g.Expect(se.Reason).To(Equal(kpov1.DraftBehindUpstreamReason))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.waiting).To(BeEmpty(), "the approval step goes on: %s", s.waitingMessage)
			g.Expect(packageDraftNames(t, c)).To(BeEmpty(), "no upgrade before the draft is published")
		})
	}
}

// cachedView reads from a cache and writes to the API server, as the manager's client does.
type cachedView struct {
	client.Client
	cache client.Reader
}

func (c cachedView) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return c.cache.Get(ctx, key, obj, opts...)
}

func (c cachedView) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return c.cache.List(ctx, list, opts...)
}

// A variant deleted (deletionPolicy delete) while the approval policy's approval of its
// proposal is under way waits for it, then proposes the deletion of the published revision:
// deleting the proposal could race its tag, and a crash between the tag and the status left a
// published revision of no variant (the crash test found it). The revisions are read from the
// API server: the cache here shows none. A proposal whose approval was refused for good is
// deleted.
func TestPackageVariant_deletedWhileApproving_proposesDeletionOncePublished(t *testing.T) {
	g := NewWithT(t)
	scheme := stepScheme(t)
	f := newVariantStepFixture(t)
	now := metav1.Now()
	f.pv.DeletionTimestamp, f.pv.Finalizers = &now, []string{kpov1.PackageVariantFinalizer}
	pr := stepRevision("deployments", "app", "packagevariant-1", kpov1.LifecycleProposed, 0)
	pr.Labels[kpov1.PackageVariantLabel] = "app"
	pr.Spec.Lifecycle = kpov1.LifecyclePublished
	newReconciler := func(objs ...client.Object) (*PackageVariantReconciler, client.Client) {
		live := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(f.objects[1:], append(objs, f.pv)...)...).
			WithStatusSubresource(&kpov1.PackageRevision{}).Build()
		cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(f.objects[1:], f.pv)...).Build()
		return &PackageVariantReconciler{Client: cachedView{Client: live, cache: cache}, APIReader: live}, live
	}
	ctx := context.Background()

	r, live := newReconciler(pr)
	err := r.reconcileDelete(ctx, f.pv.DeepCopy())
	var se *stepError
	g.Expect(errors.As(err, &se)).To(BeTrue(), "%v", err)
	g.Expect(se.Terminal).To(BeFalse())
	got := &kpov1.PackageRevision{}
	g.Expect(live.Get(ctx, client.ObjectKeyFromObject(pr), got)).To(Succeed(), "not deleted while it is being approved")

	// Approved: its deletion is proposed.
	got.Status.Lifecycle, got.Status.Revision = kpov1.LifecyclePublished, 1
	g.Expect(live.Status().Update(ctx, got)).To(Succeed())
	g.Expect(r.reconcileDelete(ctx, f.pv.DeepCopy())).To(Succeed())
	g.Expect(live.Get(ctx, client.ObjectKeyFromObject(pr), got)).To(Succeed())
	g.Expect(got.Spec.Lifecycle).To(Equal(kpov1.LifecycleDeletionProposed))

	t.Run("approval refused for good", func(t *testing.T) {
		refused := pr.DeepCopy()
		refused.Status.Conditions = []metav1.Condition{{Type: kpov1.ReadyCondition, Status: metav1.ConditionFalse,
			Reason: kpov1.ApprovedContentChangedReason, Message: "changed"}}
		r, live := newReconciler(refused)
		NewWithT(t).Expect(r.reconcileDelete(ctx, f.pv.DeepCopy())).To(Succeed())
		NewWithT(t).Expect(live.Get(ctx, client.ObjectKeyFromObject(pr), &kpov1.PackageRevision{})).NotTo(Succeed(), "deleted")
	})
}
