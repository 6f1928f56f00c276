package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// Sharding, as Flux does it: several manager instances, each given a label selector over the
// shard key label kpo.dev/shard of Repositories (--watch-label-selector). An instance caches only
// the Repositories its selector matches and, because the sync copies the label to them, only
// their PackageRevisions and content ConfigMaps; so it acts on its shard alone, and a Repository
// moves to another shard when its label changes. PackageDrafts carry no label: every instance
// caches them all and acts on one only when its Repository is in its shard.

// ShardSelector parses a --watch-label-selector: Kubernetes label selector syntax over the shard
// key label only ("kpo.dev/shard=a", "kpo.dev/shard in (a,b)", "!kpo.dev/shard" for the instance
// that serves unlabelled Repositories). Other keys are refused: PackageRevisions and ConfigMaps
// carry kpo.dev/shard from their Repository, no other label of it, so a selector over another key
// would leave them out of the cache. An empty selector selects everything: no sharding.
func ShardSelector(s string) (labels.Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("watch label selector %q: %w", s, err)
	}
	reqs, _ := sel.Requirements()
	for _, req := range reqs {
		if req.Key() != kpov1.ShardLabel {
			return nil, fmt.Errorf("watch label selector %q: select Repositories by the shard key label %s only, not by %s",
				s, kpov1.ShardLabel, req.Key())
		}
	}
	return sel, nil
}

// defaultLeaderElectionID is the Lease of the manager that serves unlabelled Repositories.
const defaultLeaderElectionID = "kpo-manager.kpo.dev"

// LeaderElectionID is the name of the Lease the replicas of one shard elect their leader with.
// Each shard has its own (a hash of the selector's canonical form, as Flux derives it), so the
// Deployments of several shards never wait on each other; but the instance that serves the
// Repositories without a shard label — an unsharded manager, or the main instance
// ("!kpo.dev/shard") — keeps kpo-manager.kpo.dev: adding the flag to an existing installation
// never runs two leaders while its Deployment rolls, and two instances misconfigured to serve
// the unlabelled Repositories both elect on one Lease instead of both acting.
func LeaderElectionID(shard labels.Selector) string {
	if shard == nil || shard.Matches(labels.Set{}) {
		return defaultLeaderElectionID
	}
	sum := sha256.Sum256([]byte(shard.String()))
	return "kpo-manager-" + hex.EncodeToString(sum[:4]) + ".kpo.dev"
}

// ShardCacheOptions is CacheOptions for one shard: Repositories and PackageRevisions selected by
// shard, and content ConfigMaps by both the content label and shard. PackageDrafts and everything
// else are cached as CacheOptions says.
func ShardCacheOptions(shard labels.Selector) cache.Options {
	opts := CacheOptions()
	if shard == nil || shard.Empty() {
		return opts
	}
	reqs, _ := shard.Requirements()
	for obj, by := range opts.ByObject {
		if _, ok := obj.(*corev1.ConfigMap); ok {
			if by.Label == nil {
				by.Label = labels.Everything()
			}
			by.Label = by.Label.Add(reqs...)
			opts.ByObject[obj] = by
		}
	}
	opts.ByObject[&kpov1.Repository{}] = cache.ByObject{Label: shard}
	opts.ByObject[&kpov1.PackageRevision{}] = cache.ByObject{Label: shard}
	return opts
}

// shard is the part of the Repositories this manager serves. A nil shard, or one without a
// selector, serves them all.
type shard struct {
	selector labels.Selector
	// apiReader reads past the cache: what another shard serves is not in it.
	apiReader client.Reader
}

// sharded reports whether this manager serves only some Repositories.
func (s *shard) sharded() bool {
	return s != nil && s.selector != nil && !s.selector.Empty()
}

// writesForMissing reports whether this manager is the one that reports on PackageDrafts naming
// a Repository that does not exist: the instance whose selector matches a Repository without
// labels (the unsharded one, "!kpo.dev/shard", or a manager without sharding). With disjoint
// selectors there is exactly one such instance, or none.
func (s *shard) writesForMissing() bool {
	return !s.sharded() || s.selector.Matches(labels.Set{})
}

// placement says where the Repository an object names is served.
type placement int

const (
	// servedHere: the Repository is in this manager's cache.
	servedHere placement = iota
	// servedElsewhere: the Repository exists in another shard; that shard's manager acts.
	servedElsewhere
	// notCachedYet: the Repository is in this manager's shard but not in its cache yet.
	notCachedYet
	// missing: the Repository does not exist.
	missing
)

// locate reads the Repository key names from the cache. On a cache miss a sharded manager reads
// it from the API server, to tell another shard's Repository (returned, servedElsewhere) from one
// that does not exist; a manager without sharding caches every Repository and reads no further.
func (s *shard) locate(ctx context.Context, c client.Reader, key client.ObjectKey) (*kpov1.Repository, placement, error) {
	repo := &kpov1.Repository{}
	err := c.Get(ctx, key, repo)
	switch {
	case err == nil:
		return repo, servedHere, nil
	case !apierrors.IsNotFound(err):
		return nil, missing, fmt.Errorf("reading repository: %w", err)
	case !s.sharded():
		return nil, missing, nil
	}
	err = s.apiReader.Get(ctx, key, repo)
	switch {
	case apierrors.IsNotFound(err):
		return nil, missing, nil
	case err != nil:
		return nil, missing, fmt.Errorf("reading repository: %w", err)
	case s.selector.Matches(labels.Set(repo.Labels)):
		return repo, notCachedYet, nil
	}
	return repo, servedElsewhere, nil
}

// leaveAlone tells a reconciler to stop, writing nothing, when the Repository of its object is
// served at p by another shard (whose manager takes the object over: no requeue) or is in this
// shard but not cached yet (requeued shortly).
func leaveAlone(p placement) (bool, ctrl.Result) {
	switch p {
	case servedElsewhere:
		return true, ctrl.Result{}
	case notCachedYet:
		return true, ctrl.Result{RequeueAfter: time.Second}
	}
	return false, ctrl.Result{}
}

// get reads obj from the cache and, in a sharded manager, from the API server when the cache
// does not hold it: a PackageDraft may name a source revision of another shard (a clone from a
// blueprint repository served elsewhere), which this manager reads but never writes.
func (s *shard) get(ctx context.Context, c client.Reader, key client.ObjectKey, obj client.Object) error {
	err := c.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && s.sharded() {
		return s.apiReader.Get(ctx, key, obj)
	}
	return err
}

// withShard sets the shard key label of labels to the Repository's, or removes it when the
// Repository has none: PackageRevisions and content ConfigMaps are in their Repository's shard.
func withShard(labels map[string]string, repo *kpov1.Repository) map[string]string {
	if labels == nil {
		labels = map[string]string{}
	}
	if v, ok := repo.Labels[kpov1.ShardLabel]; ok {
		labels[kpov1.ShardLabel] = v
	} else {
		delete(labels, kpov1.ShardLabel)
	}
	return labels
}

// inShardOf reports whether labels put an object in the Repository's shard.
func inShardOf(labels map[string]string, repo *kpov1.Repository) bool {
	want, labelled := repo.Labels[kpov1.ShardLabel]
	got, has := labels[kpov1.ShardLabel]
	return labelled == has && want == got
}

// handoverTimeout bounds the wait for the cache to hold what a handover relabelled.
const handoverTimeout = 10 * time.Second

// reconcileShard hands the Repository's PackageRevisions and content ConfigMaps over to this
// manager before each full sync: those labelled with another shard than the Repository's (it was
// moved to this shard, it was synced before sharding, or the previous owner's last reconcile
// wrote after the move) are relabelled with the Repository's kpo.dev/shard, so they leave the
// previous owner's cache and enter this one's, the same objects with their finalizers, edits and
// history. It waits until the cache holds them, so the sync that follows updates them rather than
// creating them again. A manager without sharding caches everything and hands nothing over.
func (r *RepositoryReconciler) reconcileShard(ctx context.Context, repo *kpov1.Repository, _ *syncState) error {
	if !r.shard.sharded() {
		return nil
	}
	others, err := otherShards(repo)
	if err != nil {
		return err
	}
	var moved []client.Object
	for _, kind := range []struct {
		gvk      schema.GroupVersionKind
		selector labels.Selector
		typed    func() client.Object
	}{
		{kpov1.GroupVersion.WithKind("PackageRevision"), others, func() client.Object { return &kpov1.PackageRevision{} }},
		{corev1.SchemeGroupVersion.WithKind("ConfigMap"),
			others.Add(mustRequirement(kpov1.ContentLabel, selection.Equals, "true")), func() client.Object { return &corev1.ConfigMap{} }},
	} {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(kind.gvk.GroupVersion().WithKind(kind.gvk.Kind + "List"))
		if err := r.shard.apiReader.List(ctx, list, client.InNamespace(repo.Namespace), client.MatchingLabelsSelector{Selector: kind.selector}); err != nil {
			return fmt.Errorf("listing %ss of other shards: %w", kind.gvk.Kind, err)
		}
		for i := range list.Items {
			item := &list.Items[i]
			item.SetGroupVersionKind(kind.gvk)
			patch := client.MergeFrom(item.DeepCopy())
			item.Labels = withShard(item.Labels, repo)
			if err := r.Patch(ctx, item, patch); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("moving %s %s to this shard: %w", kind.gvk.Kind, item.Name, err)
			}
			obj := kind.typed()
			obj.SetNamespace(item.Namespace)
			obj.SetName(item.Name)
			moved = append(moved, obj)
		}
	}
	if len(moved) == 0 {
		return nil
	}
	log.FromContext(ctx).Info("took the repository's objects over from another shard", "objects", len(moved))
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, handoverTimeout, true, func(ctx context.Context) (bool, error) {
		for _, obj := range moved {
			if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil || !inShardOf(obj.GetLabels(), repo) {
				return false, client.IgnoreNotFound(err)
			}
		}
		return true, nil
	}); err != nil {
		return &stepError{Reason: kpov1.ProgressingReason, RetryAfter: time.Second,
			Err: fmt.Errorf("waiting for the objects taken over from another shard: %w", err)}
	}
	return nil
}

// otherShards selects the Repository's objects that are not in its shard.
func otherShards(repo *kpov1.Repository) (labels.Selector, error) {
	own, err := labels.NewRequirement(kpov1.RepositoryLabel, selection.Equals, []string{repo.Name})
	if err != nil {
		return nil, err
	}
	other := mustRequirement(kpov1.ShardLabel, selection.Exists)
	if v, ok := repo.Labels[kpov1.ShardLabel]; ok {
		other = mustRequirement(kpov1.ShardLabel, selection.NotEquals, v) // also matches no label
	}
	return labels.NewSelector().Add(*own, other), nil
}

// mustRequirement builds a requirement over a label key and values known to be valid.
func mustRequirement(key string, op selection.Operator, values ...string) labels.Requirement {
	req, err := labels.NewRequirement(key, op, values)
	if err != nil {
		panic(err)
	}
	return *req
}

// forget drops a Repository that left this manager's cache — deleted, or moved to another shard
// — from the ones synced in this process, and requeues it: should it come back, its first
// reconcile syncs in full and takes its objects over again, whatever its status says.
func (r *RepositoryReconciler) forget(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	r.syncedOnce.Delete(e.Object.GetUID())
	q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)})
}
