// Package lifecycle holds what a user does to package revisions through the API server with
// their own identity: the lifecycle moves (propose, approve, reject, propose-delete) with the
// checks made before them, deletion, the request for a published revision's content, and new
// drafts. kpoctl and the web UI both call it, so a button in the browser and a command in a
// terminal check and write exactly the same way; each words the outcome for its own user.
//
// It makes no wait of its own: kpoctl waits with its --timeout, the UI with the browser's
// polling.
package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
)

// Transition is a lifecycle move a user asks for.
type Transition struct {
	// Name is the move's name, as the commands and the UI's requests spell it.
	Name string
	// Done is the past participle the outcome is reported with ("proposed").
	Done string
	// RequireReady refuses to move a revision whose Ready condition reports a failure: a
	// draft with invalid content is fixed first, not proposed.
	RequireReady bool
	// next is the lifecycle to move to from the current one, or an error saying why not.
	next func(name string, current kpov1.Lifecycle) (kpov1.Lifecycle, error)
}

// The lifecycle moves.
var (
	// Propose moves a Draft to Proposed.
	Propose = Transition{
		Name: "propose", Done: "proposed", RequireReady: true,
		next: func(name string, l kpov1.Lifecycle) (kpov1.Lifecycle, error) {
			if l == kpov1.LifecycleDraft || l == kpov1.LifecycleProposed {
				return kpov1.LifecycleProposed, nil
			}
			return "", fmt.Errorf("cannot propose %s: it is %s, only a Draft can be proposed; start a new draft with `kpoctl rpkg copy %s --workspace NAME`", name, l, name)
		},
	}
	// Approve publishes a Proposed revision (the approval subresource: kpo-approver).
	Approve = Transition{
		Name: "approve", Done: "approved", RequireReady: true,
		next: func(name string, l kpov1.Lifecycle) (kpov1.Lifecycle, error) {
			switch l {
			case kpov1.LifecycleProposed, kpov1.LifecyclePublished:
				return kpov1.LifecyclePublished, nil
			case kpov1.LifecycleDraft:
				return "", fmt.Errorf("cannot approve %s: it is a Draft; propose it first with `kpoctl rpkg propose %s`", name, name)
			}
			return "", fmt.Errorf("cannot approve %s: it is %s; to delete it, an approver runs `kpoctl rpkg del %s`, to keep it `kpoctl rpkg reject %s`", name, l, name, name)
		},
	}
	// Reject sends a proposal back to Draft, and keeps a revision proposed for deletion.
	Reject = Transition{
		Name: "reject", Done: "rejected",
		next: func(name string, l kpov1.Lifecycle) (kpov1.Lifecycle, error) {
			switch l {
			case kpov1.LifecycleProposed:
				return kpov1.LifecycleDraft, nil
			case kpov1.LifecycleDeletionProposed:
				return kpov1.LifecyclePublished, nil
			}
			return "", fmt.Errorf("cannot reject %s: it is %s, only Proposed and DeletionProposed revisions can be rejected", name, l)
		},
	}
	// ProposeDelete proposes a Published revision for deletion.
	ProposeDelete = Transition{
		Name: "propose-delete", Done: "proposed for deletion",
		next: func(name string, l kpov1.Lifecycle) (kpov1.Lifecycle, error) {
			if l == kpov1.LifecyclePublished || l == kpov1.LifecycleDeletionProposed {
				return kpov1.LifecycleDeletionProposed, nil
			}
			return "", fmt.Errorf("cannot propose %s for deletion: it is %s, only Published revisions are; delete it with `kpoctl rpkg del %s`", name, l, name)
		},
	}
)

// Transitions are the moves by name.
var Transitions = map[string]Transition{
	Propose.Name: Propose, Approve.Name: Approve, Reject.Name: Reject, ProposeDelete.Name: ProposeDelete,
}

// BlockedError is a move refused because of a condition the manager reported: a failed
// Ready, or failed guardrails.
type BlockedError struct {
	Name      string
	Condition metav1.Condition
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("packagerevision %s: %s: %s", e.Name, e.Condition.Reason, e.Condition.Message)
}

// Plan returns the lifecycle t moves pr to, or why it may not: the revision is moving now, t
// does not apply to its lifecycle, or (for a move that changes something) a failed Ready or,
// for a proposal, failed guardrails (a *BlockedError).
func Plan(pr *kpov1.PackageRevision, t Transition) (kpov1.Lifecycle, error) {
	name := pr.Name
	if pr.Spec.Lifecycle != pr.Status.Lifecycle && pr.Status.Lifecycle != "" {
		return "", fmt.Errorf("packagerevision %s is moving from %s to %s: wait for it (`kpoctl rpkg get %s`) and try again", name, pr.Status.Lifecycle, pr.Spec.Lifecycle, name)
	}
	to, err := t.next(name, pr.Spec.Lifecycle)
	if err != nil {
		return "", err
	}
	if !t.RequireReady || to == pr.Spec.Lifecycle {
		return to, nil
	}
	if c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition); c != nil && failed(c, pr.Generation) {
		return "", &BlockedError{Name: name, Condition: *c}
	}
	if c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.GuardrailsPassedCondition); to == kpov1.LifecycleProposed && c != nil && c.Status == metav1.ConditionFalse {
		return "", &BlockedError{Name: name, Condition: *c}
	}
	return to, nil
}

// failed reports a Ready condition that describes generation and says it failed (not that
// the manager is still working).
func failed(c *metav1.Condition, generation int64) bool {
	return c.ObservedGeneration >= generation && c.Status == metav1.ConditionFalse && c.Reason != kpov1.ProgressingReason
}

// Move sets pr's spec.lifecycle to to, on the version pr holds (optimistic locking: the checks
// of Plan were made on it, and the API server refuses the move if it changed since).
func Move(ctx context.Context, c client.Client, pr *kpov1.PackageRevision, to kpov1.Lifecycle) error {
	if to == pr.Spec.Lifecycle {
		return nil
	}
	patch := client.MergeFromWithOptions(pr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	pr.Spec.Lifecycle = to
	return c.Patch(ctx, pr, patch)
}

// Delete deletes a revision (a Draft or Proposed revision's branch, or the tag of one proposed
// for deletion); one already gone is no error.
func Delete(ctx context.Context, c client.Client, pr *kpov1.PackageRevision) error {
	if err := c.Delete(ctx, pr); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// DeleteDraftOf deletes the PackageDraft that produced a deleted revision, if any, so the
// same name can be drafted again.
func DeleteDraftOf(ctx context.Context, c client.Client, pr *kpov1.PackageRevision) error {
	draft := pr.Labels[kpov1.DraftLabel]
	if draft == "" {
		return nil
	}
	d := &kpov1.PackageDraft{ObjectMeta: metav1.ObjectMeta{Namespace: pr.Namespace, Name: draft}}
	if err := c.Delete(ctx, d); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("packagerevision %s is deleted, but not its packagedraft %s: %w", pr.Name, draft, err)
	}
	return nil
}

// PublishedContent reports whether a revision's content is immutable, and so in a ConfigMap
// only on request.
func PublishedContent(pr *kpov1.PackageRevision) bool {
	return pr.Status.Lifecycle == kpov1.LifecyclePublished || pr.Status.Lifecycle == kpov1.LifecycleDeletionProposed
}

// RequestContent asks the manager for the content ConfigMap of a published revision: the
// kpo.dev/content-requested annotation, set to now (patch on packagerevisions, kpo-author).
// ContentLoaded then says when it is there.
func RequestContent(ctx context.Context, c client.Client, pr *kpov1.PackageRevision) error {
	patch := client.MergeFrom(pr.DeepCopy())
	if pr.Annotations == nil {
		pr.Annotations = map[string]string{}
	}
	pr.Annotations[kpov1.ContentRequestedAnnotation] = time.Now().UTC().Format(time.RFC3339)
	return c.Patch(ctx, pr, patch)
}

// ContentLoaded reports whether pr's status names its content ConfigMap, or why it never
// will: the content is invalid, or the manager refused the request (a *BlockedError).
func ContentLoaded(pr *kpov1.PackageRevision) (bool, error) {
	if ce := pr.Status.ContentError; ce != nil {
		return false, fmt.Errorf("packagerevision %s has no content: %s: %s", pr.Name, ce.Reason, ce.Message)
	}
	if r := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition); r != nil && r.Reason == kpov1.InvalidContentRequestReason {
		return false, &BlockedError{Name: pr.Name, Condition: *r}
	}
	return pr.Status.ResourcesRef != nil, nil
}

// DraftTarget is where a new draft goes: repository, package and workspace.
type DraftTarget struct {
	Repository, PackageName, Workspace string
}

// Errors of NewDraft, for the caller to word.
var (
	// ErrNoRepository: the target repository is not registered in the namespace.
	ErrNoRepository = errors.New("repository not found")
	// ErrWorkspaceTaken: the package has a revision with that workspace already.
	ErrWorkspaceTaken = errors.New("the workspace is taken")
	// ErrDraftExists: a PackageDraft of that name exists (its revision was deleted or is
	// being created).
	ErrDraftExists = errors.New("the packagedraft exists")
)

// NewDraft creates the PackageDraft for target with source, named like the revision it
// produces, after checking that the repository exists and the workspace is free. A failed
// draft of an earlier attempt that is on its way out is waited for with waitGone first. API
// errors are returned as they come; the manager's outcome is the draft's Ready condition.
func NewDraft(ctx context.Context, c client.Client, ns string, target DraftTarget, source kpov1.PackageDraftSource,
	waitGone func(context.Context, client.Object) error) (*kpov1.PackageDraft, error) {
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: target.Repository}, &kpov1.Repository{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %s", ErrNoRepository, target.Repository)
		}
		return nil, err
	}
	name := discovery.RevisionName(target.Repository, target.PackageName, target.Workspace)
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &kpov1.PackageRevision{}); err == nil {
		return nil, fmt.Errorf("%w: package revision %s", ErrWorkspaceTaken, name)
	}
	if old := (&kpov1.PackageDraft{}); c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, old) == nil && !old.DeletionTimestamp.IsZero() {
		if err := waitGone(ctx, old); err != nil {
			return nil, err
		}
	}
	draft := &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kpov1.PackageDraftSpec{
			Repository: target.Repository, PackageName: target.PackageName, WorkspaceName: target.Workspace, Source: source,
		},
	}
	if err := c.Create(ctx, draft); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("%w: %s", ErrDraftExists, name)
		}
		return nil, err
	}
	return draft, nil
}

// Resolve asks the manager to resolve conflicts of an upgrade draft: choices maps conflict ids
// (status.conflicts) to the side to take, local or upstream, added to those still pending in
// the kpo.dev/resolve-conflicts annotation. The patch is made on the version pr holds.
func Resolve(ctx context.Context, c client.Client, pr *kpov1.PackageRevision, choices map[string]string) error {
	if pr.Status.Lifecycle != kpov1.LifecycleDraft {
		return fmt.Errorf("packagerevision %s is %s: only the conflicts of a Draft can be resolved", pr.Name, pr.Status.Lifecycle)
	}
	for id, side := range choices {
		if side != kpov1.ConflictLocal && side != kpov1.ConflictUpstream {
			return fmt.Errorf("conflict %s: take local or upstream, not %q", id, side)
		}
	}
	pending := map[string]string{}
	if v := pr.Annotations[kpov1.ResolveConflictsAnnotation]; v != "" && json.Unmarshal([]byte(v), &pending) != nil {
		pending = map[string]string{}
	}
	for id, side := range choices {
		pending[id] = side
	}
	data, err := json.Marshal(pending)
	if err != nil {
		return err
	}
	patch := client.MergeFromWithOptions(pr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if pr.Annotations == nil {
		pr.Annotations = map[string]string{}
	}
	pr.Annotations[kpov1.ResolveConflictsAnnotation] = string(data)
	return c.Patch(ctx, pr, patch)
}

// UpgradeDraft is the draft that upgrades current, based on upstream revision based, to the
// upstream revision target (a three-way merge, as kpt pkg update does). An empty workspace is
// upgrade-v<current's revision>-to-upstream-v<target's revision>.
func UpgradeDraft(current, based, target *kpov1.PackageRevision, workspace string, strategy kpov1.UpdateStrategy, allowConflicts bool) (DraftTarget, kpov1.PackageDraftSource) {
	if workspace == "" {
		workspace = fmt.Sprintf("upgrade-v%d-to-upstream-v%d", current.Status.Revision, target.Status.Revision)
	}
	return DraftTarget{Repository: current.Spec.Repository, PackageName: current.Spec.PackageName, Workspace: workspace},
		kpov1.PackageDraftSource{Upgrade: &kpov1.UpgradeSource{
			OldUpstream: kpov1.LocalReference{Name: based.Name},
			NewUpstream: kpov1.LocalReference{Name: target.Name},
			Current:     kpov1.LocalReference{Name: current.Name},
			Strategy:    strategy, AllowConflicts: allowConflicts,
		}}
}

// RollbackDraft is the draft that rolls a package back from its latest published revision to
// a copy of the older published revision to. An empty workspace is
// rollback-v<latest's revision>-to-v<to's revision>.
func RollbackDraft(latest, to *kpov1.PackageRevision, workspace string) (DraftTarget, kpov1.PackageDraftSource) {
	if workspace == "" {
		workspace = fmt.Sprintf("rollback-v%d-to-v%d", latest.Status.Revision, to.Status.Revision)
	}
	return DraftTarget{Repository: latest.Spec.Repository, PackageName: latest.Spec.PackageName, Workspace: workspace},
		kpov1.PackageDraftSource{Copy: &kpov1.CopySource{SourceRef: kpov1.LocalReference{Name: to.Name}}}
}
