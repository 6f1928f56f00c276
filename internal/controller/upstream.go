package controller

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
)

// upstreamIndex indexes PackageRevisions by the upstream package their upstreamLock names
// (upstreamKey), so a publication upstream finds its downstreams.
const upstreamIndex = "kpo.dev/upstream"

// upstreamKey identifies an upstream package by repository URL and path from its root.
func upstreamKey(repoURL, path string) string {
	return strings.TrimSuffix(strings.TrimSuffix(repoURL, "/"), ".git") + "//" + strings.Trim(path, "/")
}

// indexUpstream is the upstreamIndex of a PackageRevision.
func indexUpstream(obj client.Object) []string {
	pr := obj.(*kpov1.PackageRevision)
	if l := pr.Status.UpstreamLock; l != nil && l.Git != nil {
		return []string{upstreamKey(l.Git.Repo, l.Git.Directory)}
	}
	return nil
}

// downstreamsOf maps a published PackageRevision to the PackageRevisions cloned from its
// package, so their upstream status follows a new publication.
func (r *PackageRevisionReconciler) downstreamsOf(ctx context.Context, obj client.Object) []reconcile.Request {
	pr := obj.(*kpov1.PackageRevision)
	if pr.Status.Revision < 1 {
		return nil
	}
	repo := &kpov1.Repository{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: pr.Namespace, Name: pr.Spec.Repository}, repo); err != nil {
		return nil
	}
	key := upstreamKey(repo.Spec.Git.Repo, discovery.PackagePath(repo.Spec.Git.Directory, pr.Spec.PackageName))
	list := &kpov1.PackageRevisionList{}
	if err := r.List(ctx, list, client.InNamespace(pr.Namespace), client.MatchingFields{upstreamIndex: key}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, d := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&d)})
	}
	return reqs
}

// reconcileUpstream finds, for a package cloned from a registered repository, the upstream
// revision it is based on and the newest published one, and sets status.upstreamRevision,
// status.latestUpstreamRevision and the kpo.dev/upstream-behind label.
func (r *PackageRevisionReconciler) reconcileUpstream(ctx context.Context, s *revisionScope) error {
	pr := s.pr
	based, latest, err := r.upstreamRevisions(ctx, pr)
	if err != nil {
		return err
	}
	s.upstream = &[2]string{nameOf(based), nameOf(latest)}
	// Only the newest published revision of a package needs upgrading; older ones are history.
	behind := based != nil && latest != nil && latest.Status.Revision > based.Status.Revision &&
		pr.Labels[kpov1.LatestRevisionLabel] == "true"
	if behind == (pr.Labels[kpov1.UpstreamBehindLabel] == "true") {
		return nil
	}
	patch := client.MergeFrom(pr.DeepCopy())
	if behind {
		pr.Labels = mergeMaps(pr.Labels, map[string]string{kpov1.UpstreamBehindLabel: "true"})
	} else {
		delete(pr.Labels, kpov1.UpstreamBehindLabel)
	}
	if err := r.Patch(ctx, pr, patch); err != nil {
		return fmt.Errorf("labelling upstream-behind: %w", err)
	}
	return nil
}

// upstreamRevisions returns the registered revision pr's upstreamLock names and the newest
// published revision of the same package (nil when the upstream is not registered here).
func (r *PackageRevisionReconciler) upstreamRevisions(ctx context.Context, pr *kpov1.PackageRevision) (based, latest *kpov1.PackageRevision, err error) {
	lock := pr.Status.UpstreamLock
	if lock == nil || lock.Git == nil || pr.Status.Revision < 0 {
		// The package as it stands on the registered branch is tracked by its revisions.
		return nil, nil, nil
	}
	ref, ok := git.ParsePackageRef("refs/tags/" + lock.Git.Ref)
	path := strings.Trim(lock.Git.Directory, "/")
	if !ok || ref.Kind != git.RefPublished || ref.Package != path {
		return nil, nil, nil // cloned from a branch or commit, not from a published revision
	}
	repos := &kpov1.RepositoryList{}
	if err := r.List(ctx, repos, client.InNamespace(pr.Namespace)); err != nil {
		return nil, nil, err
	}
	for _, repo := range repos.Items {
		if upstreamKey(repo.Spec.Git.Repo, path) != upstreamKey(lock.Git.Repo, path) {
			continue
		}
		pkg, ok := strings.CutPrefix(path, discovery.NormalizeDirectory(repo.Spec.Git.Directory)+"/")
		if discovery.NormalizeDirectory(repo.Spec.Git.Directory) == "" {
			pkg, ok = path, true
		}
		if !ok {
			continue
		}
		revs := &kpov1.PackageRevisionList{}
		if err := r.List(ctx, revs, client.InNamespace(pr.Namespace), ofPackage(repo.Name, pkg)); err != nil {
			return nil, nil, err
		}
		for i := range revs.Items {
			c := &revs.Items[i]
			if c.Status.Lifecycle != kpov1.LifecyclePublished {
				continue
			}
			if c.Status.Revision == ref.Revision {
				based = c
			}
			if latest == nil || c.Status.Revision > latest.Status.Revision {
				latest = c
			}
		}
		if based != nil {
			return based, latest, nil
		}
	}
	return based, latest, nil
}

func nameOf(pr *kpov1.PackageRevision) string {
	if pr == nil {
		return ""
	}
	return pr.Name
}
