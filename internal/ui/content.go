package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
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
func (s *Server) getContent(w http.ResponseWriter, r *http.Request) {
	ns, name := r.URL.Query().Get("namespace"), r.URL.Query().Get("name")
	pr, cm, ok := s.readContent(w, r, ns, name)
	if !ok {
		return
	}
	files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("content configmap %s of packagerevision %s: %v", cm.Name, pr.Name, err))
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

// readContent reads a revision and its content ConfigMap, answering the page itself when it
// cannot.
func (s *Server) readContent(w http.ResponseWriter, r *http.Request, ns, name string) (*kpov1.PackageRevision, *corev1.ConfigMap, bool) {
	if ns == "" || name == "" {
		writeError(w, http.StatusBadRequest, "name the revision: ?namespace=NS&name=REVISION")
		return nil, nil, false
	}
	pr := &kpov1.PackageRevision{}
	if err := s.client.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, pr); err != nil {
		writeAPIError(w, err)
		return nil, nil, false
	}
	if ce := pr.Status.ContentError; ce != nil {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("packagerevision %s has no content: %s: %s", name, ce.Reason, ce.Message))
		return nil, nil, false
	}
	if pr.Status.ResourcesRef == nil || pr.Status.ResourcesRef.Name == "" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("packagerevision %s has no content ConfigMap now: a published revision's content is loaded on request; run `kpoctl rpkg pull %s DIR`", name, name))
		return nil, nil, false
	}
	cm := &corev1.ConfigMap{}
	if err := s.client.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: pr.Status.ResourcesRef.Name}, cm); err != nil {
		writeAPIError(w, err)
		return nil, nil, false
	}
	return pr, cm, true
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
	pr, cm, ok := s.readContent(w, r, req.Namespace, req.Name)
	if !ok {
		return
	}
	if pr.Spec.Lifecycle != kpov1.LifecycleDraft || pr.Status.Lifecycle != kpov1.LifecycleDraft {
		writeError(w, http.StatusConflict, fmt.Sprintf("packagerevision %s is %s: only a Draft's content can be edited; start a new draft from it", req.Name, pr.Spec.Lifecycle))
		return
	}
	current, err := content.FromConfigMap(cm.Data, cm.BinaryData)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
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
