package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"

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
