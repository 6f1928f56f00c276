package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/conflicts"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/merge"
)

// conflictState reads a draft's conflicts from its Git history at head: those the commit that
// recorded them lists, and the resolutions of the commits since.
func conflictState(src *git.Repo, head, pkg, ws string) (conflicts.State, error) {
	history, err := revisionHistory(src, head, pkg, ws)
	if err != nil {
		return conflicts.State{}, err
	}
	messages := make([]string, len(history))
	for i, c := range history {
		messages[i] = c.Message
	}
	return conflicts.FromHistory(messages), nil
}

// hasUnresolvedConflicts tells from the status whether a draft's history needs reading for
// its conflicts: only a draft whose status lists unresolved ones does.
func hasUnresolvedConflicts(pr *kpov1.PackageRevision) bool {
	for _, c := range pr.Status.Conflicts {
		if c.Resolution == "" {
			return true
		}
	}
	return false
}

// conflictsCondition is ConflictsResolved as status.conflicts says, or nil for a revision
// without conflicts.
func conflictsCondition(pr *kpov1.PackageRevision) *metav1.Condition {
	if len(pr.Status.Conflicts) == 0 {
		return nil
	}
	var unresolved []conflicts.Record
	for _, c := range pr.Status.Conflicts {
		if c.Resolution == "" {
			unresolved = append(unresolved, conflicts.Record{ID: c.ID, File: c.File, Kind: c.Kind, Name: c.Name, Field: c.Field})
		}
	}
	c := &metav1.Condition{Type: kpov1.ConflictsResolvedCondition, Status: metav1.ConditionTrue, Reason: kpov1.ConflictsResolvedReason,
		Message: fmt.Sprintf("all %d conflict(s) of the upgrade are resolved", len(pr.Status.Conflicts)), ObservedGeneration: pr.Generation}
	if len(unresolved) > 0 {
		c.Status, c.Reason = metav1.ConditionFalse, kpov1.UnresolvedConflictsReason
		c.Message = conflicts.Summary(unresolved) + resolveAdvice(pr.Name)
	}
	return c
}

// setConflictsCondition sets or removes ConflictsResolved.
func setConflictsCondition(pr *kpov1.PackageRevision) {
	if c := conflictsCondition(pr); c != nil {
		meta.SetStatusCondition(&pr.Status.Conditions, *c)
		return
	}
	meta.RemoveStatusCondition(&pr.Status.Conditions, kpov1.ConflictsResolvedCondition)
}

func resolveAdvice(name string) string {
	return fmt.Sprintf("; edit each field, or choose a side: kpoctl rpkg resolve %s --conflict ID --take local|upstream (annotation %s)",
		name, kpov1.ResolveConflictsAnnotation)
}

// refuseUnresolved refuses to propose a draft with unresolved conflicts, read from Git.
func refuseUnresolved(src *git.Repo, pr *kpov1.PackageRevision, head string) error {
	st, err := conflictState(src, head, pr.Spec.PackageName, pr.Spec.WorkspaceName)
	if err != nil {
		return err
	}
	if unresolved := st.Unresolved(); len(unresolved) > 0 {
		return terminal(kpov1.UnresolvedConflictsReason, fmt.Errorf("%s cannot be proposed: %s%s",
			pr.Name, conflicts.Summary(unresolved), resolveAdvice(pr.Name)))
	}
	return nil
}

// resolvedByEdit returns the Kpo-Resolved trailers for an edit of a draft with unresolved
// conflicts: the conflicts whose field the edit changes (conflicts.State.EditedBy).
func resolvedByEdit(src *git.Repo, pr *kpov1.PackageRevision, path string, edited map[string][]byte) (string, error) {
	if !hasUnresolvedConflicts(pr) {
		return "", nil
	}
	head, ok := src.Ref(git.DraftRef(path, pr.Spec.WorkspaceName))
	if !ok {
		return "", nil
	}
	st, err := conflictState(src, head, pr.Spec.PackageName, pr.Spec.WorkspaceName)
	if err != nil {
		return "", err
	}
	before, err := src.ReadTree(head, path)
	if err != nil {
		return "", err
	}
	return conflicts.ResolvedTrailers(st.EditedBy(before, edited)), nil
}

// reconcileConflictResolution applies the kpo.dev/resolve-conflicts annotation of a Draft:
// each chosen side's value is set in the content, rendered, and committed to the draft branch
// in one commit with a Kpo-Resolved trailer per conflict, authored by the identity the
// admission policy stamped (kpo.dev/resolve-conflicts-by); then the annotation is removed. An
// annotation that is not valid is refused (InvalidConflictResolution) and nothing is written.
// After a crash between the commit and the removal, the ids are resolved already in Git and
// the annotation is only removed.
func (r *PackageRevisionReconciler) reconcileConflictResolution(ctx context.Context, s *revisionScope) error {
	pr, repo := s.pr, s.repo
	annotation, files, err := draftRequest(s, kpov1.ResolveConflictsAnnotation, kpov1.InvalidConflictResolutionReason,
		"only the conflicts of a Draft can be resolved")
	if files == nil || err != nil {
		return err
	}

	unlock := r.git.lock(repo)
	src, err := r.git.open(ctx, repo)
	if err != nil {
		unlock()
		return err
	}
	path := discovery.PackagePath(repo.Spec.Git.Directory, pr.Spec.PackageName)
	ref := git.DraftRef(path, pr.Spec.WorkspaceName)
	head, ok := src.Ref(ref)
	if !ok || head != pr.Status.Commit {
		unlock()
		return r.resync(ctx, repo, pr.Spec.PackageName)
	}
	st, err := conflictState(src, head, pr.Spec.PackageName, pr.Spec.WorkspaceName)
	if err != nil {
		unlock()
		return err
	}
	choices, err := st.ParseChoices(annotation)
	if err != nil {
		unlock()
		return terminal(kpov1.InvalidConflictResolutionReason, fmt.Errorf("%s: %w", pr.Name, err))
	}
	if len(choices) > 0 {
		err = r.commitResolution(ctx, src, s, st, choices, files, path, ref)
	}
	unlock()
	if err != nil {
		return err
	}
	return r.forgetResolution(ctx, pr, annotation)
}

// draftRequest reads the request annotation key of a Draft, and the Draft's content to carry it
// out on: no files (and no error) when the annotation is absent, or while an edit waits for its
// commit (reconcileContent commits it first, and its commit requeues the revision). A revision
// that is not a Draft with content is refused with reason, saying that only one may be asked.
func draftRequest(s *revisionScope, key, reason, only string) (string, map[string][]byte, error) {
	pr, cm := s.pr, s.cm
	value, asked := pr.Annotations[key]
	if !asked {
		return "", nil, nil
	}
	if pr.Status.Lifecycle != kpov1.LifecycleDraft || cm == nil {
		return "", nil, terminal(reason, fmt.Errorf("%s is %s: %s; remove annotation %s", pr.Name, pr.Status.Lifecycle, only, key))
	}
	if contentPending(pr, cm) != "" {
		return "", nil, nil
	}
	files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
	if err != nil {
		return "", nil, terminal(kpov1.InvalidContentReason, fmt.Errorf("content config map %s: %w", cm.Name, err))
	}
	return value, files, nil
}

// commitResolution sets the chosen values, renders, commits and writes the content back.
func (r *PackageRevisionReconciler) commitResolution(ctx context.Context, src *git.Repo, s *revisionScope, st conflicts.State,
	choices map[string]string, files map[string][]byte, path, ref string) error {
	pr, repo := s.pr, s.repo
	files = maps.Clone(files)
	for _, rec := range st.Records {
		how, chosen := choices[rec.ID]
		if !chosen {
			continue
		}
		var err error
		if files, err = merge.SetField(files, rec.Ref(), rec.Value(how)); err != nil {
			if errors.Is(err, merge.ErrFieldNotFound) {
				return terminal(kpov1.InvalidConflictResolutionReason, fmt.Errorf(
					"conflict %s: %w: the draft no longer has it; edit the content to resolve it instead", rec.ID, err))
			}
			return terminal(kpov1.InvalidConflictResolutionReason, fmt.Errorf("conflict %s: %w", rec.ID, err))
		}
	}
	rendered, err := r.renderForCommit(ctx, s, files, "conflicts not resolved")
	if err != nil {
		return err
	}
	var editors []string
	if by := pr.Annotations[kpov1.ResolvedByAnnotation]; by != "" {
		editors = []string{by}
	}
	nc := editCommit(repo, pr, editors)
	nc.Message = commitMessage("Resolve conflicts of "+pr.Spec.PackageName+"\n\n"+strings.TrimSuffix(conflicts.ResolvedTrailers(choices), "\n"),
		pr.Spec.PackageName, pr.Spec.WorkspaceName, 0, "edit", "")
	nc.Dir, nc.Files, nc.AllowEmpty = path, rendered, true
	return r.commitToDraft(ctx, src, s, ref, nc, "the resolution")
}

// forgetResolution removes the applied annotation, unless the user changed it meanwhile.
func (r *PackageRevisionReconciler) forgetResolution(ctx context.Context, pr *kpov1.PackageRevision, applied string) error {
	return r.forgetAnnotations(ctx, pr, kpov1.ResolveConflictsAnnotation, applied, kpov1.ResolvedByAnnotation)
}
