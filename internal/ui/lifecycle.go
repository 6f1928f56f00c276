package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/lifecycle"
)

// moveRequest is a lifecycle move asked for by the revision page, on the version it shows.
type moveRequest struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Move is propose, approve, reject or propose-delete.
	Move string `json:"move"`
	// ResourceVersion is the version the page showed: the move is made on it or refused.
	ResourceVersion string `json:"resourceVersion"`
}

// moveLifecycle is POST /ui/lifecycle: the checks and the write of `kpoctl rpkg propose`
// (approve, reject, propose-delete), shared through internal/lifecycle, with the user's
// identity. The page follows the revision for the manager's outcome.
func (s *Server) moveLifecycle(w http.ResponseWriter, r *http.Request) {
	var req moveRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	t, ok := lifecycle.Transitions[req.Move]
	if !ok || req.ResourceVersion == "" {
		writeError(w, http.StatusBadRequest, "a move needs {namespace, name, move (propose, approve, reject, propose-delete), resourceVersion}")
		return
	}
	pr, err := s.revision(r.Context(), req.Namespace, req.Name)
	if err != nil {
		writeErr(w, err)
		return
	}
	// The move is made on the version the page showed: if the revision changed since, the
	// API server refuses it (optimistic locking) and the page shows its message.
	pr.ResourceVersion = req.ResourceVersion
	to, err := lifecycle.Plan(pr, t)
	if blocked := (*lifecycle.BlockedError)(nil); errors.As(err, &blocked) {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("not %s: %s", t.Done, blocked.Error()))
		return
	}
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err := lifecycle.Move(r.Context(), s.client, pr, to); err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"lifecycle": string(to), "resourceVersion": pr.ResourceVersion})
}

// deleteRevision is POST /ui/delete {namespace, name}: the revision deleted as `kpoctl rpkg
// del` does (its PackageDraft with it), with the user's identity.
func (s *Server) deleteRevision(w http.ResponseWriter, r *http.Request) {
	var ref revisionRef
	if err := decodeBody(w, r, &ref); err != nil {
		writeErr(w, err)
		return
	}
	pr, err := s.revision(r.Context(), ref.Namespace, ref.Name)
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := lifecycle.Delete(r.Context(), s.client, pr); err != nil {
		writeAPIError(w, err)
		return
	}
	if err := lifecycle.DeleteDraftOf(r.Context(), s.client, pr); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": pr.Name})
}

// revision reads a revision with the user's identity.
func (s *Server) revision(ctx context.Context, ns, name string) (*kpov1.PackageRevision, error) {
	if ns == "" || name == "" {
		return nil, &httpError{http.StatusBadRequest, "name the revision: {namespace, name}"}
	}
	pr := &kpov1.PackageRevision{}
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pr); err != nil {
		return nil, err
	}
	return pr, nil
}

// draftRequest is a new draft asked for by the page: init, clone, copy, upgrade or rollback
// (a copy), as the kpoctl rpkg commands of those names make them.
type draftRequest struct {
	Namespace   string                   `json:"namespace"`
	Repository  string                   `json:"repository"`
	PackageName string                   `json:"packageName"`
	Workspace   string                   `json:"workspace"`
	Source      kpov1.PackageDraftSource `json:"source"`
}

// draftWaitTimeout bounds the wait for a failed draft of an earlier attempt to go.
const draftWaitTimeout = 20 * time.Second

// createDraft is POST /ui/drafts: a PackageDraft created with the user's identity after the
// checks of kpoctl (internal/lifecycle.NewDraft). The page follows the draft's Ready
// condition and opens its revision.
func (s *Server) createDraft(w http.ResponseWriter, r *http.Request) {
	var req draftRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	src := req.Source
	sources := 0
	for _, set := range []bool{src.Init != nil, src.Clone != nil, src.Copy != nil, src.Upgrade != nil} {
		if set {
			sources++
		}
	}
	if req.Namespace == "" || req.Repository == "" || req.PackageName == "" || req.Workspace == "" || sources != 1 {
		writeError(w, http.StatusBadRequest, "a new draft needs {namespace, repository, packageName, workspace} and one source: init, clone, copy or upgrade")
		return
	}
	s.startDraft(w, r, req.Namespace, lifecycle.DraftTarget{Repository: req.Repository, PackageName: req.PackageName, Workspace: req.Workspace}, src)
}

// startDraft creates a PackageDraft with the checks of kpoctl and answers with its name.
func (s *Server) startDraft(w http.ResponseWriter, r *http.Request, ns string, target lifecycle.DraftTarget, src kpov1.PackageDraftSource) {
	draft, err := lifecycle.NewDraft(r.Context(), s.client, ns, target, src, s.waitGone)
	switch {
	case errors.Is(err, lifecycle.ErrNoRepository):
		writeError(w, http.StatusNotFound, fmt.Sprintf("repository %s is not registered in namespace %s", target.Repository, ns))
	case errors.Is(err, lifecycle.ErrWorkspaceTaken):
		writeError(w, http.StatusConflict, fmt.Sprintf("package %s already has workspace %s in repository %s: choose another workspace", target.PackageName, target.Workspace, target.Repository))
	case errors.Is(err, lifecycle.ErrDraftExists):
		writeError(w, http.StatusConflict, fmt.Sprintf("a PackageDraft for workspace %s of package %s exists already (its revision is being created, or was deleted): choose another workspace", target.Workspace, target.PackageName))
	case err != nil:
		writeErr(w, err)
	default:
		writeJSON(w, http.StatusCreated, map[string]string{"draft": draft.Name, "workspace": target.Workspace})
	}
}

// upgradeRequest upgrades a revision to the newest published revision of its upstream.
type upgradeRequest struct {
	Namespace      string `json:"namespace"`
	Name           string `json:"name"`
	Workspace      string `json:"workspace"`
	AllowConflicts bool   `json:"allowConflicts"`
}

// upgrade is POST /ui/upgrade: the draft `kpoctl rpkg upgrade NAME` makes, from the upstream
// revision the manager found (status.upstreamRevision) to the newest published one
// (status.latestUpstreamRevision); with allowConflicts the draft keeps the conflicts for the
// user to resolve.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	var req upgradeRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	current, err := s.revision(r.Context(), req.Namespace, req.Name)
	if err != nil {
		writeErr(w, err)
		return
	}
	st := current.Status
	if st.UpstreamRevision == "" || st.LatestUpstreamRevision == "" || st.UpstreamRevision == st.LatestUpstreamRevision {
		writeError(w, http.StatusConflict, fmt.Sprintf("packagerevision %s has no newer upstream revision to upgrade to", req.Name))
		return
	}
	based, err := s.revision(r.Context(), req.Namespace, st.UpstreamRevision)
	if err != nil {
		writeErr(w, err)
		return
	}
	target, err := s.revision(r.Context(), req.Namespace, st.LatestUpstreamRevision)
	if err != nil {
		writeErr(w, err)
		return
	}
	t, src := lifecycle.UpgradeDraft(current, based, target, req.Workspace, "", req.AllowConflicts)
	s.startDraft(w, r, req.Namespace, t, src)
}

// rollbackRequest restores an older published revision of a package as its next revision.
type rollbackRequest struct {
	Namespace string `json:"namespace"`
	// To is the published revision to go back to.
	To        string `json:"to"`
	Workspace string `json:"workspace"`
}

// rollback is POST /ui/rollback: the draft `kpoctl rpkg rollback LATEST --to N` makes, a copy
// of an older published revision as the package's next one.
func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	var req rollbackRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	to, err := s.revision(r.Context(), req.Namespace, req.To)
	if err != nil {
		writeErr(w, err)
		return
	}
	list := &kpov1.PackageRevisionList{}
	if err := s.client.List(r.Context(), list, client.InNamespace(req.Namespace)); err != nil {
		writeErr(w, err)
		return
	}
	var latest *kpov1.PackageRevision
	for i := range list.Items {
		pr := &list.Items[i]
		if pr.Spec.Repository == to.Spec.Repository && pr.Spec.PackageName == to.Spec.PackageName && lifecycle.PublishedContent(pr) && pr.Status.Revision > 0 &&
			(latest == nil || pr.Status.Revision > latest.Status.Revision) {
			latest = pr
		}
	}
	switch {
	case !lifecycle.PublishedContent(to) || to.Status.Revision <= 0:
		writeError(w, http.StatusConflict, fmt.Sprintf("%s is not a published revision: a rollback copies an older published revision of the same package", to.Name))
		return
	case latest == nil || latest.Name == to.Name:
		writeError(w, http.StatusConflict, fmt.Sprintf("%s is the latest published revision of package %s: there is nothing to roll back", to.Name, to.Spec.PackageName))
		return
	}
	t, src := lifecycle.RollbackDraft(latest, to, req.Workspace)
	s.startDraft(w, r, req.Namespace, t, src)
}

// waitGone waits, bounded, until obj no longer exists.
func (s *Server) waitGone(ctx context.Context, obj client.Object) error {
	ctx, cancel := context.WithTimeout(ctx, draftWaitTimeout)
	defer cancel()
	for {
		if err := s.client.Get(ctx, client.ObjectKeyFromObject(obj), obj); apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return &httpError{http.StatusGatewayTimeout, fmt.Sprintf("%s is still being removed: try again", obj.GetName())}
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// resolveRequest chooses sides for conflicts of an upgrade draft, on the version the page showed.
type resolveRequest struct {
	Namespace       string            `json:"namespace"`
	Name            string            `json:"name"`
	ResourceVersion string            `json:"resourceVersion"`
	Choices         map[string]string `json:"choices"`
}

// resolveConflicts is POST /ui/resolve: conflicts resolved as `kpoctl rpkg resolve` does
// (internal/lifecycle.Resolve), with the user's identity; the manager commits the choice with
// the user as its author, and the page follows status.conflicts.
func (s *Server) resolveConflicts(w http.ResponseWriter, r *http.Request) {
	var req resolveRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if len(req.Choices) == 0 || req.ResourceVersion == "" {
		writeError(w, http.StatusBadRequest, "a resolution needs {namespace, name, resourceVersion, choices: {conflict id: local|upstream}}")
		return
	}
	pr, err := s.revision(r.Context(), req.Namespace, req.Name)
	if err != nil {
		writeErr(w, err)
		return
	}
	for id := range req.Choices {
		if !slices.ContainsFunc(pr.Status.Conflicts, func(c kpov1.MergeConflict) bool { return c.ID == id }) {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("packagerevision %s has no conflict %q", req.Name, id))
			return
		}
	}
	pr.ResourceVersion = req.ResourceVersion
	if err := lifecycle.Resolve(r.Context(), s.client, pr, req.Choices); err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			writeAPIError(w, err)
			return
		}
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"resourceVersion": pr.ResourceVersion})
}
