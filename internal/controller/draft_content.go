package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/conflicts"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/kptfile"
)

// sourceRetry is how soon a draft whose source revision does not exist yet looks again.
const sourceRetry = 15 * time.Second

// draftBuilder builds the files of a new draft from its PackageDraft's source.
type draftBuilder struct {
	client.Client
	git *gitAccess
	// shard reads source revisions served by another shard.
	shard *shard
	draft *kpov1.PackageDraft
	repo  *kpov1.Repository
	// src is the target repository's clone, already locked and fetched.
	src *git.Repo
	// conflicts are the conflicts an upgrade with allowConflicts kept, for the first commit.
	conflicts []conflicts.Record
}

// build returns the draft's files and the kpt task name (init, clone, copy).
func (b *draftBuilder) build(ctx context.Context) (map[string][]byte, string, error) {
	s := b.draft.Spec.Source
	switch {
	case s.Init != nil:
		files, err := kptfile.InitFiles(lastSegment(b.draft.Spec.PackageName), s.Init.Description, s.Init.Keywords, s.Init.Site)
		if err != nil {
			return nil, "", terminal(kpov1.InvalidContentReason, err)
		}
		return b.forDeployment(files), "init", nil
	case s.Clone != nil && s.Clone.UpstreamRef != nil:
		files, err := b.cloneRevision(ctx, s.Clone.UpstreamRef.Name)
		return files, "clone", err
	case s.Clone != nil && s.Clone.Git != nil:
		files, err := b.cloneGit(ctx, s.Clone.Git)
		return files, "clone", err
	case s.Copy != nil:
		files, err := b.copyRevision(ctx, s.Copy.SourceRef.Name)
		return files, "copy", err
	case s.Upgrade != nil:
		files, err := b.upgradeRevision(ctx, s.Upgrade)
		return files, "upgrade", err
	}
	return nil, "", terminal(kpov1.UnsupportedSourceReason, errors.New("the PackageDraft has no source: set one of init, clone, copy and upgrade"))
}

// publishedSource returns a published PackageRevision, its Repository and the revision's
// package path from the repository root; they may be another shard's.
func (b *draftBuilder) publishedSource(ctx context.Context, name string) (*kpov1.PackageRevision, *kpov1.Repository, string, error) {
	pr := &kpov1.PackageRevision{}
	if err := b.shard.get(ctx, b.Client, client.ObjectKey{Namespace: b.draft.Namespace, Name: name}, pr); err != nil {
		if apierrors.IsNotFound(err) {
			// It may appear with the next sync of its repository (a GitOps apply of both at once).
			return nil, nil, "", &stepError{Reason: kpov1.SourceNotFoundReason, RetryAfter: sourceRetry,
				Err: fmt.Errorf("package revision %q does not exist in namespace %q", name, b.draft.Namespace)}
		}
		return nil, nil, "", err
	}
	if pr.Status.Lifecycle != kpov1.LifecyclePublished || pr.Status.Revision < 1 {
		return nil, nil, "", terminal(kpov1.SourceNotPublishedReason, fmt.Errorf(
			"package revision %q is %s, not a published revision: copy and clone only from published revisions (approve it first)", name, pr.Status.Lifecycle))
	}
	repo := &kpov1.Repository{}
	if err := b.shard.get(ctx, b.Client, client.ObjectKey{Namespace: pr.Namespace, Name: pr.Spec.Repository}, repo); err != nil {
		return nil, nil, "", fmt.Errorf("reading repository %q of %s: %w", pr.Spec.Repository, name, err)
	}
	return pr, repo, discovery.PackagePath(repo.Spec.Git.Directory, pr.Spec.PackageName), nil
}

// cloneRevision copies a published revision of a registered repository, recording it as the
// upstream in the Kptfile as kpt pkg get does.
func (b *draftBuilder) cloneRevision(ctx context.Context, name string) (map[string][]byte, error) {
	pr, upRepo, upPath, err := b.publishedSource(ctx, name)
	if err != nil {
		return nil, err
	}
	src := b.src
	if upRepo.UID != b.repo.UID {
		if src, err = b.git.open(ctx, upRepo); err != nil {
			return nil, err
		}
	}
	files, err := readPackage(src, pr.Status.Commit, upPath, name)
	if err != nil {
		return nil, err
	}
	tag := strings.TrimPrefix(git.TagRef(upPath, pr.Status.Revision), "refs/tags/")
	return b.withUpstream(files, upRepo.Spec.Git.Repo, upPath, tag, pr.Status.Commit)
}

// cloneGit copies a package from any Git repository, ref and directory.
func (b *draftBuilder) cloneGit(ctx context.Context, g *kpov1.GitSource) (map[string][]byte, error) {
	src, err := b.git.openURL(ctx, b.draft.Namespace, g.Repo, g.SecretRef)
	if err != nil {
		return nil, err
	}
	commit, err := src.Resolve(g.Ref)
	if err != nil {
		return nil, terminal(kpov1.SourceNotFoundReason, err)
	}
	dir := strings.Trim(g.Directory, "/")
	files, err := readPackage(src, commit, dir, fmt.Sprintf("directory %q at %s of %s", "/"+dir, g.Ref, git.RedactURL(g.Repo)))
	if errors.Is(err, git.ErrNotFound) {
		return nil, terminal(kpov1.SourceNotFoundReason, fmt.Errorf("directory %q does not exist at %s of %s", "/"+dir, g.Ref, git.RedactURL(g.Repo)))
	}
	if err != nil {
		return nil, err
	}
	return b.withUpstream(files, g.Repo, dir, g.Ref, commit)
}

// copyRevision starts a new revision of the same package from a published one.
func (b *draftBuilder) copyRevision(ctx context.Context, name string) (map[string][]byte, error) {
	pr, repo, pkgPath, err := b.publishedSource(ctx, name)
	if err != nil {
		return nil, err
	}
	if repo.UID != b.repo.UID || pr.Spec.PackageName != b.draft.Spec.PackageName {
		return nil, terminal(kpov1.SourceNotFoundReason, fmt.Errorf(
			"copy makes a new revision of the same package: %s is package %q of repository %q; use clone for another package",
			name, pr.Spec.PackageName, pr.Spec.Repository))
	}
	return readPackage(b.src, pr.Status.Commit, pkgPath, name)
}

// readPackage reads the files of a draft's source package. A package kpo cannot hold (it has a
// symlink or a submodule) is refused for good with reason InvalidContent; what names the source in messages.
func readPackage(src *git.Repo, commit, dir, what string) (map[string][]byte, error) {
	files, err := src.ReadTree(commit, dir)
	switch {
	case errors.Is(err, git.ErrSymlink), errors.Is(err, git.ErrSubmodule):
		return nil, terminal(kpov1.InvalidContentReason, fmt.Errorf("reading %s: %w", what, err))
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return files, nil
}

// withUpstream names the clone after its new package, records upstream and upstreamLock in its
// Kptfile (creating one, as kpt pkg get does, when the source has none) and adds the
// package context for deployment repositories.
func (b *draftBuilder) withUpstream(files map[string][]byte, repoURL, dir, ref, commit string) (map[string][]byte, error) {
	name := lastSegment(b.draft.Spec.PackageName)
	kf := kptfile.NewInit(name, "", nil, "")
	kf.Info = nil
	if data, ok := files[kptfile.FileName]; ok {
		decoded, err := kptfile.Decode(data)
		if err != nil {
			return nil, terminal(kpov1.InvalidContentReason, fmt.Errorf("the upstream package's Kptfile: %w", err))
		}
		kf = decoded
	}
	kf.Metadata.Name = name
	directory := "/" + strings.Trim(dir, "/")
	kf.Upstream = &kptfile.Upstream{Type: kptfile.GitOrigin, UpdateStrategy: kptfile.ResourceMerge,
		Git: &kptfile.Git{Repo: repoURL, Directory: directory, Ref: ref}}
	kf.UpstreamLock = &kptfile.UpstreamLock{Type: kptfile.GitOrigin,
		Git: &kptfile.GitLock{Repo: repoURL, Directory: directory, Ref: ref, Commit: commit}}
	data, err := kptfile.Encode(kf)
	if err != nil {
		return nil, err
	}
	files[kptfile.FileName] = data
	return b.forDeployment(files), nil
}

// forDeployment adds package-context.yaml, named after the package, when the target
// repository is a deployment repository (kpt's --for-deployment).
func (b *draftBuilder) forDeployment(files map[string][]byte) map[string][]byte {
	if b.repo.Spec.Deployment {
		files[kptfile.PackageContextFile] = kptfile.PackageContext(lastSegment(b.draft.Spec.PackageName))
	}
	return files
}
