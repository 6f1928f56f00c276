package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/discovery"
)

// PackageVariantReconciler keeps a downstream package a customised variant of an upstream
// revision. It never writes Git or content itself beyond what a user could: drafts are created
// by PackageDrafts it owns (clone, upgrade, copy: the same code, checks and crash safety as a
// user's PackageDraft), customisations are edits of a draft's content ConfigMap (rendered and
// committed by the PackageRevision reconciler as any edit), and publication is an edit of
// spec.lifecycle under the variant's approval policy.
type PackageVariantReconciler struct {
	client.Client
	// APIReader reads in-cluster objects to inject, uncached: the manager caches only its own
	// kinds, and reads only what its role allows.
	APIReader client.Reader
	git       *gitAccess
	shard     *shard
	Recorder  record.EventRecorder
	// upToDate remembers, per variant UID, the published revision last found up to date (see
	// customizationChanges).
	upToDate sync.Map
}

// +kubebuilder:rbac:groups=kpo.dev,resources=packagevariants,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kpo.dev,resources=packagevariants/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kpo.dev,resources=packagevariants/finalizers,verbs=update
// +kubebuilder:rbac:groups=kpo.dev,resources=packagedrafts,verbs=create;delete

// Field index keys of PackageVariants: the upstream and the downstream package, as
// "<repository>/<package>".
const (
	variantUpstreamIndex   = "spec.upstream.package"
	variantDownstreamIndex = "spec.downstream.package"
)

// sharedUpstreamResync is how often a variant of a sharded manager looks at its upstream
// package again: it may be another shard's, whose revisions this manager does not watch.
const sharedUpstreamResync = time.Minute

// injectionResync is how often a variant with injectors looks at its injected objects again:
// the manager does not watch every kind it may inject.
const injectionResync = 5 * time.Minute

// SetupWithManager registers the reconciler: changes of the PackageDrafts it owns, of the
// revisions of its upstream and downstream packages, requeue it.
func (r *PackageVariantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &kpov1.PackageVariant{}, variantUpstreamIndex, func(o client.Object) []string {
		pv := o.(*kpov1.PackageVariant)
		return []string{pv.Spec.Upstream.Repo + "/" + pv.Spec.Upstream.Package}
	}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &kpov1.PackageVariant{}, variantDownstreamIndex, func(o client.Object) []string {
		pv := o.(*kpov1.PackageVariant)
		return []string{pv.Spec.Downstream.Repo + "/" + pv.Spec.Downstream.Package}
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&kpov1.PackageVariant{}).
		Owns(&kpov1.PackageDraft{}).
		Watches(&kpov1.PackageRevision{}, handler.EnqueueRequestsFromMapFunc(r.variantsOfRevision)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("packagevariant").
		Complete(r)
}

// variantsOfRevision maps a PackageRevision to the variants it concerns: the one that owns it,
// those that follow its package upstream, and those whose downstream package it is.
func (r *PackageVariantReconciler) variantsOfRevision(ctx context.Context, obj client.Object) []reconcile.Request {
	pr, ok := obj.(*kpov1.PackageRevision)
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	var out []reconcile.Request
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pr.Namespace, Name: name}})
		}
	}
	add(pr.Labels[kpov1.PackageVariantLabel])
	key := pr.Spec.Repository + "/" + pr.Spec.PackageName
	for _, index := range []string{variantUpstreamIndex, variantDownstreamIndex} {
		list := &kpov1.PackageVariantList{}
		if err := r.List(ctx, list, client.InNamespace(pr.Namespace), client.MatchingFields{index: key}); err != nil {
			continue
		}
		for _, pv := range list.Items {
			add(pv.Name)
		}
	}
	return out
}

// variantScope is what the steps of one PackageVariant reconcile share.
type variantScope struct {
	pv *kpov1.PackageVariant
	// upstream is the published upstream revision the spec asks for.
	upstream *kpov1.PackageRevision
	// repo is the downstream Repository.
	repo *kpov1.Repository
	// owned are the revisions of the downstream package the variant owns (revision -1, the
	// package as on the registered branch, is never one).
	owned []kpov1.PackageRevision
	// waiting, when set, says what the variant waits for (Ready=False with this reason).
	waiting, waitingMessage string
	// requeue asks for a later look (injected objects are not watched).
	requeue time.Duration
}

func (s *variantScope) wait(reason, format string, args ...any) {
	if s.waiting == "" {
		s.waiting, s.waitingMessage = reason, fmt.Sprintf(format, args...)
	}
}

// Reconcile runs the variant's steps: validate, upstream, downstream ownership, the next draft,
// customisations, approval.
func (r *PackageVariantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	pv := &kpov1.PackageVariant{}
	if err := r.Get(ctx, req.NamespacedName, pv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if act, result, err := r.inShard(ctx, pv); !act || err != nil {
		return result, err
	}
	if !pv.DeletionTimestamp.IsZero() {
		return resultFor(ctrl.Result{}, r.reconcileDelete(ctx, pv))
	}
	if err := ensureFinalizer(ctx, r.Client, pv, kpov1.PackageVariantFinalizer); err != nil {
		return ctrl.Result{}, err
	}

	s := &variantScope{pv: pv}
	defer func() {
		if err := patchStatus(ctx, r.Client, req.NamespacedName, &kpov1.PackageVariant{}, func(v *kpov1.PackageVariant) {
			setVariantStatus(v, pv.Generation, variantTargets(s.owned), s.waiting, s.waitingMessage, retErr)
		}); err != nil {
			retErr = errors.Join(retErr, err)
		}
		if retErr == nil && s.requeue > 0 {
			result = ctrl.Result{RequeueAfter: s.requeue}
		}
		result, retErr = resultFor(result, retErr)
	}()
	for _, step := range []func(context.Context, *variantScope) error{
		r.reconcileSpec,
		r.reconcileUpstream,
		r.reconcileOwnership,
		r.reconcileNextDraft,
		r.reconcileCustomizations,
		r.reconcileApproval,
	} {
		if err := step(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// inShard tells whether this manager acts on the variant: the manager whose shard serves the
// downstream Repository (where the variant writes), or, when that does not exist, the instance
// that reports on missing Repositories. Any other leaves it alone, writing nothing.
func (r *PackageVariantReconciler) inShard(ctx context.Context, pv *kpov1.PackageVariant) (bool, ctrl.Result, error) {
	_, where, err := r.shard.locate(ctx, r.Client, client.ObjectKey{Namespace: pv.Namespace, Name: pv.Spec.Downstream.Repo})
	if err != nil {
		return false, ctrl.Result{}, err
	}
	if stop, result := leaveAlone(where); stop {
		return false, result, nil
	}
	if where == missing {
		return r.shard.writesForMissing(), ctrl.Result{}, nil
	}
	return true, ctrl.Result{}, nil
}

// reconcileSpec refuses a spec kpo will not carry out (terminal, reason InvalidSpec).
func (r *PackageVariantReconciler) reconcileSpec(_ context.Context, s *variantScope) error {
	if err := validateVariantSpec(&s.pv.Spec); err != nil {
		return terminal(kpov1.InvalidSpecReason, err)
	}
	return nil
}

// reconcileUpstream finds the published upstream revision the spec names (the newest when it
// names none). A missing one is retried after a pause: it may be published later.
func (r *PackageVariantReconciler) reconcileUpstream(ctx context.Context, s *variantScope) error {
	up := s.pv.Spec.Upstream
	var reader client.Reader = r.Client
	if r.shard.sharded() {
		// The upstream Repository may be another shard's, whose revisions are not cached here;
		// their changes do not requeue the variant either (see sharedUpstreamResync).
		reader, s.requeue = r.APIReader, sharedUpstreamResync
	}
	revs, err := packageRevisions(ctx, reader, s.pv.Namespace, up.Repo, up.Package)
	if err != nil {
		return err
	}
	_, s.upstream, err = publishedUpstream(revs, up)
	return err
}

// publishedUpstream returns the published revisions among revs (a package's revisions) and the
// one up asks for: revision N of "vN" or "N", the newest when it names none. None found is an
// UpstreamNotFound step error, retried after a pause: it may be published later.
func publishedUpstream(revs []kpov1.PackageRevision, up kpov1.UpstreamPackage) ([]kpov1.PackageRevision, *kpov1.PackageRevision, error) {
	want := upstreamRevisionNumber(up.Revision)
	var published []kpov1.PackageRevision
	for _, pr := range revs {
		if pr.Status.Lifecycle == kpov1.LifecyclePublished && pr.Status.Revision >= 1 {
			published = append(published, pr)
		}
	}
	var chosen *kpov1.PackageRevision
	for i := range published {
		pr := &published[i]
		if (want != 0 && pr.Status.Revision == want) || (want == 0 && (chosen == nil || pr.Status.Revision > chosen.Status.Revision)) {
			chosen = pr
		}
	}
	if chosen == nil {
		what := "any published revision"
		if want != 0 {
			what = fmt.Sprintf("published revision %d", want)
		}
		return published, nil, &stepError{Reason: kpov1.UpstreamNotFoundReason, RetryAfter: maxRetryAfter,
			Err: fmt.Errorf("upstream package %q of repository %q has no %s", up.Package, up.Repo, what)}
	}
	return published, chosen, nil
}

// upstreamRevisionNumber is N of an upstream revision "vN" or "N"; 0 for none.
func upstreamRevisionNumber(rev string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(rev, "v"))
	return n
}

// packageRevisions lists the revisions of one package of one repository, revision -1 (the
// package as on the registered branch) excluded.
func (r *PackageVariantReconciler) packageRevisions(ctx context.Context, ns, repo, pkg string) ([]kpov1.PackageRevision, error) {
	return packageRevisions(ctx, r.Client, ns, repo, pkg)
}

func packageRevisions(ctx context.Context, c client.Reader, ns, repo, pkg string) ([]kpov1.PackageRevision, error) {
	list := &kpov1.PackageRevisionList{}
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{
		kpov1.RepositoryLabel: repo, kpov1.PackageLabel: discovery.PackageLabelValue(pkg),
	}); err != nil {
		return nil, err
	}
	var out []kpov1.PackageRevision
	for _, pr := range list.Items {
		if pr.Spec.Repository == repo && pr.Spec.PackageName == pkg && pr.Status.Revision >= 0 {
			out = append(out, pr)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// reconcileOwnership finds the downstream revisions the variant owns (label
// kpo.dev/package-variant, which only the manager sets). It labels the revisions its own
// PackageDrafts produced (a crash may have come between), and, under adoptExisting, every
// revision of a downstream package no variant owns. A package owned by another variant, or
// one it may not adopt, is terminal.
func (r *PackageVariantReconciler) reconcileOwnership(ctx context.Context, s *variantScope) error {
	pv := s.pv
	repo := &kpov1.Repository{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: pv.Namespace, Name: pv.Spec.Downstream.Repo}, repo); err != nil {
		if apierrors.IsNotFound(err) {
			return &stepError{Reason: kpov1.RepositoryNotReadyReason, RetryAfter: maxRetryAfter,
				Err: fmt.Errorf("downstream repository %q does not exist: register it first", pv.Spec.Downstream.Repo)}
		}
		return err
	}
	s.repo = repo
	drafts, err := r.ownDrafts(ctx, pv)
	if err != nil {
		return err
	}
	revs, err := r.packageRevisions(ctx, pv.Namespace, pv.Spec.Downstream.Repo, pv.Spec.Downstream.Package)
	if err != nil {
		return err
	}
	produced := map[string]string{} // revision name → PackageDraft name
	for _, d := range drafts {
		if d.Status.PackageRevision != "" {
			produced[d.Status.PackageRevision] = d.Name
		}
	}
	var unowned []*kpov1.PackageRevision
	for i := range revs {
		pr := &revs[i]
		owner := pr.Labels[kpov1.PackageVariantLabel]
		switch {
		case owner == pv.Name:
		case owner != "":
			return terminal(kpov1.DownstreamOwnedElsewhereReason, fmt.Errorf(
				"downstream package %q of repository %q is owned by PackageVariant %s (revision %s)", pv.Spec.Downstream.Package, pv.Spec.Downstream.Repo, owner, pr.Name))
		case produced[pr.Name] != "" && pr.Labels[kpov1.DraftLabel] == produced[pr.Name]:
			// Produced by this variant's PackageDraft: the kpo.dev/draft label is the
			// manager's, set after Git confirmed the draft's Kpo-Draft trailer.
			if err := r.claim(ctx, pv, pr); err != nil {
				return err
			}
		default:
			unowned = append(unowned, pr)
		}
	}
	for i := range revs {
		if revs[i].Labels[kpov1.PackageVariantLabel] == pv.Name {
			s.owned = append(s.owned, revs[i])
		}
	}
	if err := r.releaseDrafts(ctx, drafts, s.owned); err != nil {
		return err
	}
	if err := r.waitForDraftsUnderWay(ctx, s, drafts, revs, s.owned); err != nil || s.waiting != "" {
		// The revision of a PackageDraft under way is not unowned: it is not claimed yet.
		return err
	}
	switch {
	case len(unowned) == 0:
		return nil
	case len(s.owned) > 0:
		return nil // revisions started by hand next to the variant's: not its business (as in Porch)
	case pv.Spec.AdoptionPolicy != kpov1.AdoptionPolicyAdoptExisting:
		return terminal(kpov1.DownstreamNotOwnedReason, fmt.Errorf(
			"downstream package %q of repository %q exists and no PackageVariant owns it: set spec.adoptionPolicy: adoptExisting to take it over, or choose another downstream package",
			pv.Spec.Downstream.Package, pv.Spec.Downstream.Repo))
	}
	for _, pr := range unowned {
		if err := r.claim(ctx, pv, pr); err != nil {
			return err
		}
		s.owned = append(s.owned, *pr)
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(pv, corev1.EventTypeNormal, "Adopted", "adopted downstream package %s (%d revisions)", pv.Spec.Downstream.Package, len(unowned))
	}
	return nil
}

// waitForDraftsUnderWay makes the variant wait (WaitingForDraft) while one of its PackageDrafts
// has not produced its revision yet (pending, or failing in a way retried: only a Stalled one is
// done with), produced one it cannot claim yet (Git has not
// confirmed it: no kpo.dev/draft label), or produced one that the cache does not list yet (read
// again from the API server). Such a PackageDraft may carry an older request than the
// next one (the upstream or the customisations moved meanwhile): another PackageDraft now
// would start a second draft, or race it for the same workspace and be refused
// (DuplicateWorkspace) for good. revs are the downstream package's revisions as listed (nil:
// none known); owned those the variant owns.
func (r *PackageVariantReconciler) waitForDraftsUnderWay(ctx context.Context, s *variantScope, drafts []kpov1.PackageDraft,
	revs, owned []kpov1.PackageRevision) error {
	produced := map[string]string{} // revision name → PackageDraft name
	for _, d := range drafts {
		if d.Status.PackageRevision != "" {
			produced[d.Status.PackageRevision] = d.Name
		} else if !draftStalled(&d) {
			s.wait(kpov1.WaitingForDraftReason, "waiting for PackageDraft %s", d.Name)
			return nil
		}
	}
	reader := r.apiReader()
	for _, name := range slices.Sorted(maps.Keys(produced)) {
		named := func(pr kpov1.PackageRevision) bool { return pr.Name == name }
		switch {
		case slices.ContainsFunc(owned, named):
			continue
		case slices.ContainsFunc(revs, named):
			s.wait(kpov1.WaitingForDraftReason, "waiting for %s, produced by PackageDraft %s, to be confirmed by Git", name, produced[name])
			return nil
		}
		err := reader.Get(ctx, client.ObjectKey{Namespace: s.pv.Namespace, Name: name}, &kpov1.PackageRevision{})
		switch {
		case apierrors.IsNotFound(err):
			// Deleted since: the PackageDraft's request is done with.
		case err != nil:
			return fmt.Errorf("reading %s, produced by PackageDraft %s: %w", name, produced[name], err)
		default:
			s.wait(kpov1.WaitingForDraftReason, "waiting for %s, produced by PackageDraft %s, to be listed", name, produced[name])
			return nil
		}
	}
	return nil
}

// apiReader reads from the API server, not the cache.
func (r *PackageVariantReconciler) apiReader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// releaseDrafts deletes the variant's PackageDrafts whose revision it owns and is published:
// deleting a PackageDraft then only removes the request, and no later draft can ask for the
// same thing (each is based on the newest published revision), so a name is never reused.
func (r *PackageVariantReconciler) releaseDrafts(ctx context.Context, drafts []kpov1.PackageDraft, owned []kpov1.PackageRevision) error {
	for i := range drafts {
		d := &drafts[i]
		done := slices.ContainsFunc(owned, func(pr kpov1.PackageRevision) bool {
			return pr.Name == d.Status.PackageRevision && pr.Status.Lifecycle == kpov1.LifecyclePublished && pr.Status.Revision > 0
		})
		if done {
			if err := r.Delete(ctx, d); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting PackageDraft %s, whose revision is published: %w", d.Name, err)
			}
		}
	}
	return nil
}

// claim labels a revision as the variant's and copies the variant's labels and annotations
// onto it.
func (r *PackageVariantReconciler) claim(ctx context.Context, pv *kpov1.PackageVariant, pr *kpov1.PackageRevision) error {
	patch := client.MergeFrom(pr.DeepCopy())
	pr.Labels = mergeMaps(pr.Labels, mergeMaps(pv.Spec.Labels, map[string]string{kpov1.PackageVariantLabel: pv.Name}))
	if len(pv.Spec.Annotations) > 0 {
		pr.Annotations = mergeMaps(pr.Annotations, pv.Spec.Annotations)
	}
	if err := r.Patch(ctx, pr, patch); err != nil {
		return fmt.Errorf("labelling %s as PackageVariant %s's: %w", pr.Name, pv.Name, err)
	}
	return nil
}

// ownDrafts lists the PackageDrafts this variant created: controlled by it, and named after
// what they ask for (see variantDraftName), so no PackageDraft someone else made, even with
// the same labels and owner, passes for the variant's.
func (r *PackageVariantReconciler) ownDrafts(ctx context.Context, pv *kpov1.PackageVariant) ([]kpov1.PackageDraft, error) {
	return ownDrafts(ctx, r.Client, pv)
}

func ownDrafts(ctx context.Context, c client.Reader, pv *kpov1.PackageVariant) ([]kpov1.PackageDraft, error) {
	list := &kpov1.PackageDraftList{}
	if err := c.List(ctx, list, client.InNamespace(pv.Namespace), client.MatchingLabels{kpov1.PackageVariantLabel: pv.Name}); err != nil {
		return nil, err
	}
	var out []kpov1.PackageDraft
	for _, d := range list.Items {
		if metav1.IsControlledBy(&d, pv) && d.Spec.Lifecycle == "" && d.Spec.Repository == pv.Spec.Downstream.Repo &&
			d.Spec.PackageName == pv.Spec.Downstream.Package && d.Name == variantDraftName(pv, d.Spec.Source) {
			out = append(out, d)
		}
	}
	return out, nil
}

// variantDraftName is the name of the PackageDraft a variant creates for source: the same
// source always gives the same name, so a crash between deciding and recording can never
// create a second draft (the API server refuses the second create).
func variantDraftName(pv *kpov1.PackageVariant, src kpov1.PackageDraftSource) string {
	kind, key := "", ""
	switch {
	case src.Clone != nil && src.Clone.UpstreamRef != nil:
		kind, key = "clone", src.Clone.UpstreamRef.Name
	case src.Upgrade != nil:
		kind, key = "upgrade", src.Upgrade.OldUpstream.Name+"|"+src.Upgrade.NewUpstream.Name+"|"+src.Upgrade.Current.Name+"|"+string(src.Upgrade.Strategy)
		if src.Upgrade.AllowConflicts {
			// Another request than the one refused without it: a PackageDraft of its own.
			key += "|allowConflicts"
		}
	case src.Copy != nil:
		kind, key = "copy", src.Copy.SourceRef.Name
	default:
		return ""
	}
	sum := sha256.Sum256([]byte(string(pv.UID) + "|" + kind + "|" + key))
	prefix := pv.Name
	if len(prefix) > 200 {
		prefix = prefix[:200]
	}
	return fmt.Sprintf("%s-%s-%s", prefix, kind, hex.EncodeToString(sum[:])[:10])
}

var variantWorkspace = regexp.MustCompile(`^packagevariant-([0-9]+)$`)

// nextWorkspace is packagevariant-<N>, N one more than any such workspace of the package.
func nextWorkspace(revs []kpov1.PackageRevision) string {
	n := 0
	for _, pr := range revs {
		if m := variantWorkspace.FindStringSubmatch(pr.Spec.WorkspaceName); m != nil {
			if v, _ := strconv.Atoi(m[1]); v > n {
				n = v
			}
		}
	}
	return fmt.Sprintf("packagevariant-%d", n+1)
}

// reconcileNextDraft starts the draft the downstream needs, through a PackageDraft the variant
// owns: a clone of the upstream when the variant owns no revision; an upgrade of the newest
// published revision when that is based on another upstream revision; a copy of it when only
// the customisations would change it. With a draft or proposal under way, it waits for it.
func (r *PackageVariantReconciler) reconcileNextDraft(ctx context.Context, s *variantScope) error {
	if s.waiting != "" {
		return nil
	}
	var latest *kpov1.PackageRevision
	for i := range s.owned {
		pr := &s.owned[i]
		switch pr.Status.Lifecycle {
		case kpov1.LifecycleDraft, kpov1.LifecycleProposed:
			if up := pr.Status.UpstreamRevision; up != "" && up != s.upstream.Name {
				if s.pv.Spec.AllowConflicts && pr.Status.Lifecycle == kpov1.LifecycleDraft {
					return r.rebaseDraft(ctx, s, pr)
				}
				if approvalPublishes(s.pv, s.owned) {
					// The upstream moved while the draft was under way: the approval step
					// publishes it, and the variant then upgrades the published revision.
					return nil
				}
				return terminal(kpov1.DraftBehindUpstreamReason, fmt.Errorf(
					"%s is based on %s, not %s: publish or delete it, and the PackageVariant upgrades the package", pr.Name, up, s.upstream.Name))
			}
			return nil // customised by the next step
		case kpov1.LifecyclePublished:
			if latest == nil || pr.Status.Revision > latest.Status.Revision {
				latest = pr
			}
		}
	}
	var src kpov1.PackageDraftSource
	switch {
	case latest == nil && len(s.owned) > 0:
		return nil // only revisions proposed for deletion: nothing to base a draft on
	case latest == nil:
		src.Clone = &kpov1.CloneSource{UpstreamRef: &kpov1.LocalReference{Name: s.upstream.Name}}
	case latest.Status.UpstreamRevision == s.upstream.Name:
		changed, err := r.customizationChanges(ctx, s, latest)
		if err != nil || !changed {
			return err
		}
		src.Copy = &kpov1.CopySource{SourceRef: kpov1.LocalReference{Name: latest.Name}}
	case latest.Status.UpstreamRevision == "" && latest.Status.UpstreamLock != nil && latest.Status.UpstreamLock.Git != nil &&
		latest.Status.ObservedGeneration == 0:
		s.wait(kpov1.WaitingForDraftReason, "waiting for the upstream of %s to be known", latest.Name)
		return nil
	case latest.Status.UpstreamRevision == "":
		return terminal(kpov1.SourceNotFoundReason, fmt.Errorf(
			"%s is not based on a published revision of a registered repository, so it cannot be upgraded to %s: clone the upstream into a new downstream package instead",
			latest.Name, s.upstream.Name))
	default:
		src.Upgrade = &kpov1.UpgradeSource{OldUpstream: kpov1.LocalReference{Name: latest.Status.UpstreamRevision},
			NewUpstream: kpov1.LocalReference{Name: s.upstream.Name}, Current: kpov1.LocalReference{Name: latest.Name},
			Strategy: kpov1.UpdateStrategy("resource-merge"), AllowConflicts: s.pv.Spec.AllowConflicts}
	}
	return r.ensureDraft(ctx, s, src)
}

// rebaseDraft asks for an owned Draft behind the upstream to be rebased onto it (annotation
// kpo.dev/rebase-onto, carried out by the PackageRevision reconciler) and waits for it; a
// rebase the manager refuses (unresolved conflicts, most likely) stalls the variant with its
// reason.
func (r *PackageVariantReconciler) rebaseDraft(ctx context.Context, s *variantScope, pr *kpov1.PackageRevision) error {
	if pr.Annotations[kpov1.RebaseOntoAnnotation] != s.upstream.Name {
		patch := client.MergeFromWithOptions(pr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		pr.Annotations = mergeMaps(pr.Annotations, map[string]string{kpov1.RebaseOntoAnnotation: s.upstream.Name})
		if err := r.Patch(ctx, pr, patch); err != nil {
			return fmt.Errorf("asking for %s to be rebased onto %s: %w", pr.Name, s.upstream.Name, err)
		}
	} else if c := readyCondition(pr.Status.Conditions); c != nil && c.Status == metav1.ConditionFalse && slices.Contains(rebaseRefusals, c.Reason) {
		return terminal(c.Reason, fmt.Errorf("rebasing %s onto %s: %s", pr.Name, s.upstream.Name, c.Message))
	}
	s.wait(kpov1.WaitingForDraftReason, "waiting for %s to be rebased onto %s", pr.Name, s.upstream.Name)
	return nil
}

// rebaseRefusals are the reasons a rebase is refused with; they stall a variant waiting for it.
var rebaseRefusals = []string{kpov1.InvalidRebaseReason, kpov1.UnresolvedConflictsReason, kpov1.MergeConflictReason,
	kpov1.LocalChangesReason, kpov1.SourceNotFoundReason, kpov1.SourceNotPublishedReason, kpov1.InvalidContentReason}

// ensureDraft creates the PackageDraft for src unless it exists, and reports on it.
func (r *PackageVariantReconciler) ensureDraft(ctx context.Context, s *variantScope, src kpov1.PackageDraftSource) error {
	pv := s.pv
	name := variantDraftName(pv, src)
	d := &kpov1.PackageDraft{}
	err := r.Get(ctx, client.ObjectKey{Namespace: pv.Namespace, Name: name}, d)
	if apierrors.IsNotFound(err) {
		// The cache may not show a PackageDraft created by the previous reconcile yet: the
		// API server does. One under way holds the new one (see waitForDraftsUnderWay).
		live, err := ownDrafts(ctx, r.apiReader(), pv)
		if err != nil {
			return err
		}
		if err := r.waitForDraftsUnderWay(ctx, s, live, nil, s.owned); err != nil || s.waiting != "" {
			return err
		}
		revs, err := r.packageRevisions(ctx, pv.Namespace, pv.Spec.Downstream.Repo, pv.Spec.Downstream.Package)
		if err != nil {
			return err
		}
		d = &kpov1.PackageDraft{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pv.Namespace, Labels: map[string]string{kpov1.PackageVariantLabel: pv.Name}},
			Spec: kpov1.PackageDraftSpec{Repository: pv.Spec.Downstream.Repo, PackageName: pv.Spec.Downstream.Package,
				WorkspaceName: nextWorkspace(revs), Source: src},
		}
		if err := controllerutil.SetControllerReference(pv, d, r.Scheme()); err != nil {
			return err
		}
		if err := r.Create(ctx, d); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating PackageDraft %s: %w", name, err)
		}
		if r.Recorder != nil {
			r.Recorder.Eventf(pv, corev1.EventTypeNormal, kpov1.CreatedReason, "created PackageDraft %s", name)
		}
		s.wait(kpov1.WaitingForDraftReason, "waiting for PackageDraft %s", name)
		return nil
	}
	if err != nil {
		return err
	}
	if !metav1.IsControlledBy(d, pv) {
		return terminal(kpov1.DuplicateWorkspaceReason, fmt.Errorf("PackageDraft %s exists and is not this PackageVariant's: delete it", name))
	}
	c := readyCondition(d.Status.Conditions)
	switch {
	case draftStalled(d):
		stalled := meta.FindStatusCondition(d.Status.Conditions, kpov1.StalledCondition)
		return terminal(stalled.Reason, fmt.Errorf("PackageDraft %s: %s", name, stalled.Message))
	case c != nil && c.Status == metav1.ConditionFalse && c.Reason != kpov1.ProgressingReason:
		s.wait(kpov1.WaitingForDraftReason, "waiting for PackageDraft %s, which retries: %s", name, c.Message)
	default:
		s.wait(kpov1.WaitingForDraftReason, "waiting for PackageDraft %s", name)
	}
	return nil
}

// draftStalled reports whether a PackageDraft is done with: refused until the user changes
// something (its Stalled condition; see setDraftReady). A failing one without it retries.
func draftStalled(d *kpov1.PackageDraft) bool {
	return meta.IsStatusConditionTrue(d.Status.Conditions, kpov1.StalledCondition)
}

// customizationChanges reports whether the variant's customisations would change a published
// revision, read from Git (published content is in a ConfigMap only on request). A revision
// found up to date for a generation of a variant without injectors is remembered, so the
// reconciles that revision events of the package cause read Git once.
func (r *PackageVariantReconciler) customizationChanges(ctx context.Context, s *variantScope, pr *kpov1.PackageRevision) (bool, error) {
	key := fmt.Sprintf("%d/%s/%s", s.pv.Generation, pr.Name, pr.Status.Commit)
	if v, ok := r.upToDate.Load(s.pv.UID); ok && v == key && hasMetadata(pr, s.pv) {
		return false, nil
	}
	files, err := r.git.publishedFiles(ctx, s.repo, pr)
	if err != nil {
		return false, err
	}
	c, err := customize(files, s.pv, r.lookup(ctx, s.pv.Namespace))
	if err != nil {
		return false, terminal(kpov1.InjectionFailedReason, err)
	}
	if len(s.pv.Spec.Injectors) > 0 && (s.requeue == 0 || s.requeue > injectionResync) {
		s.requeue = injectionResync
	}
	changed := !reflect.DeepEqual(c.Files, files) || !hasGates(pr, c.RequiredGates) || !hasMetadata(pr, s.pv)
	if !changed && len(s.pv.Spec.Injectors) == 0 {
		r.upToDate.Store(s.pv.UID, key)
	}
	return changed, nil
}

func hasGates(pr *kpov1.PackageRevision, gates []string) bool {
	for _, g := range gates {
		if !slices.ContainsFunc(pr.Spec.ReadinessGates, func(r kpov1.ReadinessGate) bool { return r.ConditionType == g }) {
			return false
		}
	}
	return true
}

func hasMetadata(pr *kpov1.PackageRevision, pv *kpov1.PackageVariant) bool {
	for k, v := range pv.Spec.Labels {
		if pr.Labels[k] != v {
			return false
		}
	}
	for k, v := range pv.Spec.Annotations {
		if pr.Annotations[k] != v {
			return false
		}
	}
	return true
}

// lookup reads the in-cluster objects to inject, in the variant's namespace only, with the
// manager's own permissions (ConfigMaps and kpo's kinds out of the box; other kinds need a
// Role granting the manager get). Secrets are never injected.
func (r *PackageVariantReconciler) lookup(ctx context.Context, ns string) injectionLookup {
	return func(gvk schema.GroupVersionKind, name string) (*unstructured.Unstructured, error) {
		if gvk.Group == "" && gvk.Kind == "Secret" {
			return nil, errors.New("a Secret is never injected")
		}
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(gvk)
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
		switch {
		case err == nil:
			return obj, nil
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("%s %s not found in namespace %s", gvk.Kind, name, ns)
		case apierrors.IsForbidden(err):
			return nil, fmt.Errorf("the kpo manager may not read %s: grant its service account get on them in namespace %s", gvk.GroupKind(), ns)
		case meta.IsNoMatchError(err):
			return nil, fmt.Errorf("kind %s is not served by the API server", gvk)
		}
		return nil, fmt.Errorf("reading %s %s: %w", gvk.Kind, name, err)
	}
}

// reconcileCustomizations applies the variant's customisations to each draft it owns: labels,
// annotations and readiness gates on the PackageRevision, package context, pipeline and
// injections in its content ConfigMap (an edit the PackageRevision reconciler renders and
// commits). Applying them to content that has them changes nothing.
func (r *PackageVariantReconciler) reconcileCustomizations(ctx context.Context, s *variantScope) error {
	if s.waiting != "" {
		return nil
	}
	if len(s.pv.Spec.Injectors) > 0 && (s.requeue == 0 || s.requeue > injectionResync) {
		s.requeue = injectionResync
	}
	for i := range s.owned {
		pr := &s.owned[i]
		if pr.Status.Lifecycle != kpov1.LifecycleDraft || pr.Spec.Lifecycle != kpov1.LifecycleDraft {
			continue
		}
		if pr.Status.ResourcesRef == nil || pr.Status.Commit == "" {
			s.wait(kpov1.WaitingForDraftReason, "waiting for %s to be read from Git", pr.Name)
			continue
		}
		cm := &corev1.ConfigMap{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: pr.Namespace, Name: pr.Status.ResourcesRef.Name}, cm); err != nil {
			return fmt.Errorf("reading the content of %s: %w", pr.Name, err)
		}
		files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
		if err != nil {
			return terminal(kpov1.InvalidContentReason, fmt.Errorf("the content of %s: %w", pr.Name, err))
		}
		c, err := customize(files, s.pv, r.lookup(ctx, s.pv.Namespace))
		if err != nil {
			return terminal(kpov1.InjectionFailedReason, fmt.Errorf("customising %s: %w", pr.Name, err))
		}
		if err := r.setRevisionMetadata(ctx, s.pv, pr, c.RequiredGates); err != nil {
			return err
		}
		if reflect.DeepEqual(c.Files, files) {
			// The manager records the digest of what it committed (and wrote back, rendered):
			// until it equals the content, an edit is not committed yet.
			if cm.Annotations[kpov1.ContentDigestAnnotation] != content.Digest(files) {
				s.wait(kpov1.WaitingForDraftReason, "waiting for the content of %s to be committed", pr.Name)
			} else if c := readyCondition(pr.Status.Conditions); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != pr.Generation {
				s.wait(kpov1.WaitingForDraftReason, "waiting for %s to be Ready", pr.Name)
			}
			continue
		}
		data, binary, err := content.ToConfigMap(c.Files)
		if err != nil {
			return terminal(contentReason(err), fmt.Errorf("customising %s: %w", pr.Name, err))
		}
		cm.Data, cm.BinaryData = data, binary
		if err := r.Update(ctx, cm); err != nil {
			if apierrors.IsConflict(err) {
				return &stepError{Reason: kpov1.ProgressingReason, RetryAfter: time.Second, Err: fmt.Errorf("the content of %s changed meanwhile: trying again", pr.Name)}
			}
			return fmt.Errorf("writing the customisations of %s: %w", pr.Name, err)
		}
		s.wait(kpov1.WaitingForDraftReason, "waiting for the customisations of %s to be committed", pr.Name)
	}
	return nil
}

// setRevisionMetadata sets the variant's labels, annotations and required injection gates on
// a draft it owns (never removing what others set).
func (r *PackageVariantReconciler) setRevisionMetadata(ctx context.Context, pv *kpov1.PackageVariant, pr *kpov1.PackageRevision, gates []string) error {
	if hasGates(pr, gates) && hasMetadata(pr, pv) {
		return nil
	}
	patch := client.MergeFrom(pr.DeepCopy())
	pr.Labels = mergeMaps(pr.Labels, pv.Spec.Labels)
	if len(pv.Spec.Annotations) > 0 {
		pr.Annotations = mergeMaps(pr.Annotations, pv.Spec.Annotations)
	}
	for _, g := range gates {
		if !slices.ContainsFunc(pr.Spec.ReadinessGates, func(r kpov1.ReadinessGate) bool { return r.ConditionType == g }) {
			pr.Spec.ReadinessGates = append(pr.Spec.ReadinessGates, kpov1.ReadinessGate{ConditionType: g})
		}
	}
	if err := r.Patch(ctx, pr, patch); err != nil {
		return fmt.Errorf("setting the labels, annotations and readiness gates of %s: %w", pr.Name, err)
	}
	return nil
}

// reconcileApproval publishes the variant's draft when its approval policy says so: "initial"
// only while the downstream package has no published revision, "always" every time; in both
// cases only a Ready draft whose readiness gates are all True. It proposes the draft, then
// approves the proposal, recording as publisher the identity that set the policy (stamped by
// the admission policy) and binding the approval to the commit it checked.
func (r *PackageVariantReconciler) reconcileApproval(ctx context.Context, s *variantScope) error {
	pv := s.pv
	policy, approver := pv.Annotations[kpov1.ApprovalPolicyAnnotation], pv.Annotations[kpov1.ApprovedByAnnotation]
	if s.waiting != "" || approver == "" || (policy != kpov1.ApprovalPolicyInitial && policy != kpov1.ApprovalPolicyAlways) {
		return nil
	}
	for i := range s.owned {
		pr := &s.owned[i]
		if policy == kpov1.ApprovalPolicyInitial && pr.Status.Revision > 0 {
			return nil // the first revision is published: initial is done
		}
	}
	for i := range s.owned {
		pr := &s.owned[i]
		if pr.Status.Lifecycle != pr.Spec.Lifecycle || (pr.Status.Lifecycle != kpov1.LifecycleDraft && pr.Status.Lifecycle != kpov1.LifecycleProposed) {
			continue
		}
		if missing := missingGates(pr); len(missing) > 0 {
			s.wait("ReadinessGatesPending", "%s waits for readiness gates %s before the %s approval policy publishes it", pr.Name, strings.Join(missing, ", "), policy)
			continue
		}
		if c := readyCondition(pr.Status.Conditions); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != pr.Generation {
			s.wait(kpov1.WaitingForDraftReason, "waiting for %s to be Ready", pr.Name)
			continue
		}
		patch := client.MergeFromWithOptions(pr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if pr.Status.Lifecycle == kpov1.LifecycleDraft {
			pr.Spec.Lifecycle = kpov1.LifecycleProposed
		} else {
			pr.Spec.Lifecycle = kpov1.LifecyclePublished
			pr.Annotations = mergeMaps(pr.Annotations, map[string]string{
				kpov1.ApprovedByAnnotation: approver, kpov1.ApprovedCommitAnnotation: pr.Status.Commit,
			})
		}
		if err := r.Patch(ctx, pr, patch); err != nil {
			if apierrors.IsConflict(err) {
				return &stepError{Reason: kpov1.ProgressingReason, RetryAfter: time.Second, Err: fmt.Errorf("%s changed meanwhile: trying again", pr.Name)}
			}
			return terminal(kpov1.TransitionFailedReason, fmt.Errorf("moving %s to %s under approval policy %s: %w", pr.Name, pr.Spec.Lifecycle, policy, err))
		}
		s.wait(kpov1.WaitingForDraftReason, "%s is moving to %s (approval policy %s)", pr.Name, pr.Spec.Lifecycle, policy)
	}
	return nil
}

// approvalPublishes tells whether the variant's approval policy publishes its drafts now:
// "always", or "initial" while the downstream package has no published revision (as
// reconcileApproval decides).
func approvalPublishes(pv *kpov1.PackageVariant, owned []kpov1.PackageRevision) bool {
	policy := pv.Annotations[kpov1.ApprovalPolicyAnnotation]
	switch {
	case pv.Annotations[kpov1.ApprovedByAnnotation] == "":
		return false
	case policy == kpov1.ApprovalPolicyAlways:
		return true
	case policy == kpov1.ApprovalPolicyInitial:
		return !slices.ContainsFunc(owned, func(pr kpov1.PackageRevision) bool { return pr.Status.Revision > 0 })
	}
	return false
}

// missingGates are the readiness gates of pr whose condition is not True.
func missingGates(pr *kpov1.PackageRevision) []string {
	var out []string
	for _, g := range pr.Spec.ReadinessGates {
		if !meta.IsStatusConditionTrue(pr.Status.Conditions, g.ConditionType) {
			out = append(out, g.ConditionType)
		}
	}
	return out
}

// approvalWaitRetry bounds the wait of a variant being deleted for the approval of its proposal.
const approvalWaitRetry = 30 * time.Second

// reconcileDelete applies the deletion policy to the variant's revisions, then lets it go.
// delete: drafts and proposals are deleted (their branches go with them), published revisions
// are proposed for deletion (an approver deletes them, as Porch does); a proposal being
// approved is waited for, then proposed for deletion (deleting it could race its tag), unless
// its approval was refused for good. orphan:
// the revisions stay, no longer owned, and the variant's PackageDrafts stay too (deleting one
// would abandon its draft). Revisions and PackageDrafts are read from the API server, not the
// cache: one the cache does not show yet would be left behind for good once the variant is gone.
func (r *PackageVariantReconciler) reconcileDelete(ctx context.Context, pv *kpov1.PackageVariant) error {
	if !controllerutil.ContainsFinalizer(pv, kpov1.PackageVariantFinalizer) {
		return nil
	}
	reader := r.apiReader()
	revs, err := packageRevisions(ctx, reader, pv.Namespace, pv.Spec.Downstream.Repo, pv.Spec.Downstream.Package)
	if err != nil {
		return err
	}
	orphan := pv.Spec.DeletionPolicy == kpov1.DeletionPolicyOrphan
	if orphan {
		drafts, err := ownDrafts(ctx, reader, pv)
		if err != nil {
			return err
		}
		for i := range drafts {
			d := &drafts[i]
			patch := client.MergeFrom(d.DeepCopy())
			d.OwnerReferences = slices.DeleteFunc(d.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == pv.UID })
			delete(d.Labels, kpov1.PackageVariantLabel)
			if err := r.Patch(ctx, d, patch); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("orphaning PackageDraft %s: %w", d.Name, err)
			}
		}
	}
	for i := range revs {
		pr := &revs[i]
		if pr.Labels[kpov1.PackageVariantLabel] != pv.Name {
			continue
		}
		var err error
		switch {
		case orphan:
			patch := client.MergeFrom(pr.DeepCopy())
			delete(pr.Labels, kpov1.PackageVariantLabel)
			err = r.Patch(ctx, pr, patch)
		case pr.Status.Lifecycle == kpov1.LifecycleProposed && pr.Spec.Lifecycle == kpov1.LifecyclePublished && refusedTransition(pr) == nil:
			// The revision's own changes wake the variant (it is watched): the retry only
			// bounds the wait, which may be long (a readiness gate an outside check sets).
			return &stepError{Reason: kpov1.ProgressingReason, RetryAfter: approvalWaitRetry,
				Err: fmt.Errorf("waiting for the approval of %s before proposing its deletion", pr.Name)}
		case pr.Status.Lifecycle == kpov1.LifecycleDraft || pr.Status.Lifecycle == kpov1.LifecycleProposed:
			err = r.Delete(ctx, pr)
		case pr.Status.Lifecycle == kpov1.LifecyclePublished && pr.Spec.Lifecycle == kpov1.LifecyclePublished:
			patch := client.MergeFromWithOptions(pr.DeepCopy(), client.MergeFromWithOptimisticLock{})
			pr.Spec.Lifecycle = kpov1.LifecycleDeletionProposed
			err = r.Patch(ctx, pr, patch)
		}
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("applying deletion policy %s to %s: %w", pv.Spec.DeletionPolicy, pr.Name, err)
		}
	}
	r.upToDate.Delete(pv.UID)
	return releaseFinalizer(ctx, r.Client, pv, kpov1.PackageVariantFinalizer)
}

// variantTargets are the revisions a variant works on: its drafts and proposals, or the newest
// published revision when it has none.
func variantTargets(owned []kpov1.PackageRevision) []kpov1.DownstreamTarget {
	var out []kpov1.DownstreamTarget
	var latest *kpov1.PackageRevision
	target := func(pr *kpov1.PackageRevision) kpov1.DownstreamTarget {
		t := kpov1.DownstreamTarget{Name: pr.Name}
		if c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.RenderedCondition); c != nil {
			t.RenderStatus = c.Reason
		}
		return t
	}
	for i := range owned {
		pr := &owned[i]
		switch pr.Status.Lifecycle {
		case kpov1.LifecycleDraft, kpov1.LifecycleProposed:
			out = append(out, target(pr))
		case kpov1.LifecyclePublished:
			if latest == nil || pr.Status.Revision > latest.Status.Revision {
				latest = pr
			}
		}
	}
	if len(out) == 0 && latest != nil {
		out = append(out, target(latest))
	}
	return out
}
