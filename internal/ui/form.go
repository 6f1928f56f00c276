package ui

import (
	"fmt"
	"net/http"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// configMapForm is a ConfigMap as the editor's form shows it: name, namespace and data in the
// file's order. The form edits only these; every other field and comment of the file stays.
type configMapForm struct {
	// YAML is the file: read from it, or (in an answer to a write) the file with the form's
	// values.
	YAML      string      `json:"yaml"`
	Name      string      `json:"name"`
	Namespace string      `json:"namespace"`
	Data      [][2]string `json:"data"`
	// Form is "ConfigMap" when the file is one ConfigMap the form can edit, else "" with Why.
	Form string `json:"form"`
	Why  string `json:"why,omitempty"`
}

// readConfigMap parses a file that holds exactly one ConfigMap whose data values are strings.
func readConfigMap(text string) (*yaml.RNode, string) {
	nodes, err := kio.FromBytes([]byte(text))
	if err != nil {
		return nil, "the file is not valid YAML: " + err.Error()
	}
	if len(nodes) != 1 {
		return nil, fmt.Sprintf("the form edits a file of one ConfigMap; this one has %d documents", len(nodes))
	}
	rn := nodes[0]
	if rn.GetKind() != "ConfigMap" || rn.GetApiVersion() != "v1" {
		return nil, "the form edits ConfigMaps (v1); this is " + rn.GetApiVersion() + " " + rn.GetKind()
	}
	if data := rn.Field("data"); data != nil && data.Value.YNode().Kind != yaml.MappingNode {
		return nil, "the ConfigMap's data is not a map"
	}
	return rn, ""
}

// formRead is POST /ui/form/read {yaml}: the form of the file, when it is a ConfigMap. It
// writes nothing anywhere (a POST for its body).
func (s *Server) formRead(w http.ResponseWriter, r *http.Request) {
	var req configMapForm
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	rn, why := readConfigMap(req.YAML)
	if rn == nil {
		writeJSON(w, http.StatusOK, configMapForm{Why: why})
		return
	}
	out := configMapForm{Form: "ConfigMap", Name: rn.GetName(), Namespace: rn.GetNamespace(), Data: [][2]string{}}
	if data := rn.Field("data"); data != nil {
		c := data.Value.YNode().Content
		for i := 0; i+1 < len(c); i += 2 {
			if c[i+1].Kind != yaml.ScalarNode {
				writeJSON(w, http.StatusOK, configMapForm{Why: "data." + c[i].Value + " is not a string"})
				return
			}
			out.Data = append(out.Data, [2]string{c[i].Value, c[i+1].Value})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// formWrite is POST /ui/form/write {yaml, name, namespace, data}: the file with the form's
// name, namespace and data set, the rest of it (other fields, comments) as it was. It writes
// nothing anywhere: the page puts the answer in the editor.
func (s *Server) formWrite(w http.ResponseWriter, r *http.Request) {
	var req configMapForm
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	rn, why := readConfigMap(req.YAML)
	if rn == nil {
		writeError(w, http.StatusUnprocessableEntity, why)
		return
	}
	if req.Name == "" {
		writeError(w, http.StatusUnprocessableEntity, "a ConfigMap needs a name")
		return
	}
	seen := map[string]bool{}
	data := yaml.NewMapRNode(nil)
	for _, kv := range req.Data {
		if kv[0] == "" || seen[kv[0]] {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("data keys must be set and distinct: %q", kv[0]))
			return
		}
		seen[kv[0]] = true
		if err := data.PipeE(yaml.SetField(kv[0], yaml.NewStringRNode(kv[1]))); err != nil {
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
	}
	if err := rn.SetName(req.Name); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if err := rn.SetNamespace(req.Namespace); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if len(req.Data) == 0 {
		_, err := rn.Pipe(yaml.Clear("data"))
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
	} else if old := rn.Field("data"); old != nil {
		// Keep the comments of the keys that stay.
		oldKeys := map[string]*yaml.Node{}
		c := old.Value.YNode().Content
		for i := 0; i+1 < len(c); i += 2 {
			oldKeys[c[i].Value] = c[i]
		}
		nc := data.YNode().Content
		for i := 0; i+1 < len(nc); i += 2 {
			if k := oldKeys[nc[i].Value]; k != nil {
				nc[i].HeadComment, nc[i].LineComment, nc[i].FootComment = k.HeadComment, k.LineComment, k.FootComment
			}
		}
		old.Value.YNode().Content = nc
	} else if err := rn.PipeE(yaml.SetField("data", data)); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	text, err := rn.String()
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, configMapForm{Form: "ConfigMap", YAML: text, Name: req.Name, Namespace: req.Namespace, Data: req.Data})
}
