// Package controller holds the reconcilers of kpo's kinds.
package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
)

// DefaultSyncInterval is how often a Repository is re-read when spec.sync.interval is unset.
const DefaultSyncInterval = 5 * time.Minute

// maxRetryAfter bounds the wait before retrying a failure only an outside change fixes.
const maxRetryAfter = time.Minute

// RepositoryReconciler keeps the PackageRevisions (and their content ConfigMaps) of each
// Repository equal to what its Git repository holds.
type RepositoryReconciler struct {
	client.Client
	git      *gitAccess
	shard    *shard
	Recorder record.EventRecorder
	// MaxConcurrentReconciles bounds parallel syncs (default 2).
	MaxConcurrentReconciles int
	// syncedOnce holds the UIDs of the Repositories this process has synced fully.
	syncedOnce sync.Map
}

// +kubebuilder:rbac:groups=kpo.dev,resources=repositories,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kpo.dev,resources=repositories/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kpo.dev,resources=repositories/finalizers,verbs=update
// +kubebuilder:rbac:groups=kpo.dev,resources=packagerevisions,verbs=get;list;watch;create;update;patch;delete;deletecollection
// +kubebuilder:rbac:groups=kpo.dev,resources=packagerevisions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch;delete;deletecollection
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;create;delete;deletecollection,namespace=kpo-fn

// SetupWithManager registers the reconciler: it runs on spec changes and on any annotation
// change (kpo.dev/sync-requested), requeues itself for periodic syncs, recounts its
// packages when one of its PackageRevisions is created or deleted, and forgets a Repository
// that leaves the cache (deleted, or moved to another shard).
func (r *RepositoryReconciler) SetupWithManager(mgr ctrl.Manager) error {
	workers := r.MaxConcurrentReconciles
	if workers == 0 {
		workers = 2
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&kpov1.Repository{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&kpov1.PackageRevision{}, handler.EnqueueRequestsFromMapFunc(repositoryOf),
			builder.WithPredicates(predicate.Funcs{
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Watches(&kpov1.Repository{}, handler.Funcs{DeleteFunc: r.forget}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Named("repository").
		Complete(r)
}

// repositoryOf maps a PackageRevision to its Repository.
func repositoryOf(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[kpov1.RepositoryLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// syncState carries what one reconcile learned from Git from step to step.
type syncState struct {
	repo *git.Repo
	// head is the commit of the registered branch.
	head      string
	revisions []discovery.Revision
}

// Reconcile syncs one Repository: validate, connect and fetch, then make its PackageRevisions
// equal to Git. A deferred status patch owns Ready and observedGeneration.
func (r *RepositoryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	repo := &kpov1.Repository{}
	if err := r.Get(ctx, req.NamespacedName, repo); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !repo.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, repo)
	}
	if err := ensureFinalizer(ctx, r.Client, repo, kpov1.RepositoryFinalizer); err != nil {
		return ctrl.Result{}, err
	}

	now := time.Now()
	due, wait := syncDue(repo, now)
	if _, seen := r.syncedOnce.Load(repo.UID); !seen {
		// The first reconcile in this process reads Git whatever the status says: the previous
		// process may have died between a write to Git and the status that records it.
		due = true
	}
	wasReady := isReady(repo.Status.Conditions)
	defer func() {
		if err := patchStatus(ctx, r.Client, req.NamespacedName, &kpov1.Repository{}, func(fresh *kpov1.Repository) {
			summarizeRepository(fresh, repo, due, retErr)
		}); err != nil {
			retErr = errors.Join(retErr, err)
		}
		r.recordReadyChange(repo, wasReady)
		result, retErr = resultFor(result, retErr)
	}()

	if !due {
		// Only a PackageRevision came or went: recount, and sync when the interval is up.
		result = ctrl.Result{RequeueAfter: wait}
		return result, r.reconcilePackageCount(ctx, repo, nil)
	}
	defer r.git.lock(repo)()
	state := &syncState{}
	result = ctrl.Result{RequeueAfter: nextSync(repo, now)}
	for _, step := range []func(context.Context, *kpov1.Repository, *syncState) error{
		r.reconcileShard,
		r.reconcileSource,
		r.reconcileRevisions,
		r.reconcilePackageCount,
	} {
		if err := step(ctx, repo, state); err != nil {
			var se *stepError
			if errors.As(err, &se) && se.RetryAfter > 0 {
				se.RetryAfter = min(se.RetryAfter, result.RequeueAfter)
			}
			return result, err
		}
	}
	r.syncedOnce.Store(repo.UID, true)
	return result, nil
}

// summarizeRepository sets what the Repository reconciler owns on fresh from repo, the copy the
// steps worked on: commit, lastSyncTime, packageCount, PackagesValid, lastHandledSyncRequest
// (after a sync that succeeded), and Ready with observedGeneration.
func summarizeRepository(fresh, repo *kpov1.Repository, synced bool, outcome error) {
	fresh.Status.Commit = repo.Status.Commit
	fresh.Status.LastSyncTime = repo.Status.LastSyncTime
	fresh.Status.PackageCount = repo.Status.PackageCount
	if c := meta.FindStatusCondition(repo.Status.Conditions, kpov1.PackagesValidCondition); c != nil {
		meta.SetStatusCondition(&fresh.Status.Conditions, *c)
	}
	if synced && outcome == nil {
		fresh.Status.LastHandledSyncRequest = fresh.Annotations[kpov1.SyncRequestedAnnotation]
	}
	setRepositoryReady(fresh, outcome)
	repo.Status = *fresh.Status.DeepCopy()
}

// syncDue tells whether a reconcile must read Git — a new generation, a sync requested by
// annotation, a failed or missing last sync, spec.sync.runOnceAt passed, or the interval up —
// and otherwise how long until the next periodic sync.
func syncDue(repo *kpov1.Repository, now time.Time) (bool, time.Duration) {
	last := repo.Status.LastSyncTime
	switch {
	case repo.Status.ObservedGeneration != repo.Generation,
		repo.Annotations[kpov1.SyncRequestedAnnotation] != repo.Status.LastHandledSyncRequest,
		last == nil,
		!isReady(repo.Status.Conditions):
		return true, 0
	}
	if s := repo.Spec.Sync; s != nil && s.RunOnceAt != nil && s.RunOnceAt.After(last.Time) && !s.RunOnceAt.After(now) {
		return true, 0
	}
	wait := last.Add(syncInterval(repo)).Sub(now)
	if s := repo.Spec.Sync; s != nil && s.RunOnceAt != nil && s.RunOnceAt.After(now) {
		wait = min(wait, s.RunOnceAt.Sub(now))
	}
	return wait <= 0, max(wait, 0)
}

// reconcilePackageCount sets status.packageCount: the packages that have a PackageRevision.
// The Repository reconciler is its only writer; a new or deleted PackageRevision requeues it.
func (r *RepositoryReconciler) reconcilePackageCount(ctx context.Context, repo *kpov1.Repository, _ *syncState) error {
	list := &kpov1.PackageRevisionList{}
	if err := r.List(ctx, list, client.InNamespace(repo.Namespace), ofRepository(repo.Name)); err != nil {
		return fmt.Errorf("listing package revisions: %w", err)
	}
	pkgs := map[string]bool{}
	for _, pr := range list.Items {
		if pr.DeletionTimestamp.IsZero() {
			pkgs[pr.Spec.PackageName] = true
		}
	}
	repo.Status.PackageCount = len(pkgs)
	return nil
}

// reconcileSource loads the credentials, fetches the repository into the local cache and
// resolves the registered branch, creating it when spec.git.createBranch asks for it. It sets
// state.repo and state.head; its failures carry the reason Ready reports.
func (r *RepositoryReconciler) reconcileSource(ctx context.Context, repo *kpov1.Repository, state *syncState) error {
	src, err := r.git.open(ctx, repo)
	if err != nil {
		return err
	}
	state.repo = src

	branch := branchOf(repo)
	head, err := src.BranchHead(branch)
	if errors.Is(err, git.ErrBranchNotFound) && repo.Spec.Git.CreateBranch {
		head, err = createBranch(ctx, src, repo)
	}
	if err != nil {
		return gitStepError(fmt.Sprintf("resolving branch %q", branch), err)
	}
	state.head = head
	return nil
}

// reconcileRevisions discovers the package revisions in Git and makes the PackageRevisions
// and content ConfigMaps equal to them. It sets the PackagesValid condition (a revision that
// cannot be a PackageRevision is named there and skipped, never failing the sync) and, once
// every other revision is synced, status commit, packageCount and lastSyncTime.
func (r *RepositoryReconciler) reconcileRevisions(ctx context.Context, repo *kpov1.Repository, state *syncState) error {
	revs, err := discovery.Discover(state.repo, discovery.Options{
		Branch: branchOf(repo), Directory: repo.Spec.Git.Directory,
	})
	if err != nil {
		return gitStepError("discovering packages", err)
	}
	state.revisions = revs

	s := &revisionSync{Client: r.Client, apiReader: r.git.apiReader, repo: repo, src: state.repo, full: true}
	err = s.apply(ctx, revs, "")
	r.reportProblems(repo, s.problems)
	if err != nil {
		return err
	}

	now := metav1Now()
	repo.Status.Commit = state.head
	repo.Status.LastSyncTime = &now
	return nil
}

// reportProblems sets PackagesValid and emits a warning event when its message changes to
// name other package revisions.
func (r *RepositoryReconciler) reportProblems(repo *kpov1.Repository, problems []discovery.Problem) {
	old := meta.FindStatusCondition(repo.Status.Conditions, kpov1.PackagesValidCondition)
	var oldMessage string
	if old != nil {
		oldMessage = old.Message
	}
	setPackagesValid(repo, problems)
	c := meta.FindStatusCondition(repo.Status.Conditions, kpov1.PackagesValidCondition)
	if r.Recorder != nil && c.Status == metav1.ConditionFalse && c.Message != oldMessage {
		r.Recorder.Event(repo, corev1.EventTypeWarning, c.Reason, c.Message)
	}
}

// reconcileDelete removes the Repository's PackageRevisions and ConfigMaps and its cached
// clone — never anything in Git — then releases the finalizer.
func (r *RepositoryReconciler) reconcileDelete(ctx context.Context, repo *kpov1.Repository) error {
	if !controllerutil.ContainsFinalizer(repo, kpov1.RepositoryFinalizer) {
		return nil
	}
	owned := client.MatchingLabels{kpov1.RepositoryLabel: repo.Name}
	if err := r.DeleteAllOf(ctx, &kpov1.PackageRevision{}, client.InNamespace(repo.Namespace), owned); err != nil {
		return fmt.Errorf("deleting package revisions: %w", err)
	}
	if err := r.DeleteAllOf(ctx, &corev1.ConfigMap{}, client.InNamespace(repo.Namespace), owned); err != nil {
		return fmt.Errorf("deleting content config maps: %w", err)
	}
	if err := r.git.cache.Remove(cacheKey(repo)); err != nil {
		log.FromContext(ctx).Error(err, "removing the cached clone")
	}
	patch := client.MergeFrom(repo.DeepCopy())
	controllerutil.RemoveFinalizer(repo, kpov1.RepositoryFinalizer)
	return client.IgnoreNotFound(r.Patch(ctx, repo, patch))
}

// recordReadyChange emits an event when Ready changes.
func (r *RepositoryReconciler) recordReadyChange(repo *kpov1.Repository, wasReady bool) {
	if r.Recorder == nil {
		return
	}
	ready := isReady(repo.Status.Conditions)
	c := readyCondition(repo.Status.Conditions)
	switch {
	case ready && !wasReady:
		r.Recorder.Event(repo, corev1.EventTypeNormal, c.Reason, c.Message)
	case !ready && c != nil && c.Reason != kpov1.ProgressingReason:
		r.Recorder.Event(repo, corev1.EventTypeWarning, c.Reason, c.Message)
	}
}

// nextSync is the time until the next periodic sync: spec.sync.interval (default 5m) with up
// to 10% jitter, or sooner when spec.sync.runOnceAt is still ahead.
func nextSync(repo *kpov1.Repository, now time.Time) time.Duration {
	interval := syncInterval(repo)
	next := interval + time.Duration(rand.Int64N(int64(interval/10)+1)) //nolint:gosec // G404: jitter spreads syncs, it need not be unpredictable
	if s := repo.Spec.Sync; s != nil && s.RunOnceAt != nil {
		if until := s.RunOnceAt.Sub(now); until > 0 && until < next {
			next = until
		}
	}
	return next
}

// syncInterval is spec.sync.interval, or DefaultSyncInterval.
func syncInterval(repo *kpov1.Repository) time.Duration {
	if s := repo.Spec.Sync; s != nil && s.Interval != nil && s.Interval.Duration > 0 {
		return s.Interval.Duration
	}
	return DefaultSyncInterval
}
