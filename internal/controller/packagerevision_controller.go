package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
)

// PackageRevisionReconciler carries out what users ask of a PackageRevision: it commits
// edited draft content and moves refs for lifecycle transitions (propose, reject, approve,
// propose deletion, reject deletion, delete), then re-reads the package from Git.
type PackageRevisionReconciler struct {
	client.Client
	git      *gitAccess
	shard    *shard
	render   Renderer
	Recorder record.EventRecorder
}

// +kubebuilder:rbac:groups=kpo.dev,resources=packagerevisions/finalizers,verbs=update
// +kubebuilder:rbac:groups=kpo.dev,resources=repositories,verbs=get;list;watch

// SetupWithManager registers the reconciler for PackageRevisions and their content ConfigMaps.
func (r *PackageRevisionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kpov1.PackageRevision{}, upstreamIndex, indexUpstream); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&kpov1.PackageRevision{}).
		// Content is never cached: an edit is seen by its metadata, read with a direct GET.
		WatchesMetadata(&corev1.ConfigMap{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(),
			&kpov1.PackageRevision{}, handler.OnlyControllerOwner())).
		Watches(&kpov1.PackageRevision{}, handler.EnqueueRequestsFromMapFunc(r.downstreamsOf)).
		// A change of a Repository's spec (its guardrails) re-checks its drafts only.
		Watches(&kpov1.Repository{}, handler.EnqueueRequestsFromMapFunc(r.guardedBy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A proposal's downstream validation depends on the variants that follow its package
		// and on their downstreams' published revisions.
		Watches(&kpov1.PackageVariant{}, handler.EnqueueRequestsFromMapFunc(r.proposalsFollowedBy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&kpov1.PackageRevision{}, handler.EnqueueRequestsFromMapFunc(r.proposalsFollowedBy)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("packagerevision").
		Complete(r)
}

// Reconcile commits edited content and carries out a pending lifecycle transition. A deferred
// status patch owns the conditions and observedGeneration.
func (r *PackageRevisionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	pr := &kpov1.PackageRevision{}
	if err := r.Get(ctx, req.NamespacedName, pr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	repo, where, err := r.repository(ctx, pr)
	if err != nil {
		return ctrl.Result{}, err
	}
	if stop, result := leaveAlone(where); stop {
		// Labelled with this shard, but its Repository moved to another: that shard's manager
		// takes it over (reconcileShard).
		return result, nil
	}
	if !pr.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, pr, repo)
	}
	if err := ensureFinalizer(ctx, r.Client, pr, kpov1.PackageRevisionFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	if pr.Status.Lifecycle == "" && repo != nil {
		// Just created and not read from Git yet: the sync is writing its status, which
		// requeues this revision; a Ready=Unknown written now would be one more write per
		// revision, overwritten at once.
		return ctrl.Result{}, nil
	}

	s := &revisionScope{pr: pr, repo: repo, cm: r.contentConfigMap(ctx, pr)}
	defer func() {
		if err := patchStatus(ctx, r.Client, req.NamespacedName, &kpov1.PackageRevision{}, func(pr *kpov1.PackageRevision) {
			s.summarize(pr, r.contentConfigMap(ctx, pr), retErr)
		}); err != nil {
			retErr = errors.Join(retErr, err)
		}
		result, retErr = resultFor(result, retErr)
	}()
	for _, step := range []func(context.Context, *revisionScope) error{
		r.reconcileRepository,
		r.reconcileContentLifecycle,
		r.reconcileContent,
		r.reconcileGuardrails,
		r.reconcileConflictResolution,
		r.reconcileRebase,
		r.reconcileLifecycle,
		r.reconcileContentRequest,
		r.reconcileDownstreamValidation,
		r.reconcileUpstream,
	} {
		if err := step(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
}

// revisionScope is what the steps of one PackageRevision reconcile share: the objects they
// work on, and what they learned for the status fields the PackageRevision reconciler owns.
// The steps re-read Git into the same object (through the sync) and the cache may lag behind,
// so the status is summarised at the end onto the freshest copy, never onto a stale one.
type revisionScope struct {
	pr   *kpov1.PackageRevision
	repo *kpov1.Repository
	cm   *corev1.ConfigMap

	rendered *renderOutcome
	// guardrails, when set, replaces status.guardrails (reconcileGuardrails).
	guardrails *guardrailsUpdate
	// downstreams, when set, replaces status.downstreamValidation.
	downstreams *downstreamsUpdate
	upstream    *[2]string // status.upstreamRevision, status.latestUpstreamRevision
	// requeueAfter, when set, is when the revision needs another look (a content request
	// expires).
	requeueAfter time.Duration
}

// requeueWithin asks for another look at the revision within d (the earliest of the asks).
func (s *revisionScope) requeueWithin(d time.Duration) {
	if s.requeueAfter == 0 || d < s.requeueAfter {
		s.requeueAfter = d
	}
}

// summarize sets what the PackageRevision reconciler owns on pr: the render outcome, the
// upstream revisions, and the conditions that follow from the reconcile's outcome and from the
// Git projection the sync wrote.
func (s *revisionScope) summarize(pr *kpov1.PackageRevision, cm *corev1.ConfigMap, outcome error) {
	if s.rendered != nil {
		setRendered(pr, *s.rendered)
	}
	if s.guardrails != nil {
		pr.Status.Guardrails = s.guardrails.result
	}
	setGuardrailsCondition(pr)
	if s.downstreams != nil {
		pr.Status.DownstreamValidation = s.downstreams.result
	}
	setDownstreamsCondition(pr)
	if s.upstream != nil {
		pr.Status.UpstreamRevision, pr.Status.LatestUpstreamRevision = s.upstream[0], s.upstream[1]
	}
	setRevisionConditions(pr, cm, outcome)
}

// recordedGuardrails is the guardrails result this reconcile computed, else the recorded one.
func (s *revisionScope) recordedGuardrails() *kpov1.GuardrailsResult {
	if s.guardrails != nil {
		return s.guardrails.result
	}
	return s.pr.Status.Guardrails
}

// reconcileRepository stops the reconcile while the revision's Repository is missing or being
// deleted (RepositoryNotReady, retried after a pause).
func (r *PackageRevisionReconciler) reconcileRepository(_ context.Context, s *revisionScope) error {
	if s.repo == nil {
		return &stepError{Reason: kpov1.RepositoryNotReadyReason, RetryAfter: maxRetryAfter,
			Err: fmt.Errorf("repository %q does not exist", s.pr.Spec.Repository)}
	}
	return nil
}

// repository returns the PackageRevision's Repository, or nil when it is gone or being deleted,
// and where it is served. A Repository of another shard that is being deleted counts as gone:
// this manager holds the revision and releases it.
func (r *PackageRevisionReconciler) repository(ctx context.Context, pr *kpov1.PackageRevision) (*kpov1.Repository, placement, error) {
	repo, where, err := r.shard.locate(ctx, r.Client, client.ObjectKey{Namespace: pr.Namespace, Name: pr.Spec.Repository})
	switch {
	case err != nil:
		return nil, where, err
	case repo != nil && !repo.DeletionTimestamp.IsZero():
		return nil, missing, nil
	case where != servedHere:
		return nil, where, nil
	}
	return repo, where, nil
}

// contentConfigMap returns the PackageRevision's content ConfigMap, or nil. ConfigMaps are
// not cached (ClientOptions): this is a GET, made only for a revision whose status names one.
func (r *PackageRevisionReconciler) contentConfigMap(ctx context.Context, pr *kpov1.PackageRevision) *corev1.ConfigMap {
	if pr.Status.ResourcesRef == nil {
		return nil
	}
	cm := &corev1.ConfigMap{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: pr.Namespace, Name: pr.Name}, cm); err != nil {
		return nil
	}
	return cm
}

// reconcileContent commits a user's edit of a Draft's content ConfigMap to the draft branch.
// Content that is not valid (paths, YAML, Kptfile) is refused with reason InvalidContent and
// nothing is committed: the last good commit stays.
func (r *PackageRevisionReconciler) reconcileContent(ctx context.Context, s *revisionScope) error {
	pr, repo, cm := s.pr, s.repo, s.cm
	if cm == nil || pr.Status.Lifecycle != kpov1.LifecycleDraft {
		return nil
	}
	files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
	if err != nil {
		return terminal(kpov1.InvalidContentReason, fmt.Errorf("content config map %s: %w", cm.Name, err))
	}
	if content.Digest(files) == cm.Annotations[kpov1.ContentDigestAnnotation] {
		if committed := cm.Annotations[kpov1.ContentCommitAnnotation]; committed != "" && committed != pr.Status.Commit {
			// Committed, but re-reading Git failed afterwards: finish that now.
			return r.resync(ctx, repo, pr.Spec.PackageName)
		}
		if r.render != nil && meta.FindStatusCondition(pr.Status.Conditions, kpov1.RenderedCondition) == nil {
			// Committed by a PackageDraft, which rendered it: record what its pipeline says.
			outcome := renderFiles(ctx, r.render, files)
			s.rendered = &outcome
		}
		return nil
	}
	rendered, err := r.renderForCommit(ctx, s, files, "content not committed")
	if err != nil {
		return err
	}

	defer r.git.lock(repo)()
	src, err := r.git.open(ctx, repo)
	if err != nil {
		return err
	}
	path := discovery.PackagePath(repo.Spec.Git.Directory, pr.Spec.PackageName)
	nc := editCommit(repo, pr, editorsOf(cm))
	nc.Dir, nc.Files = path, rendered
	resolved, err := resolvedByEdit(src, pr, path, rendered)
	if err != nil {
		return err
	}
	if resolved != "" {
		// The edit changes conflicting fields: it resolves them, in the same commit.
		nc.Message = strings.Replace(nc.Message, "\n\n", "\n\n"+resolved, 1)
	}
	return r.commitToDraft(ctx, src, s, git.DraftRef(path, pr.Spec.WorkspaceName), nc, "content")
}

// renderForCommit renders files that are to be committed to the Draft s holds, and returns what
// to commit. What the render says goes into s (the Rendered condition); a failed render is an
// error unless the Draft asks to push on render failure, and notDone says what was not done.
func (r *PackageRevisionReconciler) renderForCommit(ctx context.Context, s *revisionScope, files map[string][]byte, notDone string) (map[string][]byte, error) {
	pr := s.pr
	rendered, err := prepareContent(ctx, r.render, files, pr.Annotations[kpov1.PushOnRenderFailureAnnotation] == "true",
		fmt.Sprintf("%s, the draft keeps commit %s", notDone, shortHash(pr.Status.Commit)))
	if rendered.reason != "" {
		s.rendered = &rendered
	}
	return rendered.files, err
}

// commitToDraft commits nc (its files written to its directory) on top of the Draft's branch
// ref, writes the committed files back to the content ConfigMap, and reads the package again
// from Git. what names the change in the error.
func (r *PackageRevisionReconciler) commitToDraft(ctx context.Context, src *git.Repo, s *revisionScope, ref string, nc git.NewCommit, what string) error {
	committed, err := commitEdit(ctx, src, ref, nc)
	if err != nil {
		return fmt.Errorf("committing %s: %w", what, err)
	}
	if err := r.writeBack(ctx, s.cm, nc.Files, committed); err != nil {
		return err
	}
	return syncPackage(ctx, r.Client, r.git.apiReader, s.repo, src, s.pr.Spec.PackageName)
}

// commitEdit commits nc on top of draft branch ref and moves the branch to it, and returns the
// commit the branch holds afterwards (its head when nc changes nothing).
func commitEdit(ctx context.Context, src *git.Repo, ref string, nc git.NewCommit) (string, error) {
	var committed string
	err := withCAS(ctx, src, func(refs refReader) ([]git.RefUpdate, error) {
		head, ok := refs.Ref(ref)
		if !ok {
			return nil, fmt.Errorf("draft branch %s does not exist", ref)
		}
		nc.Parents, nc.Time = []string{head}, time.Now()
		hash, err := src.CreateCommit(nc)
		committed = hash
		if errors.Is(err, git.ErrNoChanges) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []git.RefUpdate{{Name: ref, Old: head, New: hash}}, nil
	})
	return committed, err
}

// editorsOf returns the verified identities the admission policy stamped on a content
// ConfigMap's edits since the last commit.
func editorsOf(cm *corev1.ConfigMap) []string {
	var editors []string
	for _, name := range strings.Split(cm.Annotations[kpov1.EditedByAnnotation], ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(editors, name) {
			editors = append(editors, name)
		}
	}
	return editors
}

// editCommit is the commit of a content edit: authored by the first editor, the others as
// co-authors, committed by the manager; without editors the manager is the author.
func editCommit(repo *kpov1.Repository, pr *kpov1.PackageRevision, editors []string) git.NewCommit {
	author, email := commitAuthor(repo)
	summary := "Edit " + pr.Spec.PackageName
	nc := git.NewCommit{AuthorName: author, AuthorEmail: email}
	if len(editors) > 0 {
		nc.AuthorName, nc.AuthorEmail = editors[0], editors[0]
		nc.CommitterName, nc.CommitterEmail = author, email
		var trailers []string
		for _, e := range editors[1:] {
			trailers = append(trailers, fmt.Sprintf("%s%s <%s>", coAuthorTrailer, e, e))
		}
		if len(trailers) > 0 {
			summary += "\n\n" + strings.Join(trailers, "\n")
		}
	}
	nc.Message = commitMessage(summary, pr.Spec.PackageName, pr.Spec.WorkspaceName, 0, "edit", "")
	return nc
}

// writeBack puts the committed (rendered) files into the content ConfigMap with the digest
// and commit they were committed as, so the edit is not seen again. A user's newer edit makes
// the update conflict; it is then handled by the next reconcile.
func (r *PackageRevisionReconciler) writeBack(ctx context.Context, cm *corev1.ConfigMap, files map[string][]byte, commit string) error {
	data, binary, err := content.ToConfigMap(files)
	if err != nil {
		return terminal(kpov1.PackageTooLargeReason, fmt.Errorf("the rendered package: %w", err))
	}
	patch := client.MergeFromWithOptions(cm.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cm.Data, cm.BinaryData = data, binary
	delete(cm.Annotations, kpov1.EditedByAnnotation) // they are in the commit now
	cm.Annotations = mergeMaps(cm.Annotations, map[string]string{
		kpov1.ContentDigestAnnotation: content.Digest(files),
		kpov1.ContentCommitAnnotation: commit,
	})
	if err := r.Patch(ctx, cm, patch); err != nil {
		return fmt.Errorf("writing the rendered content back: %w", err)
	}
	return nil
}

// resync re-reads one package from Git.
func (r *PackageRevisionReconciler) resync(ctx context.Context, repo *kpov1.Repository, pkg string) error {
	defer r.git.lock(repo)()
	src, err := r.git.open(ctx, repo)
	if err != nil {
		return err
	}
	return syncPackage(ctx, r.Client, r.git.apiReader, repo, src, pkg)
}

// reconcileLifecycle carries out spec.lifecycle when it differs from the lifecycle Git holds.
func (r *PackageRevisionReconciler) reconcileLifecycle(ctx context.Context, s *revisionScope) error {
	pr, repo := s.pr, s.repo
	from, to := pr.Status.Lifecycle, pr.Spec.Lifecycle
	if from == "" || from == to {
		return nil
	}
	defer r.git.lock(repo)()
	// The cache may lag behind the API server: a transition is carried out only for the spec
	// and status the API server holds now (one GET per transition), read under the repository's
	// lock, so no sync can record a newer spec until the move is pushed and read back. Acting on
	// a superseded spec (a reject the user already took back with a new propose) and then being
	// killed before the read-back would leave Git behind a status that looks settled, and the
	// next full sync would take Git's lifecycle for the user's. A newer object is on its way
	// through the watch, and its reconcile carries out what it asks for.
	fresh := &kpov1.PackageRevision{}
	if err := r.git.apiReader.Get(ctx, client.ObjectKeyFromObject(pr), fresh); err != nil {
		return client.IgnoreNotFound(err)
	}
	if fresh.Generation != pr.Generation || fresh.Spec.Lifecycle != to || fresh.Status.Lifecycle != from {
		return nil
	}
	src, err := r.git.open(ctx, repo)
	if err != nil {
		return err
	}
	path := discovery.PackagePath(repo.Spec.Git.Directory, pr.Spec.PackageName)
	ws := pr.Spec.WorkspaceName
	rev := pr.Status.Revision
	if _, ok := src.Ref(pr.Status.Ref); !ok {
		// The status is behind Git (a crash after a push, another tool): read it again first;
		// the transition, if still needed, follows from the fresh status.
		return syncPackage(ctx, r.Client, r.git.apiReader, repo, src, pr.Spec.PackageName)
	}
	switch {
	case from == kpov1.LifecycleDraft && to == kpov1.LifecycleProposed:
		err = r.propose(ctx, src, s, path)
	case from == kpov1.LifecycleProposed && to == kpov1.LifecycleDraft:
		err = moveRef(ctx, src, git.ProposedRef(path, ws), git.DraftRef(path, ws), "")
	case from == kpov1.LifecycleProposed && to == kpov1.LifecyclePublished:
		err = r.approve(ctx, src, repo, pr, path)
	case from == kpov1.LifecyclePublished && to == kpov1.LifecycleDeletionProposed:
		err = withCAS(ctx, src, func(refs refReader) ([]git.RefUpdate, error) {
			tag, _ := refs.Ref(git.TagRef(path, rev))
			return []git.RefUpdate{{Name: git.DeletionProposedRef(path, rev), New: tag}}, nil
		})
	case from == kpov1.LifecycleDeletionProposed && to == kpov1.LifecyclePublished:
		err = deleteRefs(ctx, src, git.DeletionProposedRef(path, rev))
	default:
		return terminal(kpov1.LifecycleConflictReason, fmt.Errorf("cannot move from %s to %s", from, to))
	}
	var se *stepError
	switch {
	case errors.As(err, &se):
		return err
	case err != nil:
		return &stepError{Reason: kpov1.TransitionFailedReason, Err: fmt.Errorf("moving from %s to %s: %w", from, to, err)}
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(pr, corev1.EventTypeNormal, string(to), "moved from %s to %s", from, to)
	}
	return syncPackage(ctx, r.Client, r.git.apiReader, repo, src, pr.Spec.PackageName)
}

// propose moves a draft to proposed only when its content ConfigMap holds exactly what the
// draft branch holds. An edit not committed yet is committed first (the next reconcile does it,
// propose waits for it), and the ConfigMap is made read-only — labelled Proposed, with
// optimistic locking on the version just checked — before the branch moves, so an edit the API
// server accepts is either in the proposal or refused, never lost.
func (r *PackageRevisionReconciler) propose(ctx context.Context, src *git.Repo, s *revisionScope, path string) error {
	pr := s.pr
	draftRef := git.DraftRef(path, pr.Spec.WorkspaceName)
	head, ok := src.Ref(draftRef)
	if !ok {
		return fmt.Errorf("draft branch %s does not exist", draftRef)
	}
	if err := refuseUnresolved(src, pr, head); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{}
	switch err := r.git.apiReader.Get(ctx, client.ObjectKey{Namespace: pr.Namespace, Name: pr.Name}, cm); {
	case apierrors.IsNotFound(err):
		// No content ConfigMap (the package does not fit one): nothing can be edited.
		if err := checkGuardrails(s.repo, pr, s.recordedGuardrails(), head); err != nil {
			return err
		}
		return moveRef(ctx, src, draftRef, git.ProposedRef(path, pr.Spec.WorkspaceName), head)
	case err != nil:
		return fmt.Errorf("reading content config map: %w", err)
	}
	files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
	if err != nil {
		return terminal(kpov1.InvalidContentReason, fmt.Errorf("content config map %s cannot be proposed: %w", cm.Name, err))
	}
	if content.Digest(files) != cm.Annotations[kpov1.ContentDigestAnnotation] || cm.Annotations[kpov1.ContentCommitAnnotation] != head {
		return &stepError{Reason: kpov1.ContentPendingReason, RetryAfter: time.Second,
			Err: fmt.Errorf("the content of %s was edited after its last commit: committing the edit before proposing", pr.Name)}
	}
	if err := checkGuardrails(s.repo, pr, s.recordedGuardrails(), head); err != nil {
		return err
	}
	if err := r.setContentLifecycle(ctx, cm, kpov1.LifecycleProposed); err != nil {
		return err
	}
	return moveRef(ctx, src, draftRef, git.ProposedRef(path, pr.Spec.WorkspaceName), head)
}

// setContentLifecycle sets the lifecycle label of a content ConfigMap, which the admission
// policy reads to allow or refuse edits, with optimistic locking: a ConfigMap edited since it
// was read is not relabelled.
func (r *PackageRevisionReconciler) setContentLifecycle(ctx context.Context, cm *corev1.ConfigMap, l kpov1.Lifecycle) error {
	if cm.Labels[kpov1.LifecycleLabel] == string(l) {
		return nil
	}
	patch := client.MergeFromWithOptions(cm.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cm.Labels = mergeMaps(cm.Labels, map[string]string{kpov1.LifecycleLabel: string(l)})
	err := r.Patch(ctx, cm, patch)
	if apierrors.IsConflict(err) {
		return &stepError{Reason: kpov1.ContentPendingReason, RetryAfter: time.Second,
			Err: fmt.Errorf("content config map %s changed while it was checked: checking again", cm.Name)}
	}
	if err != nil {
		return fmt.Errorf("labelling content config map %s %s: %w", cm.Name, l, err)
	}
	return nil
}

// reconcileContentLifecycle keeps the content ConfigMap's lifecycle label equal to the
// revision's when no transition is under way: a proposal that could not be carried out leaves
// the content writable again.
func (r *PackageRevisionReconciler) reconcileContentLifecycle(ctx context.Context, s *revisionScope) error {
	pr, cm := s.pr, s.cm
	if cm == nil || pr.Status.Lifecycle == "" || pr.Spec.Lifecycle != pr.Status.Lifecycle {
		return nil
	}
	return r.setContentLifecycle(ctx, cm, pr.Status.Lifecycle)
}

// approve publishes a proposal: a commit on the registered branch whose parents are the
// branch head and the proposal, holding the proposal's package; tag <package>/v<N> with N the
// highest published revision + 1; the proposed branch deleted — in one atomic push.
func (r *PackageRevisionReconciler) approve(ctx context.Context, src *git.Repo, repo *kpov1.Repository, pr *kpov1.PackageRevision, path string) error {
	branch := git.BranchRef(branchOf(repo))
	proposedRef := git.ProposedRef(path, pr.Spec.WorkspaceName)
	approver := pr.Annotations[kpov1.ApprovedByAnnotation]
	author, email := commitAuthor(repo)
	return withCAS(ctx, src, func(refs refReader) ([]git.RefUpdate, error) {
		proposed, ok := refs.Ref(proposedRef)
		if !ok {
			return nil, fmt.Errorf("proposed branch %s does not exist", proposedRef)
		}
		if err := checkApproval(src, repo, pr, proposed); err != nil {
			return nil, err
		}
		head, ok := refs.Ref(branch)
		if !ok {
			return nil, fmt.Errorf("%w: %s", git.ErrBranchNotFound, branch)
		}
		n := highestRevision(refs, path) + 1
		files, err := src.ReadTree(proposed, path)
		if err != nil {
			return nil, err
		}
		hash, err := src.CreateCommit(git.NewCommit{
			Parents: []string{head, proposed}, Dir: path, Files: files,
			Message: commitMessage(fmt.Sprintf("Approve %s v%d", pr.Spec.PackageName, n),
				pr.Spec.PackageName, pr.Spec.WorkspaceName, n, "approve", approver),
			AuthorName: author, AuthorEmail: email, Time: time.Now(),
		})
		if err != nil {
			return nil, err
		}
		return []git.RefUpdate{
			{Name: branch, Old: head, New: hash},
			{Name: git.TagRef(path, n), New: hash},
			{Name: proposedRef, Old: proposed, New: ""},
		}, nil
	})
}

// checkApproval refuses to publish anything but what the approver approved: the proposal must
// still stand at the commit recorded with the approval, and, where the repository forbids
// self-approval, the approver must not be one of the revision's editors. A refused approval
// publishes nothing and leaves the revision Proposed.
func checkApproval(src *git.Repo, repo *kpov1.Repository, pr *kpov1.PackageRevision, proposed string) error {
	approver := pr.Annotations[kpov1.ApprovedByAnnotation]
	approved, recorded := pr.Annotations[kpov1.ApprovedCommitAnnotation]
	switch {
	case !recorded:
		return terminal(kpov1.ApprovedContentChangedReason, fmt.Errorf(
			"the approval of %s by %s does not record which commit was approved (annotation %s): nothing was published; "+
				"ask an administrator to install config/policies, then approve again (spec.lifecycle: Proposed, then Published)",
			pr.Name, approver, kpov1.ApprovedCommitAnnotation))
	case approved != proposed:
		return terminal(kpov1.ApprovedContentChangedReason, fmt.Errorf(
			"%s was approved by %s at commit %s, but its proposal now stands at %s: nothing was published; "+
				"review the proposal and approve again (spec.lifecycle: Proposed, then Published)",
			pr.Name, approver, shortHash(approved), shortHash(proposed)))
	}
	if repo.Spec.Approval == nil || !repo.Spec.Approval.ForbidSelfApproval {
		return nil
	}
	history, err := revisionHistory(src, proposed, pr.Spec.PackageName, pr.Spec.WorkspaceName)
	if err != nil {
		return err
	}
	if slices.Contains(revisionEditors(history), approver) {
		return terminal(kpov1.SelfApprovalForbiddenReason, fmt.Errorf(
			"%s edited %s, and repository %s forbids approving a revision one edited (spec.approval.forbidSelfApproval): "+
				"nothing was published; another approver must publish it (withdraw with spec.lifecycle: Proposed)",
			approver, pr.Name, repo.Name))
	}
	return nil
}

// reconcileDelete removes a deleted revision's refs from Git — the branch of a draft or a
// proposal; the tag and branch of a revision proposed for deletion, carried out or only in
// its spec — and its ConfigMap, then releases the finalizer. When the Repository is gone or
// being deleted, Git is left alone. Published revisions not proposed for deletion are never
// deleted from Git here (the admission policy refuses it).
func (r *PackageRevisionReconciler) reconcileDelete(ctx context.Context, pr *kpov1.PackageRevision, repo *kpov1.Repository) error {
	if !controllerutil.ContainsFinalizer(pr, kpov1.PackageRevisionFinalizer) {
		return nil
	}
	if repo != nil {
		if err := r.deleteFromGit(ctx, pr, repo); err != nil {
			return err
		}
	}
	cm := &corev1.ConfigMap{}
	cm.Name, cm.Namespace = pr.Name, pr.Namespace
	if err := r.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting content config map: %w", err)
	}
	return releaseFinalizer(ctx, r.Client, pr, kpov1.PackageRevisionFinalizer)
}

func (r *PackageRevisionReconciler) deleteFromGit(ctx context.Context, pr *kpov1.PackageRevision, repo *kpov1.Repository) error {
	path := discovery.PackagePath(repo.Spec.Git.Directory, pr.Spec.PackageName)
	lifecycle := pr.Status.Lifecycle
	switch {
	case lifecycle == "": // deleted before its status was first written: what Git held at creation
		lifecycle = pr.Spec.Lifecycle
	case lifecycle == kpov1.LifecyclePublished && pr.Spec.Lifecycle == kpov1.LifecycleDeletionProposed && pr.Status.Revision > 0:
		// The deletion guard reads the spec: an approver may delete a revision proposed for
		// deletion before the proposal was carried out (`kubectl patch` then `kubectl delete`).
		// Its tag goes all the same, or the next sync would bring the revision back.
		lifecycle = kpov1.LifecycleDeletionProposed
	}
	var refs []string
	switch lifecycle {
	case kpov1.LifecycleDraft, kpov1.LifecycleProposed:
		// Both branches: a propose or reject may have moved it since the status was read.
		refs = []string{git.DraftRef(path, pr.Spec.WorkspaceName), git.ProposedRef(path, pr.Spec.WorkspaceName)}
	case kpov1.LifecycleDeletionProposed:
		refs = []string{git.TagRef(path, pr.Status.Revision), git.DeletionProposedRef(path, pr.Status.Revision)}
	default:
		return nil
	}
	defer r.git.lock(repo)()
	src, err := r.git.open(ctx, repo)
	if err != nil {
		return err
	}
	if err := deleteRefs(ctx, src, refs...); err != nil {
		return fmt.Errorf("deleting %v: %w", refs, err)
	}
	return syncPackage(ctx, r.Client, r.git.apiReader, repo, src, pr.Spec.PackageName)
}
