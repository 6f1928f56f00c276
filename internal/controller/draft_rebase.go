package controller

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/conflicts"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/kptfile"
)

// rebaseTrailer names, in a rebase commit, the upstream revision the draft was rebased onto.
const rebaseTrailer = "Kpo-Rebase: "

// reconcileRebase carries out the kpo.dev/rebase-onto annotation of a Draft: the change from
// the draft's upstream revision to the named one is merged into the draft's content (as an
// upgrade does, conflicts kept and recorded), rendered, and committed to the draft branch;
// then the annotation is removed. A draft whose upstreamLock already pins the named revision is
// rebased: after a crash between the commit and the removal, only the removal is left to do.
// Refusals (InvalidRebase, UnresolvedConflicts, MergeConflict beyond what can be recorded)
// write nothing.
func (r *PackageRevisionReconciler) reconcileRebase(ctx context.Context, s *revisionScope) error {
	pr, repo := s.pr, s.repo
	onto, files, err := draftRequest(s, kpov1.RebaseOntoAnnotation, kpov1.InvalidRebaseReason, "only a Draft can be rebased")
	if files == nil || err != nil {
		return err
	}
	base := pr.Status.UpstreamRevision
	switch {
	case base == "" && (pr.Status.UpstreamLock == nil || pr.Status.UpstreamLock.Git == nil):
		return terminal(kpov1.InvalidRebaseReason, fmt.Errorf(
			"%s has no upstream (its Kptfile has no upstreamLock): only a draft cloned from a registered repository can be rebased", pr.Name))
	case base == "":
		// The upstream revision is looked up after each sync (reconcileUpstream); it may be
		// registered later, or never: say so, and look again.
		return &stepError{Reason: kpov1.InvalidRebaseReason, RetryAfter: sourceRetry, Err: fmt.Errorf(
			"%s: no registered PackageRevision is the upstream its upstreamLock pins (status.upstreamRevision): register its repository, or remove annotation %s",
			pr.Name, kpov1.RebaseOntoAnnotation)}
	}
	unlock := r.git.lock(repo)
	done, err := r.rebase(ctx, s, onto, base, files)
	unlock()
	if err != nil || !done {
		return err
	}
	return r.forgetAnnotations(ctx, pr, kpov1.RebaseOntoAnnotation, onto)
}

// rebase merges and commits; done says the draft stands on onto (now or before).
func (r *PackageRevisionReconciler) rebase(ctx context.Context, s *revisionScope, onto, base string, files map[string][]byte) (bool, error) {
	pr, repo := s.pr, s.repo
	src, err := r.git.open(ctx, repo)
	if err != nil {
		return false, err
	}
	path := discovery.PackagePath(repo.Spec.Git.Directory, pr.Spec.PackageName)
	ref := git.DraftRef(path, pr.Spec.WorkspaceName)
	if head, ok := src.Ref(ref); !ok || head != pr.Status.Commit {
		return false, syncPackage(ctx, r.Client, r.git.apiReader, repo, src, pr.Spec.PackageName)
	}
	b := &draftBuilder{Client: r.Client, git: r.git, shard: r.shard, repo: repo, src: src,
		draft: &kpov1.PackageDraft{ObjectMeta: pr.ObjectMeta}}
	target, targetRepo, _, err := b.publishedSource(ctx, onto)
	if err != nil {
		return false, err
	}
	from, fromRepo, _, err := b.publishedSource(ctx, base)
	if err != nil {
		return false, err
	}
	if targetRepo.UID != fromRepo.UID || target.Spec.PackageName != from.Spec.PackageName {
		return false, terminal(kpov1.InvalidRebaseReason, fmt.Errorf(
			"%s is package %q of repository %q, but %s is based on package %q of repository %q: rebase onto a revision of its own upstream",
			onto, target.Spec.PackageName, target.Spec.Repository, pr.Name, from.Spec.PackageName, from.Spec.Repository))
	}
	kf, err := kptfile.Decode(files[kptfile.FileName])
	if err != nil {
		return false, terminal(kpov1.InvalidContentReason, fmt.Errorf("the draft's Kptfile: %w", err))
	}
	if kf.UpstreamLock != nil && kf.UpstreamLock.Git != nil && kf.UpstreamLock.Git.Commit == target.Status.Commit {
		return true, nil
	}
	if err := refuseUnresolved(src, pr, pr.Status.Commit); err != nil {
		return false, err
	}
	var strategy kptfile.UpdateStrategy
	if kf.Upstream != nil {
		strategy = kf.Upstream.UpdateStrategy
	}
	merged, err := b.mergeUpstream(ctx, base, onto, files, strategy, true)
	if err != nil {
		return false, err
	}
	rendered, err := r.renderForCommit(ctx, s, merged, "not rebased")
	if err != nil {
		return false, err
	}
	nc := editCommit(repo, pr, nil)
	summary := fmt.Sprintf("Rebase %s onto %s\n\n%s%s\n%s", pr.Spec.PackageName, onto, rebaseTrailer, onto,
		strings.TrimSuffix(conflicts.Trailers(b.conflicts), "\n"))
	nc.Message = commitMessage(summary, pr.Spec.PackageName, pr.Spec.WorkspaceName, 0, "edit", "")
	nc.Dir, nc.Files, nc.AllowEmpty = path, rendered, true
	return true, r.commitToDraft(ctx, src, s, ref, nc, "the rebase")
}

// forgetAnnotations removes a carried-out request annotation (and the others named), unless
// the user changed it meanwhile.
func (r *PackageRevisionReconciler) forgetAnnotations(ctx context.Context, pr *kpov1.PackageRevision, key, applied string, also ...string) error {
	fresh := &kpov1.PackageRevision{}
	if err := r.git.apiReader.Get(ctx, client.ObjectKeyFromObject(pr), fresh); err != nil {
		return client.IgnoreNotFound(err)
	}
	if v, ok := fresh.Annotations[key]; !ok || v != applied {
		return nil // a newer request: the next reconcile carries it out
	}
	patch := client.MergeFromWithOptions(fresh.DeepCopy(), client.MergeFromWithOptimisticLock{})
	delete(fresh.Annotations, key)
	for _, k := range also {
		delete(fresh.Annotations, k)
	}
	if err := r.Patch(ctx, fresh, patch); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("removing annotation %s: %w", key, err)
	}
	return nil
}
