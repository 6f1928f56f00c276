package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/conflicts"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/merge"
)

// maxConflictsShown bounds the conflicts listed in a condition message.
const maxConflictsShown = 20

// upgradeRevision builds a new revision of the downstream package current by merging the
// change from oldUpstream to newUpstream into it, as kpt pkg update does. Conflicts are
// reported per resource and nothing is created, unless spec.upgrade.allowConflicts keeps them.
func (b *draftBuilder) upgradeRevision(ctx context.Context, u *kpov1.UpgradeSource) (map[string][]byte, error) {
	current, curRepo, curPath, err := b.publishedSource(ctx, u.Current.Name)
	if err != nil {
		return nil, err
	}
	if curRepo.UID != b.repo.UID || current.Spec.PackageName != b.draft.Spec.PackageName {
		return nil, terminal(kpov1.SourceNotFoundReason, fmt.Errorf(
			"an upgrade makes a new revision of the current package: %s is package %q of repository %q, the draft is %q of %q",
			current.Name, current.Spec.PackageName, current.Spec.Repository, b.draft.Spec.PackageName, b.repo.Name))
	}
	local, err := readPackage(b.src, current.Status.Commit, curPath, current.Name)
	if err != nil {
		return nil, err
	}
	return b.mergeUpstream(ctx, u.OldUpstream.Name, u.NewUpstream.Name, local, kptfile.UpdateStrategy(u.Strategy), u.AllowConflicts)
}

// mergeUpstream merges the change from published revision oldUp to newUp into the files
// local, as kpt pkg update does, and points the Kptfile's upstream and upstreamLock at newUp.
// With allowConflicts, conflicts are kept (withConflicts); otherwise they refuse the merge.
func (b *draftBuilder) mergeUpstream(ctx context.Context, oldUp, newUp string, local map[string][]byte,
	strategy kptfile.UpdateStrategy, allowConflicts bool) (map[string][]byte, error) {
	origin, _, _, err := b.readPublished(ctx, oldUp)
	if err != nil {
		return nil, err
	}
	upstream, upRepoURL, upPath, err := b.readPublished(ctx, newUp)
	if err != nil {
		return nil, err
	}
	target, _, err := b.publishedRevisionRef(ctx, newUp)
	if err != nil {
		return nil, err
	}
	if strategy == "" {
		strategy = kptfile.ResourceMerge
	}
	dir := "/" + upPath
	ref := strings.TrimPrefix(git.TagRef(upPath, target.Status.Revision), "refs/tags/")
	result, err := merge.Update(merge.Input{
		Origin: origin, Upstream: upstream, Local: local, Strategy: strategy,
		NewUpstream: &kptfile.Upstream{Type: kptfile.GitOrigin, UpdateStrategy: strategy,
			Git: &kptfile.Git{Repo: upRepoURL, Directory: dir, Ref: ref}},
		NewLock: &kptfile.UpstreamLock{Type: kptfile.GitOrigin,
			Git: &kptfile.GitLock{Repo: upRepoURL, Directory: dir, Ref: ref, Commit: target.Status.Commit}},
	})
	switch {
	case errors.Is(err, merge.ErrConflicts) && allowConflicts:
		return b.withConflicts(result, err)
	case errors.Is(err, merge.ErrConflicts):
		return nil, terminal(kpov1.MergeConflictReason, fmt.Errorf("%w: %s", err, describeConflicts(result.Conflicts)))
	case errors.Is(err, merge.ErrLocalChanges):
		return nil, terminal(kpov1.LocalChangesReason, fmt.Errorf("%w: use strategy resource-merge to keep them, or force-delete-replace to drop them", err))
	case err != nil:
		return nil, terminal(kpov1.InvalidContentReason, fmt.Errorf("merging %s into the package: %w", newUp, err))
	}
	return result.Files, nil
}

// withConflicts keeps the result of a merge with conflicts, as spec.upgrade.allowConflicts
// asks: each conflicting field set to upstream's value (what kpt pkg update keeps, and what
// the merge keeps for most of them), the conflicts recorded for the draft's first commit. An
// upgrade whose conflicts cannot be recorded is refused as without allowConflicts.
func (b *draftBuilder) withConflicts(result merge.Result, mergeErr error) (map[string][]byte, error) {
	records, err := conflicts.FromMerge(result.Conflicts)
	if err != nil {
		return nil, terminal(kpov1.MergeConflictReason, fmt.Errorf("%w: %w; resolve them in a draft of your own: %s",
			mergeErr, err, describeConflicts(result.Conflicts)))
	}
	files := result.Files
	for _, r := range records {
		if files, err = merge.SetField(files, r.Ref(), r.Upstream); err != nil {
			return nil, terminal(kpov1.MergeConflictReason, fmt.Errorf("%w: keeping upstream's value of %s %s: %w", mergeErr, r.File, r.Field, err))
		}
	}
	b.conflicts = records
	return files, nil
}

// readPublished reads a published revision's files and says where its package lives.
func (b *draftBuilder) readPublished(ctx context.Context, name string) (files map[string][]byte, repoURL, path string, err error) {
	pr, repo, path, err := b.publishedSource(ctx, name)
	if err != nil {
		return nil, "", "", err
	}
	src := b.src
	if repo.UID != b.repo.UID {
		if src, err = b.git.open(ctx, repo); err != nil {
			return nil, "", "", err
		}
	}
	if files, err = readPackage(src, pr.Status.Commit, path, name); err != nil {
		return nil, "", "", err
	}
	return files, repo.Spec.Git.Repo, path, nil
}

// publishedRevisionRef returns a published PackageRevision and its Repository.
func (b *draftBuilder) publishedRevisionRef(ctx context.Context, name string) (*kpov1.PackageRevision, *kpov1.Repository, error) {
	pr, repo, _, err := b.publishedSource(ctx, name)
	return pr, repo, err
}

// describeConflicts lists conflicts as "file: resource: field: message".
func describeConflicts(conflicts []merge.Conflict) string {
	var parts []string
	for i, c := range conflicts {
		if i == maxConflictsShown {
			parts = append(parts, fmt.Sprintf("and %d more", len(conflicts)-i))
			break
		}
		parts = append(parts, strings.Join(nonEmpty(c.File, c.Resource, c.Field, c.Message), ": "))
	}
	return strings.Join(parts, "; ")
}

func nonEmpty(values ...string) []string {
	var out []string
	for _, v := range values {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
