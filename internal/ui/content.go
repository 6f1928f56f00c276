package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/lifecycle"
)

// packageContent is a revision's files as the page reads and saves them.
type packageContent struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ResourceVersion of the content ConfigMap read: a save made on an older version is
	// refused by the API server (optimistic locking), as kpoctl rpkg push's update is.
	ResourceVersion string            `json:"resourceVersion"`
	Files           map[string]string `json:"files"`
	// Binary lists the files that are not UTF-8 text: shown, never edited.
	Binary []string `json:"binary,omitempty"`
}

// getContent is GET /ui/content?namespace=NS&name=REVISION: the files of a revision's content
// ConfigMap, read with the user's identity (the ConfigMap keys decoded as kpo encodes them).
// It changes nothing: a published revision's content is asked for with POST
// /ui/content/request.
func (s *Server) getContent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.writeContent(w, r, q.Get("namespace"), q.Get("name"), false)
}

// revisionRef names a revision in the body of a POST.
type revisionRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// requestContentHandler is POST /ui/content/request {namespace, name}: the files of a
// revision, the content of a published one asked for first when it is not in a ConfigMap
// now (the kpo.dev/content-requested annotation, a write, hence not a GET).
func (s *Server) requestContentHandler(w http.ResponseWriter, r *http.Request) {
	var ref revisionRef
	if err := decodeBody(w, r, &ref); err != nil {
		writeErr(w, err)
		return
	}
	s.writeContent(w, r, ref.Namespace, ref.Name, true)
}

func (s *Server) writeContent(w http.ResponseWriter, r *http.Request, ns, name string, request bool) {
	_, cm, files, err := s.readContent(r.Context(), ns, name, request)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := packageContent{Namespace: ns, Name: name, ResourceVersion: cm.ResourceVersion, Files: map[string]string{}}
	for p, b := range files {
		if !utf8.Valid(b) {
			out.Binary = append(out.Binary, p)
			continue
		}
		out.Files[p] = string(b)
	}
	writeJSON(w, http.StatusOK, out)
}

// decodeBody reads a JSON request body of at most maxBody bytes into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(v); err != nil {
		return &httpError{http.StatusBadRequest, "the request body is not the JSON expected, or over 4 MiB: " + err.Error()}
	}
	return nil
}

// diffRequest names the two revisions of a diff.
type diffRequest struct {
	Namespace string `json:"namespace"`
	From      string `json:"from"`
	To        string `json:"to"`
	// ByResource asks for the changes resource by resource (content.ResourceDiff) beside the
	// unified diff file by file.
	ByResource bool `json:"byResource"`
}

// diffResponse is a diff file by file, and resource by resource when asked.
type diffResponse struct {
	Diff      string                   `json:"diff"`
	Resources []content.ResourceChange `json:"resources,omitempty"`
	Same      int                      `json:"same,omitempty"`
}

// diff is POST /ui/diff {namespace, from, to}: the unified diff from one revision's files to
// another's, as `kpoctl rpkg diff` prints it. A POST, as published content is asked for as
// needed (a write).
func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	var req diffRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	var files [2]map[string][]byte
	for i, name := range []string{req.From, req.To} {
		_, _, f, err := s.readContent(r.Context(), req.Namespace, name, true)
		if err != nil {
			writeErr(w, err)
			return
		}
		files[i] = f
	}
	var out strings.Builder
	if err := content.WriteUnifiedDiff(&out, req.From, files[0], req.To, files[1]); err != nil {
		writeErr(w, err)
		return
	}
	resp := diffResponse{Diff: out.String()}
	if req.ByResource {
		var err error
		if resp.Resources, resp.Same, err = content.ResourceDiff(files[0], files[1]); err != nil {
			writeErr(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// httpError is a refusal of the UI's own, with its status code.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// writeErr answers with the UI's own refusal, or relays the API server's.
func writeErr(w http.ResponseWriter, err error) {
	var he *httpError
	if errors.As(err, &he) {
		writeError(w, he.code, he.msg)
		return
	}
	writeAPIError(w, err)
}

// contentRequestTimeout bounds the wait for the manager to put a published revision's
// content in a ConfigMap.
const contentRequestTimeout = 20 * time.Second

// readContent reads a revision, its content ConfigMap and its files with the user's identity.
// A published revision's content is in a ConfigMap only on request: with request, it asks
// (as kpoctl rpkg pull does, which needs patch on packagerevisions) and waits for the manager.
func (s *Server) readContent(ctx context.Context, ns, name string, request bool) (*kpov1.PackageRevision, *corev1.ConfigMap, map[string][]byte, error) {
	pr, err := s.revision(ctx, ns, name)
	if err != nil {
		return nil, nil, nil, err
	}
	if pr.Status.ResourcesRef == nil && request && pr.Status.ContentError == nil {
		if pr, err = s.requestContent(ctx, pr); err != nil {
			return nil, nil, nil, err
		}
	}
	if ce := pr.Status.ContentError; ce != nil {
		return nil, nil, nil, &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("packagerevision %s has no content: %s: %s", name, ce.Reason, ce.Message)}
	}
	if pr.Status.ResourcesRef == nil || pr.Status.ResourcesRef.Name == "" {
		return nil, nil, nil, &httpError{http.StatusNotFound, fmt.Sprintf("the files of packagerevision %s are in Git; a published revision's content is loaded on request", name)}
	}
	cm := &corev1.ConfigMap{}
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: pr.Status.ResourcesRef.Name}, cm); err != nil {
		return nil, nil, nil, err
	}
	files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
	if err != nil {
		return nil, nil, nil, &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("content configmap %s of packagerevision %s: %v", cm.Name, name, err)}
	}
	return pr, cm, files, nil
}

// requestContent asks for a published revision's content as kpoctl rpkg pull does
// (internal/lifecycle), and waits for the manager.
func (s *Server) requestContent(ctx context.Context, pr *kpov1.PackageRevision) (*kpov1.PackageRevision, error) {
	if err := lifecycle.RequestContent(ctx, s.client, pr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, contentRequestTimeout)
	defer cancel()
	for {
		if err := s.client.Get(ctx, client.ObjectKeyFromObject(pr), pr); err != nil {
			return nil, err
		}
		loaded, err := lifecycle.ContentLoaded(pr)
		if err != nil {
			return nil, &httpError{http.StatusUnprocessableEntity, err.Error()}
		}
		if loaded {
			return pr, nil
		}
		select {
		case <-ctx.Done():
			return nil, &httpError{http.StatusGatewayTimeout, fmt.Sprintf("the manager has not loaded the content of packagerevision %s yet: try again", pr.Name)}
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// putContent is PUT /ui/content: a content edit of a Draft, an update of its content
// ConfigMap with the user's identity, as `kpoctl rpkg push` makes it. The manager then
// renders and commits it; the page follows the revision's conditions for the outcome.
func (s *Server) putContent(w http.ResponseWriter, r *http.Request) {
	var req packageContent
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "a save needs {namespace, name, resourceVersion, files} under 4 MiB: "+err.Error())
		return
	}
	if req.ResourceVersion == "" {
		writeError(w, http.StatusBadRequest, "a save needs the resourceVersion of the content it edits, so it cannot overwrite someone else's edit")
		return
	}
	pr, cm, current, err := s.readContent(r.Context(), req.Namespace, req.Name, false)
	if err != nil {
		writeErr(w, err)
		return
	}
	if pr.Spec.Lifecycle != kpov1.LifecycleDraft || pr.Status.Lifecycle != kpov1.LifecycleDraft {
		writeError(w, http.StatusConflict, fmt.Sprintf("packagerevision %s is %s: only a Draft's content can be edited; start a new draft from it", req.Name, pr.Spec.Lifecycle))
		return
	}
	files := make(map[string][]byte, len(req.Files))
	for p, c := range req.Files {
		files[p] = []byte(c)
	}
	// Binary files are not edited in the page: keep them.
	for p, b := range current {
		if !utf8.Valid(b) {
			files[p] = b
		}
	}
	data, binaryData, err := content.ToConfigMap(files)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("cannot save %s: %v", req.Name, err))
		return
	}
	cm.Data, cm.BinaryData = data, binaryData
	cm.ResourceVersion = req.ResourceVersion
	if err := s.client.Update(r.Context(), cm); err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"resourceVersion": cm.ResourceVersion})
}

// writeAPIError relays the API server's refusal, its message unchanged.
func writeAPIError(w http.ResponseWriter, err error) {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		st := status.Status()
		writeJSON(w, int(st.Code), apiStatus{Kind: "Status", Status: "Failure", Message: st.Message, Code: int(st.Code)})
		return
	}
	writeError(w, http.StatusBadGateway, err.Error())
}
