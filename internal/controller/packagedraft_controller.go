package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	"kpo.dev/kpo/internal/conflicts"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
)

// PackageDraftReconciler turns a PackageDraft into a draft revision: it builds the content
// (init, clone, copy), commits it to drafts/<package>/<workspace>, and creates the
// PackageRevision; when the PackageDraft declares a lifecycle, it drives the revision there.
type PackageDraftReconciler struct {
	client.Client
	git      *gitAccess
	shard    *shard
	render   Renderer
	Recorder record.EventRecorder
}

// +kubebuilder:rbac:groups=kpo.dev,resources=packagedrafts,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kpo.dev,resources=packagedrafts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kpo.dev,resources=packagedrafts/finalizers,verbs=update

// SetupWithManager registers the reconciler; changes of a produced PackageRevision (found by
// its kpo.dev/draft label) requeue its PackageDraft, and a Repository that enters the cache
// (created, or moved into this manager's shard) requeues the PackageDrafts that name it.
func (r *PackageDraftReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kpov1.PackageDraft{}, draftRepositoryIndex, func(obj client.Object) []string {
		return []string{obj.(*kpov1.PackageDraft).Spec.Repository}
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&kpov1.PackageDraft{}).
		Watches(&kpov1.PackageRevision{}, handler.EnqueueRequestsFromMapFunc(draftOfRevision)).
		Watches(&kpov1.Repository{}, handler.EnqueueRequestsFromMapFunc(r.draftsOfRepository), builder.WithPredicates(predicate.Funcs{
			UpdateFunc:  func(event.UpdateEvent) bool { return false },
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("packagedraft").
		Complete(r)
}

func draftOfRevision(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[kpov1.DraftLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// draftRepositoryIndex indexes PackageDrafts by the Repository they name.
const draftRepositoryIndex = "spec.repository"

// draftsOfRepository maps a Repository to the PackageDrafts that name it.
func (r *PackageDraftReconciler) draftsOfRepository(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &kpov1.PackageDraftList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{draftRepositoryIndex: obj.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// Reconcile creates the draft revision once, then follows the declared lifecycle.
func (r *PackageDraftReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	draft := &kpov1.PackageDraft{}
	if err := r.Get(ctx, req.NamespacedName, draft); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if act, result, err := r.inShard(ctx, draft); !act || err != nil {
		return result, err
	}
	if !draft.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, draft)
	}
	if err := ensureFinalizer(ctx, r.Client, draft, kpov1.PackageDraftFinalizer); err != nil {
		return ctrl.Result{}, err
	}

	s := &draftScope{draft: draft}
	defer func() {
		if err := patchStatus(ctx, r.Client, req.NamespacedName, &kpov1.PackageDraft{}, func(d *kpov1.PackageDraft) {
			s.summarize(d, retErr)
		}); err != nil {
			retErr = errors.Join(retErr, err)
		}
		result, retErr = resultFor(result, retErr)
	}()
	for _, step := range []func(context.Context, *draftScope) error{
		r.reconcileRevision,
		r.reconcileDeclaredLifecycle,
	} {
		if err := step(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// inShard tells whether this manager acts on the PackageDraft. One whose Repository is in
// another shard is that shard's manager's, and one whose Repository does not exist is the
// unsharded instance's (shard.writesForMissing): any other manager leaves it alone, writing
// nothing, not even a finalizer. While the revision it produced is on its way from one shard to
// the other (in neither this manager's cache nor gone), it waits, so that a revision taken over
// is never reported deleted.
func (r *PackageDraftReconciler) inShard(ctx context.Context, draft *kpov1.PackageDraft) (bool, ctrl.Result, error) {
	_, where, err := r.shard.locate(ctx, r.Client, client.ObjectKey{Namespace: draft.Namespace, Name: draft.Spec.Repository})
	if err != nil {
		return false, ctrl.Result{}, err
	}
	if stop, result := leaveAlone(where); stop {
		return false, result, nil
	}
	if where == missing {
		return r.shard.writesForMissing(), ctrl.Result{}, nil
	}
	produced := draft.Status.PackageRevision
	if produced == "" || !r.shard.sharded() {
		return true, ctrl.Result{}, nil
	}
	key := client.ObjectKey{Namespace: draft.Namespace, Name: produced}
	if err := r.Get(ctx, key, &kpov1.PackageRevision{}); !apierrors.IsNotFound(err) {
		return err == nil, ctrl.Result{}, err
	}
	switch err := r.shard.apiReader.Get(ctx, key, &kpov1.PackageRevision{}); {
	case apierrors.IsNotFound(err):
		return true, ctrl.Result{}, nil
	case err != nil:
		return false, ctrl.Result{}, fmt.Errorf("reading package revision %s: %w", produced, err)
	}
	return false, ctrl.Result{RequeueAfter: time.Second}, nil
}

// draftScope is what the steps of one PackageDraft reconcile share: the PackageDraft (whose
// status fields the steps set) and the revision it produced, once known.
type draftScope struct {
	draft *kpov1.PackageDraft
	pr    *kpov1.PackageRevision
}

// summarize sets what the PackageDraft reconciler owns on d: the produced revision and its
// commit, and Ready.
func (s *draftScope) summarize(d *kpov1.PackageDraft, outcome error) {
	d.Status.PackageRevision = s.draft.Status.PackageRevision
	d.Status.Commit = s.draft.Status.Commit
	setDraftReady(d, s.pr, outcome)
}

// reconcileRevision returns the draft's PackageRevision, creating draft branch and revision
// the first time. It sets status.packageRevision. Refusals (duplicate workspace, existing or
// nested package, unpublished source) are terminal with their own reasons.
func (r *PackageDraftReconciler) reconcileRevision(ctx context.Context, s *draftScope) error {
	pr, err := r.revision(ctx, s.draft)
	s.pr = pr
	if err == nil && pr == nil {
		// Produced once and deleted since: a PackageDraft never recreates its revision.
		return terminal(kpov1.SourceNotFoundReason, fmt.Errorf("package revision %s no longer exists", s.draft.Status.PackageRevision))
	}
	return err
}

// revision returns the draft's PackageRevision, creating draft branch and revision the first
// time, or nil when it was produced once and deleted since.
func (r *PackageDraftReconciler) revision(ctx context.Context, draft *kpov1.PackageDraft) (*kpov1.PackageRevision, error) {
	repo := &kpov1.Repository{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: draft.Namespace, Name: draft.Spec.Repository}, repo); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &stepError{Reason: kpov1.RepositoryNotReadyReason, RetryAfter: maxRetryAfter,
				Err: fmt.Errorf("repository %q does not exist: register it first", draft.Spec.Repository)}
		}
		return nil, err
	}
	name := discovery.RevisionName(repo.Name, draft.Spec.PackageName, draft.Spec.WorkspaceName)
	pr := &kpov1.PackageRevision{}
	err := r.Get(ctx, client.ObjectKey{Namespace: draft.Namespace, Name: name}, pr)
	switch {
	case err == nil && draft.Status.PackageRevision == name && pr.Labels[kpov1.DraftLabel] == draft.Name:
		// Adopted before: the manager labelled it after checking Git, and only the manager can.
		draft.Status.Commit = pr.Status.Commit
		return pr, nil
	case err == nil:
		return r.adopt(ctx, draft, repo, pr)
	case !apierrors.IsNotFound(err):
		return nil, err
	case draft.Status.PackageRevision != "":
		// Produced once and deleted since: a PackageDraft never recreates its revision.
		return nil, nil
	}

	if err := r.createDraft(ctx, draft, repo); err != nil {
		return nil, err
	}
	if err := r.Get(ctx, client.ObjectKey{Namespace: draft.Namespace, Name: name}, pr); err != nil {
		return nil, fmt.Errorf("reading the new package revision: %w", err)
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(draft, "Normal", kpov1.CreatedReason, "created draft %s", name)
	}
	return r.adopt(ctx, draft, repo, pr)
}

// adopt links a PackageDraft to an existing PackageRevision when, and only when, Git says this
// PackageDraft created it: the first commit of the revision carries the draft's UID in its
// Kpo-Draft trailer. That survives a crash between creating the revision and labelling it, and
// no label or annotation a user can write decides it. Anything else is a duplicate workspace.
func (r *PackageDraftReconciler) adopt(ctx context.Context, draft *kpov1.PackageDraft, repo *kpov1.Repository, pr *kpov1.PackageRevision) (*kpov1.PackageRevision, error) {
	creator, err := r.creatorOf(ctx, repo, pr)
	if err != nil {
		return nil, err
	}
	if creator != string(draft.UID) {
		return nil, terminal(kpov1.DuplicateWorkspaceReason, fmt.Errorf(
			"package %q already has workspace %q (PackageRevision %s), which this PackageDraft did not create: choose another workspaceName",
			draft.Spec.PackageName, draft.Spec.WorkspaceName, pr.Name))
	}
	if pr.Labels[kpov1.DraftLabel] != draft.Name {
		patch := client.MergeFrom(pr.DeepCopy())
		pr.Labels = mergeMaps(pr.Labels, map[string]string{kpov1.DraftLabel: draft.Name})
		if err := r.Patch(ctx, pr, patch); err != nil {
			return nil, fmt.Errorf("labelling package revision %s: %w", pr.Name, err)
		}
	}
	draft.Status.PackageRevision = pr.Name
	draft.Status.Commit = pr.Status.Commit
	return pr, nil
}

// creatorOf reads from Git which PackageDraft (by UID) created a revision; "" for none.
func (r *PackageDraftReconciler) creatorOf(ctx context.Context, repo *kpov1.Repository, pr *kpov1.PackageRevision) (string, error) {
	history, err := r.history(ctx, repo, pr)
	if err != nil {
		return "", err
	}
	return draftCreator(history), nil
}

// history reads a revision's commits from Git (see revisionHistory).
func (r *PackageDraftReconciler) history(ctx context.Context, repo *kpov1.Repository, pr *kpov1.PackageRevision) ([]git.Commit, error) {
	if pr.Status.Commit == "" {
		return nil, &stepError{Reason: kpov1.ProgressingReason, RetryAfter: time.Second,
			Err: fmt.Errorf("package revision %s is not read from Git yet", pr.Name)}
	}
	defer r.git.lock(repo)()
	src, err := r.git.open(ctx, repo)
	if err != nil {
		return nil, err
	}
	return revisionHistory(src, pr.Status.Commit, pr.Spec.PackageName, pr.Spec.WorkspaceName)
}

// createDraft builds the content and pushes the draft branch, then reads it into a
// PackageRevision.
func (r *PackageDraftReconciler) createDraft(ctx context.Context, draft *kpov1.PackageDraft, repo *kpov1.Repository) error {
	defer r.git.lock(repo)()
	src, err := r.git.open(ctx, repo)
	if err != nil {
		return err
	}
	pkgPath := discovery.PackagePath(repo.Spec.Git.Directory, draft.Spec.PackageName)
	ref := git.DraftRef(pkgPath, draft.Spec.WorkspaceName)
	if adopted, err := r.adoptable(src, ref, draft); err != nil || adopted {
		if err != nil {
			return err
		}
		return syncPackage(ctx, r.Client, r.git.apiReader, repo, src, draft.Spec.PackageName)
	}
	if err := r.checkTarget(src, repo, draft, pkgPath); err != nil {
		return err
	}
	b := &draftBuilder{Client: r.Client, git: r.git, shard: r.shard, draft: draft, repo: repo, src: src}
	files, task, err := b.build(ctx)
	if err != nil {
		return err
	}
	rendered, err := prepareContent(ctx, r.render, files, draft.Annotations[kpov1.PushOnRenderFailureAnnotation] == "true",
		fmt.Sprintf("the %s source gives content that cannot be committed", task))
	if err != nil {
		return err
	}
	files = rendered.files

	author, email := commitAuthor(repo)
	err = withCAS(ctx, src, func(refs refReader) ([]git.RefUpdate, error) {
		if _, exists := refs.Ref(ref); exists {
			return nil, terminal(kpov1.DuplicateWorkspaceReason, fmt.Errorf("draft branch %s was created meanwhile: choose another workspaceName", ref))
		}
		var parents []string
		if head, ok := refs.Ref(git.BranchRef(branchOf(repo))); ok {
			parents = []string{head}
		}
		summary := fmt.Sprintf("%s %s\n\n%s%s", capitalize(task), draft.Spec.PackageName, draftTrailer, draft.UID)
		if len(b.conflicts) > 0 {
			// In the same commit as the content: a draft created with conflicts says so in Git.
			summary += "\n" + strings.TrimSuffix(conflicts.Trailers(b.conflicts), "\n")
		}
		hash, err := src.CreateCommit(git.NewCommit{
			Parents: parents, Dir: pkgPath, Files: files, AllowEmpty: true,
			Message:    commitMessage(summary, draft.Spec.PackageName, draft.Spec.WorkspaceName, 0, task, ""),
			AuthorName: author, AuthorEmail: email, Time: time.Now(),
		})
		if err != nil && !errors.Is(err, git.ErrNoChanges) {
			return nil, err
		}
		return []git.RefUpdate{{Name: ref, New: hash}}, nil
	})
	if err != nil {
		return err
	}
	return syncPackage(ctx, r.Client, r.git.apiReader, repo, src, draft.Spec.PackageName)
}

// adoptable tells whether ref exists and was created by this PackageDraft (an earlier
// reconcile pushed it and stopped before recording it).
func (r *PackageDraftReconciler) adoptable(src *git.Repo, ref string, draft *kpov1.PackageDraft) (bool, error) {
	head, ok := src.Ref(ref)
	if !ok {
		return false, nil
	}
	history, err := revisionHistory(src, head, draft.Spec.PackageName, draft.Spec.WorkspaceName)
	if err != nil {
		return false, err
	}
	if draftCreator(history) == string(draft.UID) {
		return true, nil
	}
	return false, terminal(kpov1.DuplicateWorkspaceReason, fmt.Errorf("draft branch %s already exists: choose another workspaceName", ref))
}

// checkTarget refuses a draft whose package path is taken: init and clone need a new package
// that is neither inside another package nor contains one; copy needs the package to exist;
// no source may reuse a workspace the package already has. It reads the refs and the branch's
// tree at the package's path, below it and at its parent directories, not the whole repository.
func (r *PackageDraftReconciler) checkTarget(src *git.Repo, repo *kpov1.Repository, draft *kpov1.PackageDraft, pkgPath string) error {
	packages := map[string]bool{}
	for _, ref := range packageRefs(src, pkgPath) {
		pr, ok := git.ParsePackageRef(ref.Name)
		if !ok || pr.Kind == git.RefBranch {
			continue
		}
		packages[pr.Package] = true
		if pr.Package == pkgPath && (pr.Workspace == draft.Spec.WorkspaceName) {
			return terminal(kpov1.DuplicateWorkspaceReason, fmt.Errorf("package %q already has workspace %q: choose another workspaceName", draft.Spec.PackageName, draft.Spec.WorkspaceName))
		}
	}
	if draft.Spec.Source.Copy != nil || draft.Spec.Source.Upgrade != nil {
		return nil
	}
	head, onBranch := src.Ref(git.BranchRef(branchOf(repo)))
	for _, dir := range parentDirs(pkgPath) {
		for _, ref := range packageRefs(src, dir) {
			if pr, ok := git.ParsePackageRef(ref.Name); ok && pr.Package == dir {
				packages[dir] = true
				break
			}
		}
		if onBranch {
			isPackage, err := src.IsPackage(head, dir)
			if err != nil {
				return err
			}
			if isPackage {
				packages[dir] = true
			}
		}
	}
	if onBranch {
		isPackage, err := src.IsPackage(head, pkgPath)
		if err != nil {
			return err
		}
		if isPackage {
			packages[pkgPath] = true
		}
		nested, err := src.ListPackages(head, pkgPath)
		if err != nil {
			return err
		}
		for _, p := range nested {
			packages[pkgPath+"/"+p] = true
		}
	}
	// The package itself first: a package that exists is told so even when it has nested ones
	// (a map's order would pick either); then the others in order, so one answer is given.
	if packages[pkgPath] {
		return terminal(kpov1.PackageExistsReason, fmt.Errorf("package %q already exists in repository %q: start a new revision of it with source copy instead", draft.Spec.PackageName, repo.Name))
	}
	for _, p := range slices.Sorted(maps.Keys(packages)) {
		switch {
		case strings.HasPrefix(pkgPath, p+"/"):
			return terminal(kpov1.NestedPackageReason, fmt.Errorf("package path %q is inside package %q: choose a path outside it", pkgPath, p))
		case strings.HasPrefix(p, pkgPath+"/"):
			return terminal(kpov1.NestedPackageReason, fmt.Errorf("package path %q contains package %q: choose another path", pkgPath, p))
		}
	}
	return nil
}

// packageRefs returns the refs of the layout below pkgPath: those of the package and of the
// packages nested in it.
func packageRefs(src *git.Repo, pkgPath string) []git.Ref {
	var refs []git.Ref
	for _, prefix := range git.PackageRefPrefixes(pkgPath) {
		refs = append(refs, src.RefsWithPrefix(prefix)...)
	}
	return refs
}

// parentDirs returns the directories that contain pkgPath: "a" and "a/b" for "a/b/c".
func parentDirs(pkgPath string) []string {
	var dirs []string
	for i := range len(pkgPath) {
		if pkgPath[i] == '/' {
			dirs = append(dirs, pkgPath[:i])
		}
	}
	return dirs
}

// reconcileDeclaredLifecycle moves the revision one legal step towards spec.lifecycle:
// Draft → Proposed → Published, or Proposed → Draft; an approval not carried out yet is
// withdrawn (Published → Proposed) when the PackageDraft no longer asks for it. The approval
// itself was checked by the admission policy on the PackageDraft; its verified approver and the
// commit it approved are carried over, so the manager publishes that commit or nothing.
func (r *PackageDraftReconciler) reconcileDeclaredLifecycle(ctx context.Context, s *draftScope) error {
	draft, pr := s.draft, s.pr
	want, cur := draft.Spec.Lifecycle, pr.Spec.Lifecycle
	var next kpov1.Lifecycle
	switch {
	case want == "":
		return nil
	case cur == kpov1.LifecyclePublished && pr.Status.Lifecycle == kpov1.LifecycleProposed && want != kpov1.LifecyclePublished:
		next = kpov1.LifecycleProposed
	case cur == want || pr.Status.Lifecycle != cur:
		return nil
	case cur == kpov1.LifecycleDraft:
		next = kpov1.LifecycleProposed
	case cur == kpov1.LifecycleProposed:
		next = want
	default:
		return terminal(kpov1.LifecycleConflictReason, fmt.Errorf(
			"package revision %s is %s and cannot move to %s: a published revision does not go back", pr.Name, cur, want))
	}
	// Optimistic locking: next was decided on this copy; a user's newer spec is never overwritten.
	patch := client.MergeFromWithOptions(pr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	pr.Spec.Lifecycle = next
	switch next {
	case kpov1.LifecyclePublished:
		approved, err := r.approvedCommit(ctx, draft, pr)
		if err != nil {
			return err
		}
		pr.Annotations = mergeMaps(pr.Annotations, map[string]string{
			kpov1.ApprovedByAnnotation:     draft.Annotations[kpov1.ApprovedByAnnotation],
			kpov1.ApprovedCommitAnnotation: approved,
		})
	case kpov1.LifecycleProposed:
		delete(pr.Annotations, kpov1.ApprovedByAnnotation)
		delete(pr.Annotations, kpov1.ApprovedCommitAnnotation)
	}
	err := r.Patch(ctx, pr, patch)
	if apierrors.IsConflict(err) {
		return &stepError{Reason: kpov1.ProgressingReason, RetryAfter: time.Second,
			Err: fmt.Errorf("%s changed while moving it to %s: trying again", pr.Name, next)}
	}
	if err != nil {
		return terminal(kpov1.TransitionFailedReason, fmt.Errorf("moving %s to %s: %w", pr.Name, next, err))
	}
	return nil
}

// approvedCommit is the commit a declarative approval covers: the one the PackageDraft's status
// showed when the approver set spec.lifecycle: Published (stamped by the admission policy), or,
// for a PackageDraft created approved, the commit it created — read from Git, and only when that
// commit is this PackageDraft's.
func (r *PackageDraftReconciler) approvedCommit(ctx context.Context, draft *kpov1.PackageDraft, pr *kpov1.PackageRevision) (string, error) {
	if c := draft.Annotations[kpov1.ApprovedCommitAnnotation]; c != "" {
		return c, nil
	}
	repo := &kpov1.Repository{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: draft.Namespace, Name: draft.Spec.Repository}, repo); err != nil {
		return "", fmt.Errorf("reading repository %q: %w", draft.Spec.Repository, err)
	}
	history, err := r.history(ctx, repo, pr)
	if err != nil {
		return "", err
	}
	if len(history) == 0 || draftCreator(history) != string(draft.UID) {
		return "", terminal(kpov1.DuplicateWorkspaceReason, fmt.Errorf(
			"package revision %s was not created by this PackageDraft: it cannot publish it", pr.Name))
	}
	return history[len(history)-1].Hash, nil
}

// reconcileDelete abandons the produced revision while it is still a Draft (its finalizer
// deletes the branch); later revisions stay, only the request goes.
func (r *PackageDraftReconciler) reconcileDelete(ctx context.Context, draft *kpov1.PackageDraft) error {
	if !controllerutil.ContainsFinalizer(draft, kpov1.PackageDraftFinalizer) {
		return nil
	}
	if err := r.abandon(ctx, draft); err != nil {
		return err
	}
	return releaseFinalizer(ctx, r.Client, draft, kpov1.PackageDraftFinalizer)
}

// abandon deletes the draft this PackageDraft produced while it is still a Draft. The draft is
// this PackageDraft's when the manager labelled it so or when Git says so (the Kpo-Draft
// trailer): a crash may have kept the link from being recorded, and then a branch pushed but not
// yet read into a PackageRevision is deleted from Git directly.
func (r *PackageDraftReconciler) abandon(ctx context.Context, draft *kpov1.PackageDraft) error {
	repo := &kpov1.Repository{}
	switch err := r.Get(ctx, client.ObjectKey{Namespace: draft.Namespace, Name: draft.Spec.Repository}, repo); {
	case apierrors.IsNotFound(err):
		return nil // its revisions go with it
	case err != nil:
		return err
	case !repo.DeletionTimestamp.IsZero():
		return nil
	}
	name := discovery.RevisionName(repo.Name, draft.Spec.PackageName, draft.Spec.WorkspaceName)
	pr := &kpov1.PackageRevision{}
	err := r.Get(ctx, client.ObjectKey{Namespace: draft.Namespace, Name: name}, pr)
	switch {
	case apierrors.IsNotFound(err) && draft.Status.PackageRevision == "":
		return r.abandonBranch(ctx, draft, repo)
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case pr.Status.Lifecycle != kpov1.LifecycleDraft:
		return nil
	}
	if pr.Labels[kpov1.DraftLabel] != draft.Name {
		creator, err := r.creatorOf(ctx, repo, pr)
		if err != nil || creator != string(draft.UID) {
			return err
		}
	}
	if err := r.Delete(ctx, pr); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("abandoning draft %s: %w", name, err)
	}
	return nil
}

// abandonBranch deletes the draft branch this PackageDraft pushed before any PackageRevision
// was read from it. Git being out of reach does not keep the PackageDraft from going: the branch
// then shows up as a draft revision with the next sync, for a user to delete.
func (r *PackageDraftReconciler) abandonBranch(ctx context.Context, draft *kpov1.PackageDraft, repo *kpov1.Repository) error {
	defer r.git.lock(repo)()
	src, err := r.git.open(ctx, repo)
	if err != nil {
		log.FromContext(ctx).Info("cannot check Git for a draft branch left by this PackageDraft", "error", err.Error())
		return nil
	}
	ref := git.DraftRef(discovery.PackagePath(repo.Spec.Git.Directory, draft.Spec.PackageName), draft.Spec.WorkspaceName)
	ours, err := r.adoptable(src, ref, draft)
	if err != nil || !ours {
		return nil // none, or another's
	}
	if err := deleteRefs(ctx, src, ref); err != nil {
		return fmt.Errorf("deleting draft branch %s: %w", ref, err)
	}
	return syncPackage(ctx, r.Client, r.git.apiReader, repo, src, draft.Spec.PackageName)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// lastSegment is a package's name: the last element of its path.
func lastSegment(pkg string) string { return path.Base(pkg) }
