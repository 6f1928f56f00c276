package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/variantset"
)

// PackageVariantSetReconciler keeps one PackageVariant per target of a PackageVariantSet. It
// writes PackageVariants only (the PackageVariant reconciler does the rest): it creates the
// missing ones, updates in place those whose spec differs from the template's (never deleting
// and recreating one, which would apply its deletion policy to the downstream), deletes those
// no target selects any more, and pins their upstream revision during a rollout.
type PackageVariantSetReconciler struct {
	client.Client
	// APIReader lists the objects of objectSelector targets, uncached and metadata only: the
	// manager caches only its own kinds, and reads only what its role allows.
	APIReader client.Reader
	shard     *shard
	Recorder  record.EventRecorder
}

// +kubebuilder:rbac:groups=kpo.dev,resources=packagevariantsets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kpo.dev,resources=packagevariantsets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kpo.dev,resources=packagevariantsets/finalizers,verbs=update
// +kubebuilder:rbac:groups=kpo.dev,resources=packagevariants,verbs=get;list;watch;create;update;patch;delete

// setUpstreamIndex is the field index of PackageVariantSets by upstream package, as
// "<repository>/<package>".
const setUpstreamIndex = "spec.upstream.package"

// objectTargetResync is how often a set with objectSelector targets lists their objects again:
// the manager does not watch every kind a set may select.
const objectTargetResync = 5 * time.Minute

// maxNotReady bounds status.notReady.
const maxNotReady = 20

// maxSetVariants bounds the PackageVariants of one set: the targets of a spec could otherwise
// select millions.
const maxSetVariants = 2000

// SetupWithManager registers the reconciler: changes of its PackageVariants, of the
// Repositories of its namespace (a selector may match them now, or no more) and of the
// revisions of its upstream package and of its variants' downstream packages requeue a set.
func (r *PackageVariantSetReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kpov1.PackageVariantSet{}, setUpstreamIndex, func(o client.Object) []string {
		s := o.(*kpov1.PackageVariantSet)
		return []string{s.Spec.Upstream.Repo + "/" + s.Spec.Upstream.Package}
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&kpov1.PackageVariantSet{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&kpov1.PackageVariant{}, handler.EnqueueRequestsFromMapFunc(r.setsOfVariant)).
		Watches(&kpov1.Repository{}, handler.EnqueueRequestsFromMapFunc(r.setsOfNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&kpov1.PackageRevision{}, handler.EnqueueRequestsFromMapFunc(r.setsOfRevision)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Named("packagevariantset").
		Complete(r)
}

// setsOfNamespace maps a Repository to every set of its namespace: any selector may match it.
func (r *PackageVariantSetReconciler) setsOfNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &kpov1.PackageVariantSetList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, s := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
	}
	return out
}

// setsOfVariant maps a PackageVariant to the set that controls it or, for one no set
// controls, to the sets whose variant names it may take (a set reports such a variant, and
// goes on when it is deleted).
func (r *PackageVariantSetReconciler) setsOfVariant(ctx context.Context, obj client.Object) []reconcile.Request {
	if c := metav1.GetControllerOf(obj); c != nil && c.Kind == "PackageVariantSet" {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: c.Name}}}
	}
	var out []reconcile.Request
	for _, req := range r.setsOfNamespace(ctx, obj) {
		if strings.HasPrefix(obj.GetName(), req.Name+"-") {
			out = append(out, req)
		}
	}
	return out
}

// setsOfRevision maps a PackageRevision to the sets that follow its package upstream and to
// the set of the variant that owns it (a rollout waits for its publication).
func (r *PackageVariantSetReconciler) setsOfRevision(ctx context.Context, obj client.Object) []reconcile.Request {
	pr, ok := obj.(*kpov1.PackageRevision)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	list := &kpov1.PackageVariantSetList{}
	if err := r.List(ctx, list, client.InNamespace(pr.Namespace), client.MatchingFields{setUpstreamIndex: pr.Spec.Repository + "/" + pr.Spec.PackageName}); err == nil {
		for _, s := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
		}
	}
	if name := pr.Labels[kpov1.PackageVariantLabel]; name != "" {
		pv := &kpov1.PackageVariant{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: pr.Namespace, Name: name}, pv); err == nil && pv.Labels[kpov1.PackageVariantSetLabel] != "" {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pr.Namespace, Name: pv.Labels[kpov1.PackageVariantSetLabel]}})
		}
	}
	return out
}

// setScope is what the steps of one PackageVariantSet reconcile share.
type setScope struct {
	set *kpov1.PackageVariantSet
	// upstreams are the published revisions of the upstream package; upstream is the one the
	// set asks for.
	upstreams []kpov1.PackageRevision
	upstream  *kpov1.PackageRevision
	// targets are the selected targets; desired the PackageVariant spec of each, by name.
	targets []variantset.Target
	inputs  variantset.Inputs
	desired map[string]kpov1.PackageVariantSpec
	// owned are the set's PackageVariants, by name.
	owned map[string]*kpov1.PackageVariant
	// outcome is what the status reports.
	outcome setOutcome
	requeue time.Duration
}

// Reconcile runs the set's steps: templates, upstream, targets, rollout, variants.
func (r *PackageVariantSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	set := &kpov1.PackageVariantSet{}
	if err := r.Get(ctx, req.NamespacedName, set); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// A set writes no Git and no Repository's objects, only PackageVariants: one manager
	// instance acts on it, the one that reports on objects without a Repository (each
	// variant is then carried out by the instance serving its downstream Repository).
	if !r.shard.writesForMissing() || !set.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // deleting: the garbage collector deletes its variants
	}
	s := &setScope{set: set, owned: map[string]*kpov1.PackageVariant{}}
	defer func() {
		if err := patchStatus(ctx, r.Client, req.NamespacedName, &kpov1.PackageVariantSet{}, func(v *kpov1.PackageVariantSet) {
			setVariantSetStatus(v, set.Generation, s.outcome, retErr)
		}); err != nil {
			retErr = errors.Join(retErr, err)
		}
		if retErr == nil && s.requeue > 0 {
			result = ctrl.Result{RequeueAfter: s.requeue}
		}
		result, retErr = resultFor(result, retErr)
	}()
	eval, err := variantset.NewEvaluator()
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, step := range []func(context.Context, *setScope, *variantset.Evaluator) error{
		r.reconcileTemplates,
		r.reconcileSetUpstream,
		r.reconcileTargets,
		r.reconcileDesired,
		r.reconcileRollout,
		r.reconcileVariants,
	} {
		if err := step(ctx, s, eval); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// reconcileTemplates compiles every expression of the templates: one that does not compile
// stalls the set (reason InvalidTemplate) before anything is read or written.
func (r *PackageVariantSetReconciler) reconcileTemplates(_ context.Context, s *setScope, eval *variantset.Evaluator) error {
	if err := eval.Validate(&s.set.Spec); err != nil {
		return terminal(kpov1.InvalidTemplateReason, err)
	}
	return nil
}

// reconcileSetUpstream finds the published upstream revision the set asks for (the newest
// when it names none). A missing one is retried after a pause: it may be published later.
func (r *PackageVariantSetReconciler) reconcileSetUpstream(ctx context.Context, s *setScope, _ *variantset.Evaluator) error {
	up := s.set.Spec.Upstream
	revs, err := packageRevisions(ctx, r.Client, s.set.Namespace, up.Repo, up.Package)
	if err != nil {
		return err
	}
	s.upstreams, s.upstream, err = publishedUpstream(revs, up)
	return err
}

// reconcileTargets unrolls the targets: the named repositories and their package names, the
// Repositories a selector matches, the objects an objectSelector matches, each with Porch's
// defaults (repository or object name, the given package name or the upstream package's).
func (r *PackageVariantSetReconciler) reconcileTargets(ctx context.Context, s *setScope, _ *variantset.Evaluator) error {
	set := s.set
	pkgDefault := set.Spec.Upstream.Package[strings.LastIndex(set.Spec.Upstream.Package, "/")+1:]
	repos := &kpov1.RepositoryList{}
	if err := r.List(ctx, repos, client.InNamespace(set.Namespace)); err != nil {
		return err
	}
	for i, t := range set.Spec.Targets {
		field := fmt.Sprintf("spec.targets[%d]", i)
		switch {
		case len(t.Repositories) > 0:
			for _, rt := range t.Repositories {
				if len(rt.PackageNames) == 0 {
					s.targets = append(s.targets, variantset.Target{Index: i, RepoDefault: rt.Name, PackageDefault: pkgDefault})
				}
				for _, p := range rt.PackageNames {
					s.targets = append(s.targets, variantset.Target{Index: i, RepoDefault: rt.Name, PackageDefault: p})
				}
			}
		case t.RepositorySelector != nil:
			sel, err := metav1.LabelSelectorAsSelector(t.RepositorySelector)
			if err != nil {
				return terminal(kpov1.InvalidSpecReason, fmt.Errorf("%s.repositorySelector: %w", field, err))
			}
			for _, repo := range repos.Items {
				if sel.Matches(labels.Set(repo.Labels)) {
					s.targets = append(s.targets, variantset.Target{Index: i, RepoDefault: repo.Name, PackageDefault: pkgDefault})
				}
			}
		case t.ObjectSelector != nil:
			objs, err := r.selectObjects(ctx, set.Namespace, field, t.ObjectSelector)
			if err != nil {
				return err
			}
			for j := range objs {
				o := objs[j]
				s.targets = append(s.targets, variantset.Target{Index: i, RepoDefault: o.Name, PackageDefault: pkgDefault, Object: &o})
			}
			s.requeue = objectTargetResync
		}
		if len(s.targets) > maxSetVariants {
			return terminal(kpov1.InvalidSpecReason, fmt.Errorf(
				"the targets select more than %d downstream packages (%s and before): split the set", maxSetVariants, field))
		}
	}
	s.inputs = variantset.Inputs{Upstream: objectOf(s.upstream, "PackageRevision"), Repositories: map[string]variantset.Object{}}
	for i := range repos.Items {
		s.inputs.Repositories[repos.Items[i].Name] = objectOf(&repos.Items[i], "Repository")
	}
	return nil
}

// objectOf is what an expression sees of obj, one of kpo's kinds.
func objectOf(obj client.Object, kind string) variantset.Object {
	return variantset.Object{APIVersion: kpov1.GroupVersion.String(), Kind: kind, Name: obj.GetName(), Namespace: obj.GetNamespace(),
		Labels: obj.GetLabels(), Annotations: obj.GetAnnotations()}
}

// selectObjects lists the metadata of the objects sel selects in ns, with the manager's own
// permissions (ConfigMaps and kpo's kinds out of the box; other kinds need a Role granting its
// service account list on them). Secrets are never selected.
func (r *PackageVariantSetReconciler) selectObjects(ctx context.Context, ns, field string, sel *kpov1.ObjectSelector) ([]variantset.Object, error) {
	gv, err := schema.ParseGroupVersion(sel.APIVersion)
	if err != nil {
		return nil, terminal(kpov1.InvalidSpecReason, fmt.Errorf("%s.objectSelector.apiVersion: %w", field, err))
	}
	gvk := gv.WithKind(sel.Kind)
	if gvk.Group == "" && gvk.Kind == "Secret" {
		return nil, terminal(kpov1.InvalidSpecReason, fmt.Errorf("%s.objectSelector: Secrets are never selected", field))
	}
	ls, err := metav1.LabelSelectorAsSelector(&sel.LabelSelector)
	if err != nil {
		return nil, terminal(kpov1.InvalidSpecReason, fmt.Errorf("%s.objectSelector: %w", field, err))
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	err = r.APIReader.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: ls})
	switch {
	case apierrors.IsForbidden(err):
		return nil, &stepError{Reason: kpov1.TargetsUnavailableReason, RetryAfter: objectTargetResync, Err: fmt.Errorf(
			"%s.objectSelector: the kpo manager may not list %s: grant its service account list on them in namespace %s", field, gvk.GroupKind(), ns)}
	case meta.IsNoMatchError(err):
		return nil, &stepError{Reason: kpov1.TargetsUnavailableReason, RetryAfter: objectTargetResync, Err: fmt.Errorf(
			"%s.objectSelector: kind %s is not served by the API server", field, gvk)}
	case err != nil:
		return nil, fmt.Errorf("%s.objectSelector: listing %s: %w", field, gvk.Kind, err)
	}
	var out []variantset.Object
	for i := range list.Items {
		o := &list.Items[i]
		if sel.Name != "" && o.Name != sel.Name {
			continue
		}
		out = append(out, variantset.Object{APIVersion: sel.APIVersion, Kind: sel.Kind, Name: o.Name, Namespace: o.Namespace,
			Labels: o.Labels, Annotations: o.Annotations})
	}
	return out, nil
}

// reconcileDesired renders the PackageVariant of each target. Any template failure stalls the
// set (InvalidTemplate) before a variant is written; two targets rendering the same variant
// name do too.
func (r *PackageVariantSetReconciler) reconcileDesired(_ context.Context, s *setScope, eval *variantset.Evaluator) error {
	s.desired = map[string]kpov1.PackageVariantSpec{}
	from := map[string]kpov1.DownstreamPackage{}
	for _, t := range s.targets {
		spec, err := eval.Render(&s.set.Spec, t, s.inputs)
		if err != nil {
			return terminal(kpov1.InvalidTemplateReason, err)
		}
		name := variantset.VariantName(s.set.Name, spec.Downstream.Repo, spec.Downstream.Package)
		if err := validateVariantSpec(&spec); err != nil {
			return terminal(kpov1.InvalidTemplateReason, fmt.Errorf("spec.targets[%d].template renders PackageVariant %s with %w", t.Index, name, err))
		}
		if d, dup := from[name]; dup {
			if d == spec.Downstream {
				continue // selected twice: one variant (as Porch)
			}
			return terminal(kpov1.InvalidTemplateReason, fmt.Errorf(
				"downstream packages %s/%s and %s/%s both get the PackageVariant name %s: make the package names differ by more than case and punctuation",
				d.Repo, d.Package, spec.Downstream.Repo, spec.Downstream.Package, name))
		}
		from[name] = spec.Downstream
		s.desired[name] = spec
	}
	return nil
}

// reconcileRollout pins the upstream revision of each desired variant: the set's own revision
// without spec.rollout; with it, see planRollout. The progress is derived from the variants and
// their downstream revisions alone, so a restarted manager resumes where it was.
func (r *PackageVariantSetReconciler) reconcileRollout(ctx context.Context, s *setScope, _ *variantset.Evaluator) error {
	// Ownership is the controller reference (a UID), not the label, which anyone may set.
	owned := &kpov1.PackageVariantList{}
	if err := r.List(ctx, owned, client.InNamespace(s.set.Namespace)); err != nil {
		return err
	}
	for i := range owned.Items {
		if pv := &owned.Items[i]; metav1.IsControlledBy(pv, s.set) {
			s.owned[pv.Name] = pv
		}
	}
	if s.set.Spec.Rollout == nil {
		return nil
	}
	revs := &kpov1.PackageRevisionList{}
	if err := r.List(ctx, revs, client.InNamespace(s.set.Namespace), client.HasLabels{kpov1.PackageVariantLabel}); err != nil {
		return err
	}
	upstreamRev := map[string]int{}
	for _, pr := range s.upstreams {
		upstreamRev[pr.Name] = pr.Status.Revision
	}
	published := map[string]*kpov1.PackageRevision{} // variant name → newest published downstream revision
	for i := range revs.Items {
		pr := &revs.Items[i]
		v := pr.Labels[kpov1.PackageVariantLabel]
		if pr.Status.Lifecycle == kpov1.LifecyclePublished && pr.Status.Revision > 0 && (published[v] == nil || pr.Status.Revision > published[v].Status.Revision) {
			published[v] = pr
		}
	}
	var vs []rolloutVariant
	for name := range s.desired {
		v := rolloutVariant{Name: name}
		if pv := s.owned[name]; pv != nil {
			v.Pinned = upstreamRevisionNumber(pv.Spec.Upstream.Revision)
		}
		if pr := published[name]; pr != nil && s.owned[name] != nil {
			v.Published = upstreamRev[pr.Status.UpstreamRevision]
			if v.Published == 0 {
				v.Published = -1 // published, on an upstream revision that is no longer there
			}
		}
		vs = append(vs, v)
	}
	pins, progress := planRollout(s.upstream.Status.Revision, int(s.set.Spec.Rollout.MaxConcurrent), vs)
	for name, rev := range pins {
		spec := s.desired[name]
		spec.Upstream.Revision = "v" + strconv.Itoa(rev)
		s.desired[name] = spec
	}
	s.outcome.rollout = &progress
	return nil
}

// reconcileVariants makes the set's PackageVariants those it wants: creates the missing ones,
// updates in place those whose spec or ownership label differs, deletes those it no longer
// wants (each applies its deletion policy). A PackageVariant of a wanted name that the set
// does not control is left alone and reported.
func (r *PackageVariantSetReconciler) reconcileVariants(ctx context.Context, s *setScope, _ *variantset.Evaluator) error {
	set := s.set
	names := make([]string, 0, len(s.desired))
	for name := range s.desired {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s.outcome.variants++
		spec := s.desired[name]
		pv := s.owned[name]
		if pv == nil {
			created, err := r.createVariant(ctx, set, name, spec)
			if err != nil {
				return err
			}
			if !created {
				s.outcome.notOwned = append(s.outcome.notOwned, name)
			}
			s.outcome.notReady = append(s.outcome.notReady, name)
			continue
		}
		if pv.Spec.Downstream != spec.Downstream {
			return terminal(kpov1.InvalidTemplateReason, fmt.Errorf(
				"PackageVariant %s has downstream %s/%s, not %s/%s: delete it and the set creates it anew", name, pv.Spec.Downstream.Repo, pv.Spec.Downstream.Package, spec.Downstream.Repo, spec.Downstream.Package))
		}
		if !equality.Semantic.DeepEqual(pv.Spec, spec) || pv.Labels[kpov1.PackageVariantSetLabel] != set.Name {
			patch := client.MergeFromWithOptions(pv.DeepCopy(), client.MergeFromWithOptimisticLock{})
			pv.Spec = spec
			pv.Labels = mergeMaps(pv.Labels, map[string]string{kpov1.PackageVariantSetLabel: set.Name})
			if err := r.Patch(ctx, pv, patch); err != nil {
				if apierrors.IsConflict(err) {
					return &stepError{Reason: kpov1.ProgressingReason, RetryAfter: time.Second, Err: fmt.Errorf("PackageVariant %s changed meanwhile: trying again", name)}
				}
				return fmt.Errorf("updating PackageVariant %s: %w", name, err)
			}
			s.outcome.notReady = append(s.outcome.notReady, name)
			continue
		}
		if c := readyCondition(pv.Status.Conditions); c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == pv.Generation {
			s.outcome.ready++
		} else {
			s.outcome.notReady = append(s.outcome.notReady, name)
		}
	}
	for name, pv := range s.owned {
		if _, want := s.desired[name]; want || !pv.DeletionTimestamp.IsZero() {
			continue
		}
		if err := r.Delete(ctx, pv, client.Preconditions{UID: &pv.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting PackageVariant %s, which no target selects: %w", name, err)
		}
		if r.Recorder != nil {
			r.Recorder.Eventf(set, corev1.EventTypeNormal, "Deleted", "deleted PackageVariant %s: no target selects it", name)
		}
	}
	return nil
}

// createVariant creates the set's PackageVariant name, controlled by the set; false when a
// PackageVariant of that name exists and is not the set's.
func (r *PackageVariantSetReconciler) createVariant(ctx context.Context, set *kpov1.PackageVariantSet, name string, spec kpov1.PackageVariantSpec) (bool, error) {
	pv := &kpov1.PackageVariant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: set.Namespace, Labels: map[string]string{kpov1.PackageVariantSetLabel: set.Name}},
		Spec:       spec,
	}
	if err := controllerutil.SetControllerReference(set, pv, r.Scheme()); err != nil {
		return false, err
	}
	err := r.Create(ctx, pv)
	if apierrors.IsAlreadyExists(err) {
		existing := &kpov1.PackageVariant{}
		if err := r.Get(ctx, client.ObjectKeyFromObject(pv), existing); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		// Controlled by the set: the cache has not seen it yet, the next reconcile does.
		return metav1.IsControlledBy(existing, set), nil
	}
	if err != nil {
		return false, fmt.Errorf("creating PackageVariant %s: %w", name, err)
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(set, corev1.EventTypeNormal, kpov1.CreatedReason, "created PackageVariant %s", name)
	}
	return true, nil
}
