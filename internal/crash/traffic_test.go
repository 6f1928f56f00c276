package crash_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
)

// markersFile is the package file each edit appends one unique marker line to; a marker in the
// content ConfigMap that the API server accepted must end up in Git.
const markersFile = "markers.txt"

// Bounds of the traffic.
const (
	// opTimeout bounds one operation, its retries and its waits for the manager (which is down
	// for at most a second or two at a time).
	opTimeout = 60 * time.Second
	// pollInterval is how often an operation retries or re-reads.
	pollInterval = 100 * time.Millisecond
	// packagesPerWorker and openPerPackage bound how much each worker has in flight;
	// publishedPerPackage retires a package (no new revisions) so that no package grows
	// without bound over a long run.
	packagesPerWorker   = 3
	openPerPackage      = 2
	publishedPerPackage = 8
)

// refusals are the reasons with which the manager refuses a PackageDraft for good. None of
// them is right for the test's drafts (new workspaces, published sources), so waiting on
// would only stall the traffic; the final checks report the PackageDraft.
var refusals = []string{
	kpov1.DuplicateWorkspaceReason, kpov1.PackageExistsReason, kpov1.NestedPackageReason,
	kpov1.SourceNotFoundReason, kpov1.SourceNotPublishedReason, kpov1.InvalidContentReason,
	kpov1.UnsupportedSourceReason, kpov1.LifecycleConflictReason,
}

// errRefused ends a wait for the manager that cannot succeed any more.
var errRefused = errors.New("refused")

// errTrafficStopped ends a wait for the manager when the traffic stops: the final checks
// judge the outcome.
var errTrafficStopped = errors.New("traffic stopped")

// revision is what the test expects of one package revision it created: the final state is
// derived from the operations the API server accepted, never from what the manager did.
type revision struct {
	pkg       *pkgModel
	workspace string
	// name is the PackageRevision (and content ConfigMap); draft the PackageDraft.
	name, draft string
	// lifecycle is the spec.lifecycle the test last set (Draft after creation).
	lifecycle kpov1.Lifecycle
	// deleted: the test deleted the revision (directly or by deleting its Draft's
	// PackageDraft); draftDeleted: the test deleted its PackageDraft.
	deleted, draftDeleted bool
	// markers are the accepted edits, in order.
	markers []string
	// stuck says why the worker stopped using the revision (a wait for the manager timed
	// out); the final checks say what is wrong with it.
	stuck string
	// deletedObject describes the PackageRevision the test deleted (uid, status, finalizers).
	deletedObject string
	deletedUID    string
	// uid is the PackageRevision's uid when the manager produced it.
	uid string
	// number and commit are status.revision and status.commit as the test last saw them on
	// the revision Published: its tag must stay there, and go only with an approved deletion.
	number int
	commit string
}

// sawPublished records where a revision was published, from a PackageRevision the test read.
func (r *revision) sawPublished(pr *kpov1.PackageRevision) {
	if pr.Status.Lifecycle == kpov1.LifecyclePublished && pr.Status.Revision > 0 && pr.Status.Commit != "" {
		r.number, r.commit = pr.Status.Revision, pr.Status.Commit
	}
}

// pkgModel is one package, owned by one worker.
type pkgModel struct {
	repo, name string
	revs       []*revision
	nextWS     int
	// deletable: the worker proposes deletions of the package's published revisions (one
	// package in three, so that most keep all theirs). Variants never follow such a package:
	// a variant follows the newest revision, and deleting that one would make its downstream
	// follow an older one, which the checks do not model.
	deletable bool
}

// retired packages get no new revisions.
func (p *pkgModel) retired() bool { return len(p.published()) >= publishedPerPackage }

func (p *pkgModel) open() int {
	n := 0
	for _, r := range p.revs {
		if !r.deleted && (r.lifecycle == kpov1.LifecycleDraft || r.lifecycle == kpov1.LifecycleProposed) {
			n++
		}
	}
	return n
}

// published returns the revisions the test approved, in the order they were created (not the
// order of their approvals, nor of their revision numbers).
func (p *pkgModel) published() []*revision {
	var out []*revision
	for _, r := range p.revs {
		if r.lifecycle == kpov1.LifecyclePublished {
			out = append(out, r)
		}
	}
	return out
}

// traffic is the shared state of the workers and the killer.
type traffic struct {
	c     client.Client
	ns    string
	repos []string
	trace *tracer
	stop  atomic.Bool
	// waits is cancelled when the traffic stops: workers stop waiting for the manager then,
	// but finish the API writes they started.
	waits       context.Context
	cancelWaits context.CancelFunc
	ops         atomic.Int64
	mu          sync.Mutex
	byKind      map[string]int
	workers     []*worker
}

func newTraffic(c client.Client, ns string, repos []string, trace *tracer) *traffic {
	tr := &traffic{c: c, ns: ns, repos: repos, trace: trace, byKind: map[string]int{}}
	tr.waits, tr.cancelWaits = context.WithCancel(context.Background())
	return tr
}

// stopTraffic makes the workers finish their current operation and the killer return.
func (tr *traffic) stopTraffic() {
	tr.stop.Store(true)
	tr.cancelWaits()
}

func (tr *traffic) accepted(w *worker, kind, format string, args ...any) {
	tr.ops.Add(1)
	tr.mu.Lock()
	tr.byKind[kind]++
	tr.mu.Unlock()
	tr.trace.log("w%d %-13s %s", w.id, kind, fmt.Sprintf(format, args...))
}

// worker issues operations on its own packages only, one at a time, so its sequence of
// operations depends only on the seed: every operation is retried until accepted.
type worker struct {
	id   int
	tr   *traffic
	rng  *rand.Rand
	pkgs []*pkgModel
	seq  int
	// variants are the PackageVariants the worker created (see variants_test.go); bumps counts
	// the upstream revisions it published for them.
	variants           []*variantModel
	nextVariant, bumps int
	// notes are operations given up because a wait for the manager timed out; the final
	// checks judge the outcome. violations are what the traffic itself found wrong.
	notes, violations []string
}

// op is one possible next operation.
type op struct {
	kind   string
	weight int
	rev    *revision
	pkg    *pkgModel
	run    func(context.Context) error
}

// run issues operations until the traffic stops.
func (w *worker) run(ctx context.Context) {
	for !w.tr.stop.Load() && ctx.Err() == nil {
		o := w.next()
		if err := o.run(ctx); errors.Is(err, errTrafficStopped) {
			return
		} else if err != nil {
			target := ""
			if o.rev != nil {
				target = " " + o.rev.name
				if o.rev.stuck == "" {
					o.rev.stuck = err.Error()
				}
			}
			note := fmt.Sprintf("worker %d: %s%s given up: %v", w.id, o.kind, target, err)
			if errors.Is(err, errChangedBehindBack) || errors.Is(err, errVanished) || errors.Is(err, errVariantVanished) {
				w.violations = append(w.violations, fmt.Sprintf("%s: %s%s: %v", invUserIntentKept, o.kind, target, err))
			} else {
				w.notes = append(w.notes, note)
			}
			w.tr.trace.log("%s", note)
		}
	}
}

// next picks the next operation, weighted, from what the worker's packages allow.
func (w *worker) next() op {
	var ops []op
	add := func(o op) { ops = append(ops, o) }
	active := 0
	for _, p := range w.pkgs {
		if !p.retired() {
			active++
		}
	}
	if active < packagesPerWorker {
		add(op{kind: "init", weight: 2, run: w.initPackage})
	}
	for _, p := range w.pkgs {
		if len(p.published()) > 0 && !p.retired() && p.open() < openPerPackage {
			add(op{kind: "copy", weight: 3, pkg: p, run: func(ctx context.Context) error { return w.copyRevision(ctx, p) }})
		}
		for _, r := range p.revs {
			if r.deleted || r.stuck != "" {
				continue
			}
			switch r.lifecycle {
			case kpov1.LifecycleDraft:
				add(op{kind: "edit", weight: 8, rev: r, run: func(ctx context.Context) error { return w.edit(ctx, r) }})
				add(op{kind: "edit+propose", weight: 2, rev: r, run: func(ctx context.Context) error {
					if err := w.edit(ctx, r); err != nil {
						return err
					}
					return w.setLifecycle(ctx, r, kpov1.LifecycleProposed)
				}})
				add(op{kind: "propose", weight: 3, rev: r, run: func(ctx context.Context) error { return w.setLifecycle(ctx, r, kpov1.LifecycleProposed) }})
				add(op{kind: "delete", weight: 1, rev: r, run: func(ctx context.Context) error { return w.deleteRevision(ctx, r, "delete") }})
				add(op{kind: "abandon", weight: 1, rev: r, run: func(ctx context.Context) error { return w.abandon(ctx, r) }})
			case kpov1.LifecycleProposed:
				add(op{kind: "approve", weight: 6, rev: r, run: func(ctx context.Context) error { return w.approve(ctx, r) }})
				add(op{kind: "reject", weight: 1, rev: r, run: func(ctx context.Context) error { return w.setLifecycle(ctx, r, kpov1.LifecycleDraft) }})
				add(op{kind: "delete", weight: 1, rev: r, run: func(ctx context.Context) error { return w.deleteRevision(ctx, r, "delete") }})
			case kpov1.LifecyclePublished:
				if !r.draftDeleted {
					add(op{kind: "drop-draft", weight: 1, rev: r, run: func(ctx context.Context) error { return w.dropDraft(ctx, r) }})
				}
			case kpov1.LifecycleDeletionProposed:
				add(op{kind: "approve-delete", weight: 3, rev: r, run: func(ctx context.Context) error { return w.approveDeletion(ctx, r) }})
				add(op{kind: "withdraw-delete", weight: 1, rev: r, run: func(ctx context.Context) error { return w.withdrawDeletion(ctx, r) }})
			}
		}
		// One content request and one deletion proposal per package, not per revision: a
		// package's published revisions pile up over a long run and would crowd out the rest.
		if pub := usable(p.published()); len(pub) > 0 {
			r := pub[w.rng.IntN(len(pub))]
			add(op{kind: "request-content", weight: 1, rev: r, run: func(ctx context.Context) error { return w.requestContent(ctx, r) }})
		}
		if del := deletable(p); len(del) > 0 {
			r := del[w.rng.IntN(len(del))]
			add(op{kind: "propose-delete", weight: 2, rev: r, run: func(ctx context.Context) error { return w.proposeDeletion(ctx, r, true) }})
			add(op{kind: "propose+delete", weight: 1, rev: r, run: func(ctx context.Context) error {
				if err := w.proposeDeletion(ctx, r, false); err != nil {
					return err
				}
				return w.deleteRevision(ctx, r, "approve-delete-at-once")
			}})
		}
	}
	w.variantOps(add)
	if len(ops) == 0 {
		// Every package is full and stuck: start another one.
		return op{kind: "init", weight: 1, run: w.initPackage}
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	n := w.rng.IntN(total)
	for _, o := range ops {
		if n < o.weight {
			return o
		}
		n -= o.weight
	}
	panic("unreachable")
}

// usable are the revisions the worker still uses (not given up).
func usable(revs []*revision) []*revision {
	var out []*revision
	for _, r := range revs {
		if r.stuck == "" {
			out = append(out, r)
		}
	}
	return out
}

// deletable are the published revisions of p the worker may propose for deletion: only in a
// deletable package, and never its two newest published ones (copies start from the newest),
// so that the package keeps revisions.
func deletable(p *pkgModel) []*revision {
	pub := p.published()
	if !p.deletable || len(pub) <= 2 {
		return nil
	}
	return usable(pub[:len(pub)-2])
}

// newRevision adds a revision with the next workspace to p.
func (w *worker) newRevision(p *pkgModel) *revision {
	p.nextWS++
	ws := fmt.Sprintf("r%d", p.nextWS)
	r := &revision{pkg: p, workspace: ws,
		name:  discovery.RevisionName(p.repo, p.name, ws),
		draft: p.name + "-" + ws}
	p.revs = append(p.revs, r)
	return r
}

// initPackage creates a new package with an init PackageDraft.
func (w *worker) initPackage(ctx context.Context) error {
	p := &pkgModel{repo: w.tr.repos[w.rng.IntN(len(w.tr.repos))], name: fmt.Sprintf("w%dp%d", w.id, len(w.pkgs)+1),
		deletable: w.rng.IntN(3) == 0}
	w.pkgs = append(w.pkgs, p)
	r := w.newRevision(p)
	return w.createDraft(ctx, r, "init", kpov1.PackageDraftSource{Init: &kpov1.InitSource{Description: "crash test package " + p.name}})
}

// copyRevision starts a new revision of p from its last approved one, once that one is
// published (copying from a revision that is not yet published is refused, by design).
func (w *worker) copyRevision(ctx context.Context, p *pkgModel) error {
	pub := p.published()
	src := pub[len(pub)-1]
	if err := w.waitFor(ctx, "source "+src.name+" published", func(ctx context.Context) (bool, string, error) {
		pr, err := w.getRevision(ctx, src.name)
		if err != nil || pr == nil {
			return false, "does not exist", err
		}
		src.sawPublished(pr)
		return pr.Status.Lifecycle == kpov1.LifecyclePublished, "status.lifecycle " + string(pr.Status.Lifecycle), nil
	}); err != nil {
		if !errors.Is(err, errTrafficStopped) {
			src.stuck = err.Error()
		}
		return err
	}
	r := w.newRevision(p)
	return w.createDraft(ctx, r, "copy", kpov1.PackageDraftSource{Copy: &kpov1.CopySource{SourceRef: kpov1.LocalReference{Name: src.name}}})
}

// createDraft creates r's PackageDraft and waits until the manager produced the revision and
// its content ConfigMap.
func (w *worker) createDraft(ctx context.Context, r *revision, kind string, source kpov1.PackageDraftSource) error {
	d := &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Name: r.draft, Namespace: w.tr.ns},
		Spec: kpov1.PackageDraftSpec{Repository: r.pkg.repo, PackageName: r.pkg.name,
			WorkspaceName: r.workspace, Source: source},
	}
	if err := w.retry(ctx, "creating PackageDraft "+r.draft, func(ctx context.Context) error {
		err := w.tr.c.Create(ctx, d.DeepCopy())
		if apierrors.IsAlreadyExists(err) {
			return nil // an earlier attempt was accepted
		}
		return err
	}); err != nil {
		return err
	}
	r.lifecycle = kpov1.LifecycleDraft
	w.tr.accepted(w, kind, "PackageDraft %s → %s", r.draft, r.name)
	err := w.waitFor(ctx, "PackageDraft "+r.draft+" to produce "+r.name, func(ctx context.Context) (bool, string, error) {
		d := &kpov1.PackageDraft{}
		if err := w.tr.c.Get(ctx, client.ObjectKey{Namespace: w.tr.ns, Name: r.draft}, d); err != nil {
			return false, "", err
		}
		state := "status.packageRevision " + quoteOrNone(d.Status.PackageRevision) + ", " + conditionText(d.Status.Conditions)
		if c := meta.FindStatusCondition(d.Status.Conditions, kpov1.ReadyCondition); c != nil && c.Status == metav1.ConditionFalse &&
			c.ObservedGeneration == d.Generation && slices.Contains(refusals, c.Reason) {
			return false, state, fmt.Errorf("%w: %s", errRefused, state)
		}
		if d.Status.PackageRevision != r.name {
			return false, state, nil
		}
		pr, err := w.getRevision(ctx, r.name)
		if err != nil || pr == nil {
			return false, state + ", PackageRevision does not exist", err
		}
		cm := &corev1.ConfigMap{}
		if err := w.tr.c.Get(ctx, client.ObjectKey{Namespace: w.tr.ns, Name: r.name}, cm); err != nil {
			return false, state + ", content ConfigMap: " + err.Error(), client.IgnoreNotFound(err)
		}
		r.uid = string(pr.UID)
		return true, state, nil
	})
	if err != nil && !errors.Is(err, errTrafficStopped) {
		r.stuck = err.Error()
	}
	return err
}

// edit appends a new marker to the revision's markers file, as `kubectl edit` of the content
// ConfigMap would, retrying on conflicts and while the content is not (yet) writable.
func (w *worker) edit(ctx context.Context, r *revision) error {
	w.seq++
	marker := fmt.Sprintf("w%d-edit%d", w.id, w.seq)
	key := client.ObjectKey{Namespace: w.tr.ns, Name: r.name}
	if err := w.retry(ctx, "editing "+r.name, func(ctx context.Context) error {
		cm := &corev1.ConfigMap{}
		if err := w.tr.c.Get(ctx, key, cm); err != nil {
			return err
		}
		if hasMarker(cm.Data[markersFile], marker) {
			return nil // an earlier attempt was accepted
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[markersFile] += marker + "\n"
		err := w.tr.c.Update(ctx, cm)
		if apierrors.IsForbidden(err) {
			// Content is writable only while the lifecycle label says Draft; it lags behind a
			// reject, but a spec that is no longer Draft will not come back.
			if pr, getErr := w.getRevision(ctx, r.name); getErr == nil && pr != nil && pr.Spec.Lifecycle != r.lifecycle {
				return w.mismatch(r, pr)
			}
		}
		return err
	}); err != nil {
		return err
	}
	r.markers = append(r.markers, marker)
	w.tr.accepted(w, "edit", "%s +%s", r.name, marker)
	return nil
}

// setLifecycle patches spec.lifecycle (propose, reject, approve), as `kubectl patch` would,
// with optimistic locking so that the test knows which value it replaced. A spec.lifecycle
// other than the one the test last set was changed behind the user's back: that is reported,
// never taken as the outcome of the test's own write.
func (w *worker) setLifecycle(ctx context.Context, r *revision, l kpov1.Lifecycle) error {
	ambiguous := false // an earlier attempt may have been applied
	if err := w.retry(ctx, fmt.Sprintf("setting %s to %s", r.name, l), func(ctx context.Context) error {
		pr, err := w.getRevision(ctx, r.name)
		switch {
		case err != nil:
			return err
		case pr == nil:
			return errVanished
		case pr.Spec.Lifecycle == l && ambiguous:
			return nil // an earlier attempt was applied
		case pr.Spec.Lifecycle != r.lifecycle:
			return w.mismatch(r, pr)
		}
		patch := client.MergeFromWithOptions(pr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		pr.Spec.Lifecycle = l
		err = w.tr.c.Patch(ctx, pr, patch)
		if err != nil && !definite(err) {
			ambiguous = true
		}
		return err
	}); err != nil {
		return err
	}
	from := r.lifecycle
	r.lifecycle = l
	w.tr.accepted(w, lifecycleMoves[[2]kpov1.Lifecycle{from, l}], "%s %s → %s", r.name, from, l)
	return nil
}

// lifecycleMoves names the moves of spec.lifecycle the test makes, from → to.
var lifecycleMoves = map[[2]kpov1.Lifecycle]string{
	{kpov1.LifecycleDraft, kpov1.LifecycleProposed}:             "propose",
	{kpov1.LifecycleProposed, kpov1.LifecycleDraft}:             "reject",
	{kpov1.LifecycleProposed, kpov1.LifecyclePublished}:         "approve",
	{kpov1.LifecyclePublished, kpov1.LifecycleDeletionProposed}: "propose-delete",
	{kpov1.LifecycleDeletionProposed, kpov1.LifecyclePublished}: "withdraw-delete",
}

// approve publishes a proposal, as an admin, once the manager carried out the proposal and the
// revision is Ready (what kpotest.Revisions.Publish waits for): the approval is bound to the
// commit the status shows.
func (w *worker) approve(ctx context.Context, r *revision) error {
	if err := w.waitFor(ctx, r.name+" Proposed and Ready", func(ctx context.Context) (bool, string, error) {
		pr, err := w.getRevision(ctx, r.name)
		if err != nil || pr == nil {
			return false, "does not exist", err
		}
		c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		ready := c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == pr.Generation
		return pr.Status.Lifecycle == kpov1.LifecycleProposed && ready,
			"status.lifecycle " + string(pr.Status.Lifecycle) + ", " + conditionText(pr.Status.Conditions), nil
	}); err != nil {
		return err
	}
	return w.setLifecycle(ctx, r, kpov1.LifecyclePublished)
}

// proposeDeletion proposes a published revision for deletion as `kpoctl rpkg propose-delete`
// does: once the manager carried out the approval (a move is refused while spec and status
// differ), then, with settle, waiting until the manager carried out the proposal too. Without
// it (--wait=false), an approver's deletion that follows at once may reach the manager first.
func (w *worker) proposeDeletion(ctx context.Context, r *revision, settle bool) error {
	if err := w.waitSettled(ctx, r, kpov1.LifecyclePublished); err != nil {
		return err
	}
	if err := w.setLifecycle(ctx, r, kpov1.LifecycleDeletionProposed); err != nil || !settle {
		return err
	}
	return w.waitSettled(ctx, r, kpov1.LifecycleDeletionProposed)
}

// approveDeletion deletes a revision proposed for deletion, as an approver's `kpoctl rpkg del`
// does (the deletion guard lets only approvers, here the admin, delete one): the manager must
// remove its tag, its deletionProposed branch and its content, and nothing else.
func (w *worker) approveDeletion(ctx context.Context, r *revision) error {
	if err := w.waitSettled(ctx, r, kpov1.LifecycleDeletionProposed); err != nil {
		return err
	}
	return w.deleteRevision(ctx, r, "approve-delete")
}

// withdrawDeletion keeps a revision proposed for deletion, as `kpoctl rpkg reject` does.
func (w *worker) withdrawDeletion(ctx context.Context, r *revision) error {
	if err := w.waitSettled(ctx, r, kpov1.LifecycleDeletionProposed); err != nil {
		return err
	}
	if err := w.setLifecycle(ctx, r, kpov1.LifecyclePublished); err != nil {
		return err
	}
	return w.waitSettled(ctx, r, kpov1.LifecyclePublished)
}

// waitSettled waits until the manager carried out lifecycle l on r and r is Ready, as
// kpoctl's --wait does; it records where a Published revision is.
func (w *worker) waitSettled(ctx context.Context, r *revision, l kpov1.Lifecycle) error {
	return w.waitFor(ctx, fmt.Sprintf("%s %s and Ready", r.name, l), func(ctx context.Context) (bool, string, error) {
		pr, err := w.getRevision(ctx, r.name)
		if err != nil || pr == nil {
			return false, "does not exist", err
		}
		r.sawPublished(pr)
		c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		ready := c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == pr.Generation
		return pr.Spec.Lifecycle == l && pr.Status.Lifecycle == l && ready,
			fmt.Sprintf("spec.lifecycle %s, status.lifecycle %s, %s", pr.Spec.Lifecycle, pr.Status.Lifecycle, conditionText(pr.Status.Conditions)), nil
	})
}

// requestContent asks for a published revision's content, as `kubectl annotate` would: at
// random now (it stays past the traffic) or long enough ago that the request has expired, and
// waits for the manager to write or remove its ConfigMap.
func (w *worker) requestContent(ctx context.Context, r *revision) error {
	at, want := time.Now(), true
	if w.rng.IntN(2) == 0 {
		at, want = at.Add(-kpov1.ContentRequestTTL-time.Minute), false
	}
	if err := w.retry(ctx, "requesting the content of "+r.name, func(ctx context.Context) error {
		pr, err := w.getRevision(ctx, r.name)
		switch {
		case err != nil:
			return err
		case pr == nil:
			return errVanished
		}
		patch := client.MergeFrom(pr.DeepCopy())
		if pr.Annotations == nil {
			pr.Annotations = map[string]string{}
		}
		pr.Annotations[kpov1.ContentRequestedAnnotation] = at.UTC().Format(time.RFC3339)
		return w.tr.c.Patch(ctx, pr, patch)
	}); err != nil {
		return err
	}
	if err := w.waitFor(ctx, fmt.Sprintf("the content ConfigMap of %s to be there: %t", r.name, want), func(ctx context.Context) (bool, string, error) {
		pr, err := w.getRevision(ctx, r.name)
		if err != nil || pr == nil {
			return false, "does not exist", err
		}
		r.sawPublished(pr)
		return (pr.Status.ResourcesRef != nil) == want, fmt.Sprintf("status.resourcesRef %v", pr.Status.ResourcesRef), nil
	}); err != nil {
		return err
	}
	w.tr.accepted(w, "request-content", "%s at %s (content wanted: %t)", r.name, at.UTC().Format(time.RFC3339), want)
	return nil
}

// deleteRevision deletes a PackageRevision (Draft, Proposed, or DeletionProposed: kind says
// which operation that is), then its PackageDraft. It records which object it deleted, so
// that a revision that comes back can be told apart.
func (w *worker) deleteRevision(ctx context.Context, r *revision, kind string) error {
	var seen *kpov1.PackageRevision
	if err := w.retry(ctx, "deleting "+r.name, func(ctx context.Context) error {
		pr, err := w.getRevision(ctx, r.name)
		switch {
		case err != nil:
			return err
		case pr == nil && seen == nil:
			return errVanished
		case pr == nil || (seen != nil && pr.UID != seen.UID):
			return nil // deleted by an earlier attempt
		case seen == nil:
			seen = pr
		}
		return client.IgnoreNotFound(w.tr.c.Delete(ctx, pr, client.Preconditions{UID: &pr.UID}))
	}); err != nil {
		return err
	}
	r.deleted = true
	r.deletedUID = string(seen.UID)
	r.deletedObject = fmt.Sprintf("uid %s, status.lifecycle %s, status.ref %s, finalizers %v, labels %s=%q",
		seen.UID, seen.Status.Lifecycle, seen.Status.Ref, seen.Finalizers, kpov1.DraftLabel, seen.Labels[kpov1.DraftLabel])
	w.tr.accepted(w, kind, "PackageRevision %s (spec %s; %s)", r.name, r.lifecycle, r.deletedObject)
	return w.dropDraft(ctx, r)
}

// abandon deletes the PackageDraft of a Draft revision: its finalizer abandons the draft.
// When the revision is not plainly the PackageDraft's Draft right now (a reject still being
// carried out, or the revision not labelled as the PackageDraft's), the outcome of that would
// depend on timing, so the revision is deleted directly instead.
func (w *worker) abandon(ctx context.Context, r *revision) error {
	var plain bool
	var seen *kpov1.PackageRevision
	if err := w.retry(ctx, "reading "+r.name, func(ctx context.Context) error {
		pr, err := w.getRevision(ctx, r.name)
		switch {
		case err != nil:
			return err
		case pr == nil:
			return errVanished
		}
		seen = pr
		d := &kpov1.PackageDraft{}
		if err := w.tr.c.Get(ctx, client.ObjectKey{Namespace: w.tr.ns, Name: r.draft}, d); err != nil {
			return err
		}
		plain = pr.Spec.Lifecycle == kpov1.LifecycleDraft && pr.Status.Lifecycle == kpov1.LifecycleDraft &&
			pr.Labels[kpov1.DraftLabel] == r.draft && d.Status.PackageRevision == r.name
		return nil
	}); err != nil {
		return err
	}
	if !plain {
		return w.deleteRevision(ctx, r, "delete")
	}
	if err := w.deleteObject(ctx, &kpov1.PackageDraft{ObjectMeta: metav1.ObjectMeta{Name: r.draft, Namespace: w.tr.ns}}); err != nil {
		return err
	}
	r.deleted, r.draftDeleted = true, true
	r.deletedUID = string(seen.UID)
	r.deletedObject = fmt.Sprintf("abandoned through its PackageDraft: uid %s, status.lifecycle %s, finalizers %v",
		seen.UID, seen.Status.Lifecycle, seen.Finalizers)
	w.tr.accepted(w, "abandon", "PackageDraft %s (revision %s; %s)", r.draft, r.name, r.deletedObject)
	return nil
}

// dropDraft deletes r's PackageDraft; a revision past Draft stays.
func (w *worker) dropDraft(ctx context.Context, r *revision) error {
	if err := w.deleteObject(ctx, &kpov1.PackageDraft{ObjectMeta: metav1.ObjectMeta{Name: r.draft, Namespace: w.tr.ns}}); err != nil {
		return err
	}
	r.draftDeleted = true
	w.tr.accepted(w, "drop-draft", "PackageDraft %s (revision %s %s)", r.draft, r.name, r.lifecycle)
	return nil
}

// deleteObject deletes obj; an object already gone or being deleted counts as accepted (an
// earlier attempt was).
func (w *worker) deleteObject(ctx context.Context, obj client.Object) error {
	return w.retry(ctx, "deleting "+obj.GetName(), func(ctx context.Context) error {
		return client.IgnoreNotFound(w.tr.c.Delete(ctx, obj.DeepCopyObject().(client.Object)))
	})
}

// errVanished: a revision the test never deleted does not exist.
var errVanished = errors.New("the PackageRevision does not exist, but the test never deleted it")

// errChangedBehindBack: the PackageRevision's spec is not what the test last set.
var errChangedBehindBack = errors.New("changed behind the user's back")

// mismatch describes a PackageRevision whose spec.lifecycle is not the one the test last set.
func (w *worker) mismatch(r *revision, pr *kpov1.PackageRevision) error {
	recreated := ""
	if string(pr.UID) != r.uid {
		recreated = fmt.Sprintf("; the object was recreated: uid %s, created %s (the test saw uid %s)",
			pr.UID, pr.CreationTimestamp.Format("15:04:05"), r.uid)
	}
	return fmt.Errorf("%w: spec.lifecycle of %s is %s (status %s), but the test last set %s%s",
		errChangedBehindBack, pr.Name, pr.Spec.Lifecycle, pr.Status.Lifecycle, r.lifecycle, recreated)
}

// definite tells whether the API server certainly refused a write (so it was not applied).
func definite(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsForbidden(err) || apierrors.IsNotFound(err) ||
		apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsAlreadyExists(err)
}

// getRevision reads a PackageRevision; nil when it does not exist.
func (w *worker) getRevision(ctx context.Context, name string) (*kpov1.PackageRevision, error) {
	pr := &kpov1.PackageRevision{}
	err := w.tr.c.Get(ctx, client.ObjectKey{Namespace: w.tr.ns, Name: name}, pr)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return pr, err
}

// retry runs fn until it succeeds, for at most opTimeout. Every failure the API server may
// answer while the manager is down or racing the test is retried: conflicts, objects not there
// yet, content not writable yet (Forbidden while the lifecycle label lags), transient errors.
// Validation errors are not: they mean the test's model and the cluster disagree.
func (w *worker) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, pollInterval, opTimeout, true, func(ctx context.Context) (bool, error) {
		callCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		last = fn(callCtx)
		if last == nil {
			return true, nil
		}
		if apierrors.IsInvalid(last) || apierrors.IsBadRequest(last) || apierrors.IsAlreadyExists(last) ||
			errors.Is(last, errVanished) || errors.Is(last, errVariantVanished) || errors.Is(last, errChangedBehindBack) {
			return false, last
		}
		if w.tr.waits.Err() != nil && definite(last) {
			return false, errTrafficStopped // refused, so not applied: nothing to record
		}
		return false, nil
	})
	if err != nil {
		if errors.Is(err, errTrafficStopped) {
			return err
		}
		if last != nil && !errors.Is(err, last) {
			return fmt.Errorf("%s: %w (last error: %v)", what, err, last)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// waitFor polls cond for at most opTimeout; on timeout the error says what was last seen.
func (w *worker) waitFor(ctx context.Context, what string, cond func(context.Context) (bool, string, error)) error {
	var state string
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(w.tr.waits, cancel)
	defer stop()
	err := wait.PollUntilContextTimeout(waitCtx, pollInterval, opTimeout, true, func(ctx context.Context) (bool, error) {
		ok, s, err := cond(ctx)
		if s != "" {
			state = s
		}
		if errors.Is(err, errRefused) {
			return false, err
		}
		if err != nil && ctx.Err() == nil {
			state = err.Error()
		}
		return ok, nil
	})
	switch {
	case errors.Is(err, errRefused):
		return fmt.Errorf("waiting for %s: %w", what, err)
	case err != nil && w.tr.waits.Err() != nil:
		return errTrafficStopped
	case err != nil:
		return fmt.Errorf("waiting for %s: not within %s (last seen: %s)", what, opTimeout, state)
	}
	return nil
}

// killer SIGKILLs the manager after a random life and restarts it after a random pause,
// until the traffic stops; it leaves the manager running.
func killer(tr *traffic, m *managerProcess, rng *rand.Rand, lifeMin, lifeMax, pauseMax time.Duration) error {
	for {
		life := lifeMin + time.Duration(rng.Int64N(int64(lifeMax-lifeMin)+1))
		pause := time.Duration(rng.Int64N(int64(pauseMax) + 1))
		deadline := time.Now().Add(life)
		for time.Now().Before(deadline) {
			if tr.stop.Load() {
				return nil
			}
			time.Sleep(10 * time.Millisecond) // a schedule, not a wait for the manager
		}
		m.kill()
		time.Sleep(pause)
		if err := m.start(); err != nil {
			return err
		}
	}
}

func hasMarker(data, marker string) bool {
	for _, l := range strings.Split(data, "\n") {
		if l == marker {
			return true
		}
	}
	return false
}

func quoteOrNone(s string) string {
	if s == "" {
		return "unset"
	}
	return fmt.Sprintf("%q", s)
}

// conditionText describes the Ready condition for messages.
func conditionText(conds []metav1.Condition) string {
	c := meta.FindStatusCondition(conds, kpov1.ReadyCondition)
	if c == nil {
		return "no Ready condition"
	}
	return fmt.Sprintf("Ready=%s %s (observedGeneration %d): %s", c.Status, c.Reason, c.ObservedGeneration, c.Message)
}
