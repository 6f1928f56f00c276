package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/kptfile"
)

// revisionSync makes the PackageRevisions of one Repository equal to a discovered set.
type revisionSync struct {
	client.Client
	// apiReader reads past the cache, after a write conflict.
	apiReader client.Reader
	// gitMu serialises reads of src, which is not safe for concurrent use.
	gitMu sync.Mutex
	// full is set for a Repository's full sync, which notices changes other tools made to Git;
	// unset for the re-read of one package after the manager's own write.
	full bool
	repo *kpov1.Repository
	src  *git.Repo
	// problems are the revisions of the last apply that could not be synced: refused by
	// discovery.Validate or by the API server. They never fail the apply.
	problems []discovery.Problem
}

// apply creates missing PackageRevisions, updates changed ones and deletes vanished ones,
// with their content ConfigMaps, and moves the latest-revision label. With pkg set, revs are
// the revisions of that one package and only its PackageRevisions are considered. A revision
// that cannot be a PackageRevision (discovery.Validate, or the API server refuses the object)
// is left out and recorded in s.problems, so one bad package never stops the others; any
// other failure is returned once every revision was tried.
func (s *revisionSync) apply(ctx context.Context, revs []discovery.Revision, pkg string) error {
	revs, s.problems = discovery.Validate(s.repo.Name, revs)
	existing := &kpov1.PackageRevisionList{}
	var selector client.ListOption = ofRepository(s.repo.Name)
	if pkg != "" {
		selector = ofPackage(s.repo.Name, pkg)
	}
	if err := s.List(ctx, existing, client.InNamespace(s.repo.Namespace), selector); err != nil {
		return fmt.Errorf("listing package revisions: %w", err)
	}
	current := make(map[string]*kpov1.PackageRevision, len(existing.Items))
	for i := range existing.Items {
		current[existing.Items[i].Name] = &existing.Items[i]
	}

	latest := discovery.LatestRevisions(revs, s.name)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		work = make(chan discovery.Revision)
	)
	// Revisions are independent objects (Validate left no two with one name): up to
	// syncParallelism are written at once, so a sync waits on the API server's round trips
	// concurrently rather than one after another. Git reads stay serialised (readGit).
	for range min(syncParallelism, len(revs)) {
		wg.Go(func() {
			for rev := range work {
				name := s.name(rev)
				err := s.applyRevision(ctx, rev, current[name], latest[rev.Package] == name, false)
				mu.Lock()
				switch {
				case apierrors.IsInvalid(err):
					s.problems = append(s.problems, discovery.Problem{Revision: rev, Message: fmt.Sprintf(
						"the API server refused its PackageRevision %s (%s): rename the package or the branch in Git", name, apiMessage(err))})
				case err != nil:
					errs = append(errs, fmt.Errorf("package revision %s: %w", name, err))
				}
				mu.Unlock()
			}
		})
	}
	for _, rev := range revs {
		work <- rev
	}
	close(work)
	wg.Wait()
	for _, rev := range revs {
		delete(current, s.name(rev))
	}
	for _, pr := range current {
		if err := s.deleteRevision(ctx, pr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncParallelism bounds the revisions of one repository a sync writes at once.
const syncParallelism = 8

// treeHash returns the Git tree hash of rev's package directory.
func (s *revisionSync) treeHash(rev discovery.Revision) (string, error) {
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	return s.src.TreeHash(rev.Commit, rev.Path)
}

// readTree returns the files of rev's package.
func (s *revisionSync) readTree(rev discovery.Revision) (map[string][]byte, error) {
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	return s.src.ReadTree(rev.Commit, rev.Path)
}

func (s *revisionSync) name(rev discovery.Revision) string {
	return discovery.RevisionName(s.repo.Name, rev.Package, rev.Workspace)
}

// applyRevision brings one PackageRevision, its labels, spec.lifecycle, content and status
// in line with rev. A lifecycle the API server refuses to move to (Git changed behind kpo's
// back, e.g. a draft was published by another tool) recreates the object.
func (s *revisionSync) applyRevision(ctx context.Context, rev discovery.Revision, pr *kpov1.PackageRevision, latest, retried bool) error {
	if pr == nil {
		pr = &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Name: s.name(rev), Namespace: s.repo.Namespace}}
	}
	before := pr.DeepCopy()
	s.setMeta(pr, rev, latest)
	pr.Spec.Repository = s.repo.Name
	pr.Spec.PackageName = rev.Package
	pr.Spec.WorkspaceName = rev.Workspace
	// spec.lifecycle is the user's intent: it follows Git only when the object is new, or, in a
	// full sync, when no transition is pending (Git moved on its own: another tool). After the
	// manager's own write, Git may hold an older intent than spec (a reject that came in while
	// the proposal was pushed): spec stays, and the PackageRevision reconciler carries it out.
	if pr.Spec.Lifecycle == "" || pr.ResourceVersion == "" || (s.full && !transitionPending(pr)) {
		pr.Spec.Lifecycle = rev.Lifecycle
	}

	switch {
	case pr.ResourceVersion == "":
		// Created with its finalizer: a revision deleted before its reconciler first ran still
		// has its branch removed, instead of coming back with the next sync.
		controllerutil.AddFinalizer(pr, kpov1.PackageRevisionFinalizer)
		if err := s.Create(ctx, pr); err != nil {
			return fmt.Errorf("creating: %w", err)
		}
	case !equality.Semantic.DeepEqual(before.ObjectMeta, pr.ObjectMeta) || before.Spec.Lifecycle != pr.Spec.Lifecycle:
		// Optimistic locking: spec.lifecycle follows Git only when no transition is pending,
		// which a stale copy cannot tell; a user's newer intent is never overwritten.
		err := s.Patch(ctx, pr, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(err) && !retried {
			fresh := &kpov1.PackageRevision{}
			if err := s.apiReader.Get(ctx, client.ObjectKeyFromObject(pr), fresh); err != nil {
				return fmt.Errorf("re-reading after a conflict: %w", err)
			}
			return s.applyRevision(ctx, rev, fresh, latest, true)
		}
		if apierrors.IsInvalid(err) {
			log.FromContext(ctx).Info("recreating package revision whose lifecycle changed in Git", "name", pr.Name, "lifecycle", rev.Lifecycle)
			return s.recreate(ctx, pr, rev, latest, retried)
		}
		if err != nil {
			return fmt.Errorf("updating: %w", err)
		}
	}
	return s.syncContentAndStatus(ctx, rev, pr)
}

// transitionPending reports whether spec.lifecycle may ask for something Git does not show
// yet: it differs from the lifecycle last read, or the user changed spec since that read. The
// second case is a move the manager made in Git and was killed before recording (a proposal
// pushed), followed by the user asking for the lifecycle the status still shows (a reject):
// Git then differs from a spec equal to the status, and only the generation tells the user's
// newer intent from another tool's move.
func transitionPending(pr *kpov1.PackageRevision) bool {
	return pr.Spec.Lifecycle != pr.Status.Lifecycle || pr.Generation != pr.Status.LifecycleGeneration
}

func (s *revisionSync) recreate(ctx context.Context, pr *kpov1.PackageRevision, rev discovery.Revision, latest, retried bool) error {
	if err := s.deleteRevision(ctx, pr); err != nil {
		return err
	}
	return s.applyRevision(ctx, rev, nil, latest, retried)
}

// setMeta sets the labels (the Repository's shard among them) and owner reference the manager
// owns.
func (s *revisionSync) setMeta(pr *kpov1.PackageRevision, rev discovery.Revision, latest bool) {
	labels := mergeMaps(pr.Labels, map[string]string{
		kpov1.RepositoryLabel: s.repo.Name,
		kpov1.PackageLabel:    discovery.PackageLabelValue(rev.Package),
	})
	setLabel(labels, kpov1.LatestRevisionLabel, latest)
	setLabel(labels, kpov1.DeploymentLabel, s.repo.Spec.Deployment)
	pr.Labels = withShard(labels, s.repo)
	_ = controllerutil.SetOwnerReference(s.repo, pr, s.Scheme())
}

// syncContentAndStatus keeps the content ConfigMap equal to the package's files and patches
// the Git projection in the status. Drafts and proposals have a content ConfigMap; a published
// revision only while its content is requested (contentWanted): it is deleted afterwards. Files are re-read only when the package's Git tree
// changed (or, for a package whose files could not be stored, when its lifecycle changed).
// A package whose files cannot be stored in a ConfigMap (too large, paths that cannot be
// keys, a symlink or submodule) gets no ConfigMap (status.resourcesRef unset; one written
// for an earlier tree is left as it was) and status.contentError says why; one whose files
// are stored but not valid (YAML, Kptfile) is synced as it is and status.contentWarning says
// what is wrong. Conditions are the PackageRevision reconciler's.
func (s *revisionSync) syncContentAndStatus(ctx context.Context, rev discovery.Revision, pr *kpov1.PackageRevision) error {
	tree, err := s.treeHash(rev)
	if err != nil {
		return fmt.Errorf("reading tree of %s at %s: %w", rev.Path, shortHash(rev.Commit), err)
	}
	before := pr.DeepCopy()
	st := &pr.Status
	st.Lifecycle = rev.Lifecycle
	st.LifecycleGeneration = pr.Generation
	st.Revision = rev.Revision
	st.Ref = rev.Ref
	if rev.Revision > 0 {
		publishedAt := metav1.NewTime(rev.PublishedAt)
		st.PublishedAt = &publishedAt
		st.PublishedBy = rev.PublishedBy
	}

	lifecycleChanged := before.Status.Lifecycle != st.Lifecycle
	unstorable := before.Status.ContentError != nil
	treeChanged := st.Tree != tree || st.Commit == ""
	// A revision synced before ContentValid existed was never checked: read it once more,
	// for the check only (its stored content is the tree's already).
	checkOnly := !treeChanged && !unstorable &&
		meta.FindStatusCondition(before.Status.Conditions, kpov1.ContentValidCondition) == nil
	var files map[string][]byte
	var readErr *kpov1.ContentError
	if treeChanged || (unstorable && lifecycleChanged) || checkOnly {
		files, err = s.readTree(rev)
		if readErr = unstorableTree(err); readErr == nil && err != nil {
			return fmt.Errorf("reading files: %w", err)
		}
		st.Upstream, st.UpstreamLock = upstreamOf(files)
		st.ContentWarning = contentWarning(files)
		unstorable = false
		if checkOnly {
			files = nil
		}
	}
	// The package on the registered branch keeps the commit its content was read at while its
	// tree stays the same: a commit for another package moves the branch, not this revision.
	if treeChanged || rev.Revision >= 0 {
		st.Commit = rev.Commit
	}
	st.Tree = tree
	if err := s.syncConflicts(rev, before, pr); err != nil {
		return err
	}
	wanted, _, _ := contentWanted(pr, time.Now())
	switch {
	case readErr != nil:
		st.ResourcesRef, st.ContentError = nil, readErr
	case !wanted:
		// Published and not requested: the content stays in Git alone. Whether it could be
		// stored is still checked, so a request for it fails with a reason known in advance.
		if files != nil {
			st.ContentError = nil
			if _, _, err := content.ToConfigMap(files); err != nil {
				st.ContentError = &kpov1.ContentError{Reason: contentReason(err), Message: truncateMessage(err.Error())}
			}
		}
		if st.ResourcesRef != nil {
			if err := s.deleteContent(ctx, pr); err != nil {
				return err
			}
			st.ResourcesRef = nil
		}
	case files != nil || (!unstorable && (lifecycleChanged || st.ResourcesRef == nil)):
		st.ContentError = nil
		if err := s.writeContent(ctx, rev, pr, files); err != nil {
			var ce *contentError
			if !errors.As(err, &ce) {
				return err
			}
			st.ResourcesRef = nil
			st.ContentError = &kpov1.ContentError{Reason: contentReason(err), Message: truncateMessage(ce.Error())}
		}
	}
	if before.Status.Lifecycle == "" && len(before.Status.Conditions) == 0 && immutableContent(pr) {
		// A new published revision: nothing but its Git projection decides its conditions, and
		// the PackageRevision reconciler has not written any (it waits for the projection).
		// Its first status is written complete, with the conditions the reconciler derives
		// (setRevisionConditions), which then finds nothing to change: one status write per
		// new revision instead of two.
		setRevisionConditions(pr, nil, nil)
		if err := s.patchStatus(ctx, before, pr); err != nil {
			return err
		}
		return dropManagedFields(ctx, s.Client, pr)
	}
	return s.patchStatus(ctx, before, pr)
}

// syncConflicts derives status.conflicts from the history of a Draft or a proposal when its
// commit (or lifecycle) changed; a published revision has none left to show.
func (s *revisionSync) syncConflicts(rev discovery.Revision, before, pr *kpov1.PackageRevision) error {
	st := &pr.Status
	if st.Lifecycle != kpov1.LifecycleDraft && st.Lifecycle != kpov1.LifecycleProposed {
		st.Conflicts = nil
		return nil
	}
	if before.Status.Commit == st.Commit && before.Status.Lifecycle == st.Lifecycle {
		return nil
	}
	s.gitMu.Lock()
	defer s.gitMu.Unlock()
	state, err := conflictState(s.src, rev.Commit, rev.Package, rev.Workspace)
	if err != nil {
		return err
	}
	st.Conflicts = state.Status()
	return nil
}

// unstorableTree returns the content error of a ReadTree failure that is the package's own
// (it holds something kpo cannot store), or nil for any other outcome.
func unstorableTree(err error) *kpov1.ContentError {
	var advice string
	switch {
	case errors.Is(err, git.ErrSymlink):
		advice = "kpo stores no symbolic links: replace the link with a copy of the file it points to (or remove it) in Git"
	case errors.Is(err, git.ErrSubmodule):
		advice = "kpo cannot store a submodule's content: copy the files into the package (or remove the submodule) in Git"
	default:
		return nil
	}
	return &kpov1.ContentError{Reason: kpov1.InvalidContentReason, Message: truncateMessage(err.Error() + ": " + advice)}
}

// contentWarning checks files read from Git with content.Validate: nil when they are
// valid, otherwise reason InvalidKptfile (a Kptfile is not valid) or InvalidContent, and a
// message naming every file and its error.
func contentWarning(files map[string][]byte) *kpov1.ContentError {
	if files == nil {
		return nil
	}
	err := content.Validate(files)
	if err == nil {
		return nil
	}
	reason := kpov1.InvalidContentReason
	if errors.Is(err, kptfile.ErrInvalid) {
		reason = kpov1.InvalidKptfileReason
	}
	return &kpov1.ContentError{Reason: reason, Message: truncateMessage(
		"the package is synced as Git holds it, but its files are not valid; fix them in Git or in a new draft: " + err.Error())}
}

// maxMessageLength keeps status messages well below a condition message's 32 KiB.
const maxMessageLength = 4096

// truncateMessage shortens msg to maxMessageLength bytes, on a character boundary.
func truncateMessage(msg string) string {
	if len(msg) <= maxMessageLength {
		return msg
	}
	return strings.ToValidUTF8(msg[:maxMessageLength-len(" … (truncated)")], "") + " … (truncated)"
}

// apiMessage is the API server's message for a refused object, without the rest of the chain.
func apiMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}

// patchStatus writes the Git projection, the status fields the sync owns (see the API
// types), when it changed. The merge patch holds only those fields, and no other writer writes
// them, so it needs no optimistic locking and never conflicts with the PackageRevision
// reconciler's writes of its own fields.
func (s *revisionSync) patchStatus(ctx context.Context, before, pr *kpov1.PackageRevision) error {
	if equality.Semantic.DeepEqual(before.Status, pr.Status) {
		return nil
	}
	if err := s.Status().Patch(ctx, pr, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("patching status: %w", err)
	}
	return nil
}

// contentError is a package whose files cannot be stored in its ConfigMap.
type contentError struct {
	err error
}

func (e *contentError) Error() string { return e.err.Error() }
func (e *contentError) Unwrap() error { return e.err }

// writeContent creates or updates the content ConfigMap (named like the PackageRevision,
// owned by it): its labels always, its files when files is not nil (or the ConfigMap is new).
func (s *revisionSync) writeContent(ctx context.Context, rev discovery.Revision, pr *kpov1.PackageRevision, files map[string][]byte) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: pr.Name, Namespace: pr.Namespace}}
	if files == nil {
		if err := s.Get(ctx, client.ObjectKeyFromObject(cm), cm); apierrors.IsNotFound(err) {
			files, err = s.readTree(rev)
			if ce := unstorableTree(err); ce != nil {
				return &contentError{err: errors.New(ce.Message)}
			}
			if err != nil {
				return fmt.Errorf("reading files: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("reading content config map: %w", err)
		}
	}
	var data map[string]string
	var binary map[string][]byte
	if files != nil {
		var err error
		if data, binary, err = content.ToConfigMap(files); err != nil {
			return &contentError{err: err}
		}
	}
	// The cache may still hold an older ConfigMap than one this process just wrote: retry on
	// conflict with a fresh read.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		_, err := controllerutil.CreateOrUpdate(ctx, s.Client, cm, func() error {
			cm.Labels = withShard(mergeMaps(cm.Labels, map[string]string{
				kpov1.RepositoryLabel: s.repo.Name,
				kpov1.PackageLabel:    discovery.PackageLabelValue(rev.Package),
				kpov1.ContentLabel:    "true",
				kpov1.LifecycleLabel:  string(rev.Lifecycle),
			}), s.repo)
			if files != nil && !hasUncommittedEdits(cm, content.Digest(files)) {
				cm.Data, cm.BinaryData = data, binary
				cm.Annotations = mergeMaps(cm.Annotations, map[string]string{
					kpov1.ContentCommitAnnotation: rev.Commit,
					kpov1.ContentDigestAnnotation: content.Digest(files),
				})
			}
			return controllerutil.SetControllerReference(pr, cm, s.Scheme())
		})
		return err
	}); err != nil {
		return fmt.Errorf("writing content config map: %w", err)
	}
	pr.Status.ResourcesRef = &corev1.LocalObjectReference{Name: cm.Name}
	return nil
}

// hasUncommittedEdits tells whether cm holds a user's edit that is neither what the manager
// last wrote nor the files about to be written: the PackageRevision reconciler commits it (or
// reports it invalid), and the sync must not overwrite it.
func hasUncommittedEdits(cm *corev1.ConfigMap, incoming string) bool {
	if cm.ResourceVersion == "" {
		return false
	}
	files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
	if err != nil {
		return true
	}
	current := content.Digest(files)
	return current != cm.Annotations[kpov1.ContentDigestAnnotation] && current != incoming
}

// setLabel sets key to "true" when on, and removes it otherwise.
func setLabel(labels map[string]string, key string, on bool) {
	if on {
		labels[key] = "true"
	} else {
		delete(labels, key)
	}
}

// mergeMaps returns base with over's entries set.
func mergeMaps(base, over map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}

// upstreamOf returns the Kptfile's upstream and upstreamLock, their URLs without userinfo (a
// Kptfile written by `kpt pkg get https://user:token@…` holds the token); a package without
// a valid Kptfile has neither.
func upstreamOf(files map[string][]byte) (*kpov1.Upstream, *kpov1.Upstream) {
	data, ok := files[kptfile.FileName]
	if !ok {
		return nil, nil
	}
	kf, err := kptfile.Decode(data)
	if err != nil {
		return nil, nil
	}
	var up, lock *kpov1.Upstream
	if u := kf.Upstream; u != nil && u.Git != nil {
		up = &kpov1.Upstream{Type: string(u.Type), Git: &kpov1.UpstreamGit{Repo: git.RedactURL(u.Git.Repo), Directory: u.Git.Directory, Ref: u.Git.Ref}}
	}
	if l := kf.UpstreamLock; l != nil && l.Git != nil {
		lock = &kpov1.Upstream{Type: string(l.Type), Git: &kpov1.UpstreamGit{Repo: git.RedactURL(l.Git.Repo), Directory: l.Git.Directory, Ref: l.Git.Ref, Commit: l.Git.Commit}}
	}
	return up, lock
}

// deleteRevision deletes a PackageRevision whose ref vanished from Git, and its ConfigMap.
func (s *revisionSync) deleteRevision(ctx context.Context, pr *kpov1.PackageRevision) error {
	if err := s.Delete(ctx, pr); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting package revision %s: %w", pr.Name, err)
	}
	return s.deleteContent(ctx, pr)
}

// deleteContent deletes the content ConfigMap of a revision.
func (s *revisionSync) deleteContent(ctx context.Context, pr *kpov1.PackageRevision) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: pr.Name, Namespace: pr.Namespace}}
	if err := s.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting config map %s: %w", pr.Name, err)
	}
	return nil
}

// syncPackage re-reads one package's revisions from Git into its PackageRevisions and
// ConfigMaps, after a write by this process.
func syncPackage(ctx context.Context, c client.Client, reader client.Reader, repo *kpov1.Repository, src *git.Repo, pkg string) error {
	revs, err := discovery.Discover(src, discovery.Options{
		Branch: branchOf(repo), Directory: repo.Spec.Git.Directory, Package: pkg,
	})
	if err != nil {
		return fmt.Errorf("re-reading package %s: %w", pkg, err)
	}
	s := &revisionSync{Client: c, apiReader: reader, repo: repo, src: src}
	return s.apply(ctx, revs, pkg)
}
