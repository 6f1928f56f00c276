package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/git"
)

// Options wire the controllers to their dependencies.
type Options struct {
	// GitCache holds the local clones of registered repositories.
	GitCache *git.Cache
	// RepositoryWorkers bounds parallel Repository syncs.
	RepositoryWorkers int
	// Render renders draft content through its Kptfile pipelines before it is committed; nil
	// commits content as given.
	Render Renderer
	// Shard selects the Repositories this manager serves (ShardSelector); nil serves them all.
	// The manager's cache must be built with ShardCacheOptions of the same selector.
	Shard labels.Selector
	// GitOpsRecheck is how often the manager looks for the kinds of a GitOps tool installed
	// after it started (deployment status); 0 is a minute.
	GitOpsRecheck time.Duration
}

// SetupWithManager registers every kpo controller with mgr. They share one Git access, so
// work on one repository is serialised across them.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kpov1.PackageRevision{}, revisionIndex, revisionIndexKeys); err != nil {
		return err
	}
	access := &gitAccess{apiReader: mgr.GetAPIReader(), cache: opts.GitCache}
	shard := &shard{selector: opts.Shard, apiReader: mgr.GetAPIReader()}
	if err := (&RepositoryReconciler{
		Client:                  mgr.GetClient(),
		git:                     access,
		shard:                   shard,
		Recorder:                mgr.GetEventRecorderFor("kpo-repository"),
		MaxConcurrentReconciles: opts.RepositoryWorkers,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&PackageRevisionReconciler{
		Client:   mgr.GetClient(),
		git:      access,
		shard:    shard,
		render:   opts.Render,
		Recorder: mgr.GetEventRecorderFor("kpo-packagerevision"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&PackageDraftReconciler{
		Client:   mgr.GetClient(),
		git:      access,
		shard:    shard,
		render:   opts.Render,
		Recorder: mgr.GetEventRecorderFor("kpo-packagedraft"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&PackageVariantReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		git:       access,
		shard:     shard,
		Recorder:  mgr.GetEventRecorderFor("kpo-packagevariant"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&PackageVariantSetReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		shard:     shard,
		Recorder:  mgr.GetEventRecorderFor("kpo-packagevariantset"),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	// Deployment status, for the GitOps tools whose kinds are served (now, or once installed).
	return (&DeploymentStatusReconciler{Client: mgr.GetClient(), Recheck: opts.GitOpsRecheck}).SetupWithManager(mgr)
}

// CacheOptions caches the metadata of kpo's own ConfigMaps only, never every ConfigMap of the
// cluster and never their content, and no object's managed fields, which nothing reads.
func CacheOptions() cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Label: labels.SelectorFromSet(labels.Set{kpov1.ContentLabel: "true"})},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	}
}

// ClientOptions make the manager's client read ConfigMaps from the API server: their content is
// read only when acted on, so it is not cached (CacheOptions watches their metadata).
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.ConfigMap{}}}}
}

// revisionIndex indexes PackageRevisions in the manager's cache by repository, and by
// repository and package: a sync, a package count or an upstream lookup reads the revisions it
// needs without scanning every PackageRevision of the namespace (tens of thousands in a large
// installation). Repository names hold no "/", so the two keys never collide.
const revisionIndex = "kpo.dev/revision-of"

func revisionIndexKeys(obj client.Object) []string {
	pr := obj.(*kpov1.PackageRevision)
	return []string{pr.Spec.Repository, pr.Spec.Repository + "/" + pr.Spec.PackageName}
}

// ofRepository selects, from the manager's cache, the PackageRevisions of repository repo
// (in the namespace the List is given).
func ofRepository(repo string) client.MatchingFields {
	return client.MatchingFields{revisionIndex: repo}
}

// ofPackage selects, from the manager's cache, the PackageRevisions of package pkg of repo.
func ofPackage(repo, pkg string) client.MatchingFields {
	return client.MatchingFields{revisionIndex: repo + "/" + pkg}
}
