package crash_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// Variant traffic: each worker keeps at most variantsPerWorker PackageVariants of its own
// packages alive. A variant follows the newest published revision of its upstream package
// (spec.upstream.revision empty) under approval policy "always", so every upstream revision
// the test publishes is cloned or upgraded into the downstream package, customised, proposed
// and published by the manager alone.
const variantsPerWorker = 2

// The customisations every variant asks for; the checks find them on its newest revision.
const (
	variantLabel      = "crash.example.com/variant"
	variantGeneration = "crash.example.com/generation"
	// setLabelsImage is a built-in function (no container runtime in the crash test): a
	// variant prepends it to the downstream pipeline, so each variant draft is rendered.
	setLabelsImage = "ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2.5"
)

// variantModel is what the test expects of one PackageVariant it created.
type variantModel struct {
	name string
	// upstream is the worker's package the variant follows; repo and pkg are the downstream
	// package, which no one else writes.
	upstream  *pkgModel
	repo, pkg string
	policy    kpov1.DeletionPolicy
	// labels and annotations are the spec the test last set.
	labels, annotations map[string]string
	// uid is the PackageVariant's, as created; ready once the test saw it Ready.
	uid            string
	ready, deleted bool
}

// liveVariants are the variants the test has not deleted.
func (w *worker) liveVariants() []*variantModel {
	var out []*variantModel
	for _, v := range w.variants {
		if !v.deleted {
			out = append(out, v)
		}
	}
	return out
}

// variantOps are the variant operations the worker's state allows: create a variant of a
// package with an approval whose revisions are never deleted (see pkgModel.deletable),
// publish a new revision of a followed upstream package (which the variants must upgrade to),
// change a variant's customisations (a copy of its newest revision), delete a variant
// (deletion policy delete or orphan).
func (w *worker) variantOps(add func(op)) {
	live := w.liveVariants()
	if len(live) < variantsPerWorker {
		// Packages still growing first: their variants get upgrades.
		var sources, retired []*pkgModel
		for _, p := range w.pkgs {
			switch {
			case len(p.published()) == 0, p.deletable:
			case p.retired():
				retired = append(retired, p)
			default:
				sources = append(sources, p)
			}
		}
		if len(sources) == 0 {
			sources = retired
		}
		if len(sources) > 0 {
			add(op{kind: "create-variant", weight: 2, run: func(ctx context.Context) error {
				return w.createVariant(ctx, sources[w.rng.IntN(len(sources))])
			}})
		}
	}
	bumped := map[*pkgModel]bool{}
	for _, v := range live {
		if p := v.upstream; !bumped[p] && !p.retired() && p.open() < openPerPackage {
			bumped[p] = true
			add(op{kind: "bump-upstream", weight: 2, pkg: p, run: func(ctx context.Context) error { return w.bumpUpstream(ctx, p) }})
		}
		add(op{kind: "recustomise", weight: 1, run: func(ctx context.Context) error { return w.recustomise(ctx, v) }})
		if v.ready {
			add(op{kind: "delete-variant", weight: 1, run: func(ctx context.Context) error { return w.deleteVariant(ctx, v) }})
		}
	}
}

// createVariant creates a PackageVariant of p into a new downstream package of a random
// repository, with labels, annotations and a pipeline function to apply, and a random
// deletion policy (orphan one time in three), and waits until it is Ready (as `kubectl wait`
// would): its first revision cloned, customised, rendered and published.
func (w *worker) createVariant(ctx context.Context, p *pkgModel) error {
	w.nextVariant++
	name := fmt.Sprintf("w%dv%d", w.id, w.nextVariant)
	v := &variantModel{name: name, upstream: p, repo: w.tr.repos[w.rng.IntN(len(w.tr.repos))], pkg: name,
		policy:      kpov1.DeletionPolicyDelete,
		labels:      map[string]string{variantLabel: name},
		annotations: map[string]string{variantGeneration: "1"}}
	if w.rng.IntN(3) == 0 {
		v.policy = kpov1.DeletionPolicyOrphan
	}
	pv := &kpov1.PackageVariant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.tr.ns,
			Annotations: map[string]string{kpov1.ApprovalPolicyAnnotation: kpov1.ApprovalPolicyAlways}},
		Spec: kpov1.PackageVariantSpec{
			Upstream:       kpov1.UpstreamPackage{Repo: p.repo, Package: p.name},
			Downstream:     kpov1.DownstreamPackage{Repo: v.repo, Package: v.pkg},
			DeletionPolicy: v.policy,
			Labels:         maps.Clone(v.labels),
			Annotations:    maps.Clone(v.annotations),
			Pipeline: &kpov1.Pipeline{Mutators: []kpov1.Function{{Name: "labels", Image: setLabelsImage,
				ConfigMap: map[string]string{"variant": name}}}},
		},
	}
	if err := w.retry(ctx, "creating PackageVariant "+name, func(ctx context.Context) error {
		err := w.tr.c.Create(ctx, pv.DeepCopy())
		if apierrors.IsAlreadyExists(err) {
			return nil // an earlier attempt was accepted
		}
		return err
	}); err != nil {
		return err
	}
	w.variants = append(w.variants, v)
	w.tr.accepted(w, "create-variant", "PackageVariant %s: %s/%s → %s/%s (deletionPolicy %s)", name, p.repo, p.name, v.repo, v.pkg, v.policy)
	if err := w.waitFor(ctx, "PackageVariant "+name+" Ready", func(ctx context.Context) (bool, string, error) {
		pv := &kpov1.PackageVariant{}
		if err := w.tr.c.Get(ctx, client.ObjectKey{Namespace: w.tr.ns, Name: name}, pv); err != nil {
			if apierrors.IsNotFound(err) {
				return false, "", fmt.Errorf("%w: PackageVariant %s", errVariantVanished, name)
			}
			return false, "", err
		}
		v.uid = string(pv.UID)
		c := meta.FindStatusCondition(pv.Status.Conditions, kpov1.ReadyCondition)
		ready := c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == pv.Generation
		return ready, conditionText(pv.Status.Conditions), nil
	}); err != nil {
		return err
	}
	v.ready = true
	return nil
}

// bumpUpstream publishes a new revision of p, with an edit: a copy of its newest published
// revision, edited, proposed and approved. The variants following p must upgrade to it.
func (w *worker) bumpUpstream(ctx context.Context, p *pkgModel) error {
	if err := w.copyRevision(ctx, p); err != nil {
		return err
	}
	r := p.revs[len(p.revs)-1]
	err := w.edit(ctx, r)
	if err == nil {
		err = w.setLifecycle(ctx, r, kpov1.LifecycleProposed)
	}
	if err == nil {
		err = w.approve(ctx, r)
	}
	if err != nil && r.stuck == "" && !errors.Is(err, errTrafficStopped) {
		r.stuck = err.Error()
	}
	if err == nil {
		w.bumps++
		w.tr.trace.log("w%d %-13s %s published for its variants", w.id, "bump-upstream", r.name)
	}
	return err
}

// recustomise changes a variant's annotation, as `kubectl annotate` of its spec would: its
// newest published revision then lacks it, so the variant copies, customises and publishes it.
func (w *worker) recustomise(ctx context.Context, v *variantModel) error {
	n, _ := strconv.Atoi(v.annotations[variantGeneration])
	value := strconv.Itoa(n + 1)
	if err := w.retry(ctx, "changing the annotations of PackageVariant "+v.name, func(ctx context.Context) error {
		pv := &kpov1.PackageVariant{}
		if err := w.tr.c.Get(ctx, client.ObjectKey{Namespace: w.tr.ns, Name: v.name}, pv); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("%w: PackageVariant %s", errVariantVanished, v.name)
			}
			return err
		}
		patch := client.MergeFrom(pv.DeepCopy())
		pv.Spec.Annotations = maps.Clone(v.annotations)
		pv.Spec.Annotations[variantGeneration] = value
		return w.tr.c.Patch(ctx, pv, patch)
	}); err != nil {
		return err
	}
	v.annotations[variantGeneration] = value
	w.tr.accepted(w, "recustomise", "PackageVariant %s: %s=%s", v.name, variantGeneration, value)
	return nil
}

// deleteVariant deletes a PackageVariant; its finalizer applies the deletion policy.
func (w *worker) deleteVariant(ctx context.Context, v *variantModel) error {
	if err := w.deleteObject(ctx, &kpov1.PackageVariant{ObjectMeta: metav1.ObjectMeta{Name: v.name, Namespace: w.tr.ns}}); err != nil {
		return err
	}
	v.deleted = true
	w.tr.accepted(w, "delete-variant", "PackageVariant %s (deletionPolicy %s, downstream %s/%s)", v.name, v.policy, v.repo, v.pkg)
	return nil
}

// errVariantVanished: a PackageVariant the test never deleted does not exist.
var errVariantVanished = errors.New("the PackageVariant does not exist, but the test never deleted it")

// collectGarbage deletes the PackageDrafts whose controlling PackageVariant is gone, as
// Kubernetes' garbage collector does in a cluster (envtest runs no kube-controller-manager).
// The PackageDrafts are listed before the variants: a draft's owner, created before it, is
// then in the list unless it was deleted.
func collectGarbage(ctx context.Context, c client.Client, ns string) error {
	drafts := &kpov1.PackageDraftList{}
	if err := c.List(ctx, drafts, client.InNamespace(ns)); err != nil {
		return err
	}
	pvs := &kpov1.PackageVariantList{}
	if err := c.List(ctx, pvs, client.InNamespace(ns)); err != nil {
		return err
	}
	live := map[string]bool{}
	for _, pv := range pvs.Items {
		live[string(pv.UID)] = true
	}
	for i := range drafts.Items {
		d := &drafts.Items[i]
		for _, o := range d.OwnerReferences {
			if o.Kind == "PackageVariant" && !live[string(o.UID)] && d.DeletionTimestamp.IsZero() {
				if err := c.Delete(ctx, d, client.Preconditions{UID: &d.UID}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
					return err
				}
				break
			}
		}
	}
	return nil
}
