package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/gitops"
)

// +kubebuilder:rbac:groups=source.toolkit.fluxcd.io,resources=gitrepositories,verbs=get;list;watch
// +kubebuilder:rbac:groups=kustomize.toolkit.fluxcd.io,resources=kustomizations,verbs=get;list;watch
// +kubebuilder:rbac:groups=configsync.gke.io,resources=rootsyncs;reposyncs,verbs=get;list;watch

// DeploymentStatusReconciler writes status.deployments of the published revisions of
// deployment repositories: the GitOps objects of the cluster (Flux Kustomizations of
// GitRepositories, Config Sync RootSyncs and RepoSyncs) that last applied them, with their
// health. It is the field's only writer. It watches the kinds the API server serves, from the
// manager's cache, and looks again every Recheck for a tool installed since.
type DeploymentStatusReconciler struct {
	client.Client
	// Recheck is how often the served kinds are looked for while a tool's are missing.
	Recheck time.Duration

	mapper     meta.RESTMapper
	cache      cache.Cache
	controller controller.Controller
	mu         sync.Mutex
	watching   gitOpsTools
}

// gitOpsTools says which tools' kinds are served (or watched).
type gitOpsTools struct {
	flux, configSync bool
}

// deployedByIndex indexes PackageRevisions by the GitOps objects their status lists, so a
// change of one reaches the revisions it no longer applies.
const deployedByIndex = "kpo.dev/deployed-by"

func deployedByKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// servedGitOpsKinds reports which GitOps tools' kinds the API server serves.
func servedGitOpsKinds(mapper meta.RESTMapper) gitOpsTools {
	served := func(gvk schema.GroupVersionKind) bool {
		_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		return err == nil
	}
	return gitOpsTools{
		flux:       served(gitops.KustomizationGVK) && served(gitops.GitRepositoryGVK),
		configSync: served(gitops.RootSyncGVK) && served(gitops.RepoSyncGVK),
	}
}

// SetupWithManager registers the reconciler for deployment PackageRevisions, watches the GitOps
// kinds served now and, while a tool's kinds are missing, looks for them every Recheck.
func (r *DeploymentStatusReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kpov1.PackageRevision{}, deployedByIndex, func(o client.Object) []string {
		var keys []string
		for _, d := range o.(*kpov1.PackageRevision).Status.Deployments {
			keys = append(keys, deployedByKey(d.Kind, d.Namespace, d.Name))
		}
		return keys
	}); err != nil {
		return err
	}
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&kpov1.PackageRevision{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetLabels()[kpov1.DeploymentLabel] == "true"
		}))).
		Named("deploymentstatus").
		Build(r)
	if err != nil {
		return err
	}
	r.controller, r.mapper, r.cache = c, mgr.GetRESTMapper(), mgr.GetCache()
	if r.Recheck <= 0 {
		r.Recheck = time.Minute
	}
	if err := r.watchServedKinds(); err != nil {
		return err
	}
	return mgr.Add(manager.RunnableFunc(r.recheckServedKinds))
}

// recheckServedKinds watches the kinds of a GitOps tool installed after the manager started,
// until every tool's are watched.
func (r *DeploymentStatusReconciler) recheckServedKinds(ctx context.Context) error {
	t := time.NewTicker(r.Recheck)
	defer t.Stop()
	for r.tools() != (gitOpsTools{flux: true, configSync: true}) {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := r.watchServedKinds(); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "watching the GitOps kinds")
		}
	}
	return nil
}

// watchServedKinds starts watching the kinds of each tool the API server serves and that are
// not watched yet. A new watch lists the tool's objects, which enqueues the revisions they
// apply.
func (r *DeploymentStatusReconciler) watchServedKinds() error {
	served := servedGitOpsKinds(r.mapper)
	r.mu.Lock()
	defer r.mu.Unlock()
	watch := func(gvk schema.GroupVersionKind, toRequests handler.MapFunc) error {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(gvk)
		return r.controller.Watch(source.Kind[client.Object](r.cache, obj, handler.EnqueueRequestsFromMapFunc(toRequests)))
	}
	if served.flux && !r.watching.flux {
		if err := errors.Join(watch(gitops.GitRepositoryGVK, r.revisionsOfSource), watch(gitops.KustomizationGVK, r.revisionsOf)); err != nil {
			return err
		}
		r.watching.flux = true
		ctrl.Log.WithName("deploymentstatus").Info("watching Flux Kustomizations and GitRepositories")
	}
	if served.configSync && !r.watching.configSync {
		if err := errors.Join(watch(gitops.RootSyncGVK, r.revisionsOf), watch(gitops.RepoSyncGVK, r.revisionsOf)); err != nil {
			return err
		}
		r.watching.configSync = true
		ctrl.Log.WithName("deploymentstatus").Info("watching Config Sync RootSyncs and RepoSyncs")
	}
	return nil
}

// tools are the tools whose kinds are watched.
func (r *DeploymentStatusReconciler) tools() gitOpsTools {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.watching
}

// Reconcile sets the revision's status.deployments from the GitOps objects that applied it.
func (r *DeploymentStatusReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pr := &kpov1.PackageRevision{}
	if err := r.Get(ctx, req.NamespacedName, pr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	want, err := r.deployments(ctx, pr)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(want) == 0 && len(pr.Status.Deployments) == 0 {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, patchStatus(ctx, r.Client, req.NamespacedName, &kpov1.PackageRevision{}, func(pr *kpov1.PackageRevision) {
		pr.Status.Deployments = want
	})
}

// deployments are the GitOps objects that applied pr: none unless it is deployable and its
// Repository exists.
func (r *DeploymentStatusReconciler) deployments(ctx context.Context, pr *kpov1.PackageRevision) ([]kpov1.Deployment, error) {
	if !deployable(pr) {
		return nil, nil
	}
	repo := &kpov1.Repository{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: pr.Namespace, Name: pr.Spec.Repository}, repo); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	applied, err := r.applied(ctx)
	if err != nil {
		return nil, err
	}
	return deploymentsOf(pr, repo, applied), nil
}

// deployable reports whether pr can be deployed: a published revision of a deployment repository.
func deployable(pr *kpov1.PackageRevision) bool {
	return pr.Labels[kpov1.DeploymentLabel] == "true" && pr.Status.Revision > 0 &&
		pr.Status.Lifecycle == kpov1.LifecyclePublished && pr.DeletionTimestamp.IsZero()
}

// deploymentsOf picks, among what the GitOps objects applied, the objects that applied pr of
// repo: same repository, the package's directory, pr's ref (or commit).
func deploymentsOf(pr *kpov1.PackageRevision, repo *kpov1.Repository, applied []gitops.Applied) []kpov1.Deployment {
	dir := gitops.NormalizeDir(discovery.PackagePath(repo.Spec.Git.Directory, pr.Spec.PackageName))
	var out []kpov1.Deployment
	for _, a := range applied {
		if a.Dir != dir || !gitops.SameRepository(a.RepoURL, repo.Spec.Git.Repo) || !a.AppliedRef(pr.Status.Ref, pr.Status.Commit) {
			continue
		}
		out = append(out, kpov1.Deployment{Kind: a.Kind, Namespace: a.Namespace, Name: a.Name,
			Revision: a.Revision, Ready: a.Ready, Message: truncateMessage(a.Message)})
	}
	slices.SortFunc(out, func(a, b kpov1.Deployment) int {
		return strings.Compare(deployedByKey(a.Kind, a.Namespace, a.Name), deployedByKey(b.Kind, b.Namespace, b.Name))
	})
	return out
}

// applied reads what every GitOps object of the served kinds applied.
func (r *DeploymentStatusReconciler) applied(ctx context.Context) ([]gitops.Applied, error) {
	var out []gitops.Applied
	tools := r.tools()
	if tools.flux {
		kustomizations, err := r.list(ctx, gitops.KustomizationGVK)
		if err != nil {
			return nil, err
		}
		for i := range kustomizations {
			k := &kustomizations[i]
			if a, ok := gitops.FromKustomization(k, r.source(ctx, k)); ok {
				out = append(out, a)
			}
		}
	}
	if tools.configSync {
		for _, gvk := range []schema.GroupVersionKind{gitops.RootSyncGVK, gitops.RepoSyncGVK} {
			syncs, err := r.list(ctx, gvk)
			if err != nil {
				return nil, err
			}
			for i := range syncs {
				if a, ok := gitops.FromSync(&syncs[i]); ok {
					out = append(out, a)
				}
			}
		}
	}
	return out, nil
}

func (r *DeploymentStatusReconciler) list(ctx context.Context, gvk schema.GroupVersionKind, opts ...client.ListOption) ([]unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := r.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("listing %s: %w", gvk.Kind, err)
	}
	return list.Items, nil
}

// source is Kustomization k's GitRepository, or nil when it has none or it does not exist.
func (r *DeploymentStatusReconciler) source(ctx context.Context, k *unstructured.Unstructured) *unstructured.Unstructured {
	name, _, _ := unstructured.NestedString(k.Object, "spec", "sourceRef", "name")
	ns, _, _ := unstructured.NestedString(k.Object, "spec", "sourceRef", "namespace")
	if ns == "" {
		ns = k.GetNamespace()
	}
	src := &unstructured.Unstructured{}
	src.SetGroupVersionKind(gitops.GitRepositoryGVK)
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, src); err != nil {
		return nil
	}
	return src
}

// revisionsOf maps a GitOps object to the revisions whose status may change: those that list
// it, and the published revisions of the package it applies (in every Repository of its Git
// repository).
func (r *DeploymentStatusReconciler) revisionsOf(ctx context.Context, obj client.Object) []reconcile.Request {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	var a gitops.Applied
	if u.GetKind() == gitops.KustomizationGVK.Kind {
		a, ok = gitops.FromKustomization(u, r.source(ctx, u))
	} else {
		a, ok = gitops.FromSync(u)
	}
	var reqs []reconcile.Request
	listed := &kpov1.PackageRevisionList{}
	if err := r.List(ctx, listed, client.MatchingFields{deployedByIndex: deployedByKey(u.GetKind(), u.GetNamespace(), u.GetName())}); err == nil {
		for _, pr := range listed.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pr.Namespace, Name: pr.Name}})
		}
	}
	if !ok {
		return reqs
	}
	repos := &kpov1.RepositoryList{}
	if err := r.List(ctx, repos); err != nil {
		return reqs
	}
	for _, repo := range repos.Items {
		if !repo.Spec.Deployment || !gitops.SameRepository(a.RepoURL, repo.Spec.Git.Repo) {
			continue
		}
		pkg, ok := discovery.PackageInDirectory(a.Dir, discovery.NormalizeDirectory(repo.Spec.Git.Directory))
		if !ok {
			continue
		}
		revs := &kpov1.PackageRevisionList{}
		if err := r.List(ctx, revs, client.InNamespace(repo.Namespace), ofPackage(repo.Name, pkg)); err != nil {
			continue
		}
		for _, pr := range revs.Items {
			if deployable(&pr) {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pr.Namespace, Name: pr.Name}})
			}
		}
	}
	return reqs
}

// revisionsOfSource maps a GitRepository to the revisions of the Kustomizations that apply it.
func (r *DeploymentStatusReconciler) revisionsOfSource(ctx context.Context, obj client.Object) []reconcile.Request {
	kustomizations, err := r.list(ctx, gitops.KustomizationGVK)
	if err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range kustomizations {
		k := &kustomizations[i]
		kind, _, _ := unstructured.NestedString(k.Object, "spec", "sourceRef", "kind")
		name, _, _ := unstructured.NestedString(k.Object, "spec", "sourceRef", "name")
		ns, _, _ := unstructured.NestedString(k.Object, "spec", "sourceRef", "namespace")
		if ns == "" {
			ns = k.GetNamespace()
		}
		if kind == obj.GetObjectKind().GroupVersionKind().Kind && name == obj.GetName() && ns == obj.GetNamespace() {
			reqs = append(reqs, r.revisionsOf(ctx, k)...)
		}
	}
	return reqs
}
