package ui

import (
	"encoding/json"
	"net/http"
	"path"
	"strings"
)

// proxyPrefix is where the page reaches the API server: /k8s/apis/kpo.dev/... is
// /apis/kpo.dev/... there.
const proxyPrefix = "/k8s"

// kpoPrefix is the API group and version of kpo's kinds.
const kpoPrefix = "/apis/kpo.dev/v1alpha1/"

// kpoResources are the kinds of kpo the UI may read and change, with their subresources.
var kpoResources = map[string]bool{
	"repositories": true, "packagerevisions": true, "packagedrafts": true, "packagevariants": true, "packagevariantsets": true,
}

// allowedAPI reports whether the UI proxies method on the API path p, and why not. The list
// is short on purpose: kpo's kinds, ConfigMaps (package content) to read, and the user's own
// access reviews. Secrets, and everything else, are never proxied.
func allowedAPI(method, p string) (bool, string) {
	if p != path.Clean(p) || strings.Contains(p, "//") {
		return false, "the path is not in canonical form"
	}
	switch {
	case strings.HasPrefix(p, kpoPrefix):
		segs := strings.Split(strings.TrimPrefix(p, kpoPrefix), "/")
		// namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]] or a list across namespaces.
		if len(segs) >= 3 && segs[0] == "namespaces" {
			segs = segs[2:]
		}
		if !kpoResources[segs[0]] || len(segs) > 3 {
			return false, "only repositories, packagerevisions, packagedrafts, packagevariants and packagevariantsets of kpo.dev are served here"
		}
		switch method {
		case http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodPost, http.MethodDelete:
			return true, ""
		}
		return false, "method " + method + " is not proxied"
	case p == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
		return method == http.MethodPost, "access reviews are only created"
	case strings.HasPrefix(p, "/api/v1/namespaces/"):
		segs := strings.Split(strings.TrimPrefix(p, "/api/v1/namespaces/"), "/")
		if len(segs) >= 2 && len(segs) <= 3 && segs[1] == "configmaps" && method == http.MethodGet {
			return true, ""
		}
		if len(segs) >= 2 && segs[1] == "secrets" {
			return false, "Secrets are never served by the UI"
		}
	}
	return false, "the UI serves only kpo.dev objects, ConfigMaps (read) and access reviews"
}

// proxyAPI forwards an allowed API request to the API server with the user's identity, and
// relays the API server's answer (its refusal message included) unchanged.
func (s *Server) proxyAPI(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, proxyPrefix)
	if r.URL.RawPath != "" {
		writeError(w, http.StatusForbidden, "escaped characters are not allowed in API paths")
		return
	}
	if ok, why := allowedAPI(r.Method, p); !ok {
		writeError(w, http.StatusForbidden, r.Method+" "+p+" is not proxied: "+why)
		return
	}
	if r.URL.Query().Has("watch") {
		writeError(w, http.StatusForbidden, "watches are not proxied")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	s.proxy.ServeHTTP(w, r)
}

// maxBody bounds what the page may send: a package's content fits a ConfigMap (1 MiB), with
// room for JSON escaping.
const maxBody = 4 << 20

// apiStatus is the shape of the API server's errors; the UI's own errors use it too, so
// the page reads every refusal the same way.
type apiStatus struct {
	Kind    string `json:"kind"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Code    int    `json:"code"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiStatus{Kind: "Status", Status: "Failure", Message: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
