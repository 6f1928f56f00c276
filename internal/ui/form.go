package ui

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// The form editor edits the fields people change most in the kinds they write most, in place:
// every other field and comment of the file stays as it was. The server reads a file into a
// form and writes a form back into the file; it calls no API and keeps nothing.

// Field types of a form.
const (
	// fieldText is a string; empty removes an optional field.
	fieldText = "text"
	// fieldInteger is a whole number ≥ 0; empty removes the field.
	fieldInteger = "integer"
	// fieldMap is string keys to string values, in the file's order; none removes the field.
	fieldMap = "map"
)

// typeNames name the field types in messages.
var typeNames = map[string]string{fieldText: "a string", fieldInteger: "a whole number", fieldMap: "a map of strings"}

// isCount says whether s is a whole number, 0 or more.
func isCount(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}

// formField is one field of a form.
type formField struct {
	// Path locates the field in the resource, as kyaml path elements
	// (["spec", "template", "spec", "containers", "[name=app]", "image"]).
	Path     []string    `json:"path"`
	Label    string      `json:"label"`
	Type     string      `json:"type"`
	Required bool        `json:"required,omitempty"`
	Value    string      `json:"value"`
	Entries  [][2]string `json:"entries,omitempty"`
}

// fileForm is a file as the form shows it.
type fileForm struct {
	// YAML is the file: read from it, or (in an answer to a write) the file with the form's
	// values.
	YAML string `json:"yaml"`
	// Kind is the resource's kind when the file is one resource a form edits, else "" with Why.
	Kind   string      `json:"kind"`
	Fields []formField `json:"fields"`
	Why    string      `json:"why,omitempty"`
}

// formKinds are the kinds a form edits (by apiVersion/kind) and, for a resource of that kind,
// the fields its form has.
var formKinds = map[string]func(*yaml.RNode) []formField{
	"v1/ConfigMap": func(*yaml.RNode) []formField {
		return append(metadataFields(true), mapField("Data", "data"))
	},
	"v1/Namespace": func(*yaml.RNode) []formField {
		return []formField{nameField(), mapField("Labels", "metadata", "labels")}
	},
	"v1/Service": func(*yaml.RNode) []formField {
		return append(metadataFields(true), mapField("Selector", "spec", "selector"))
	},
	"apps/v1/Deployment":  workloadFields,
	"apps/v1/StatefulSet": workloadFields,
}

func nameField() formField {
	return formField{Path: []string{"metadata", "name"}, Label: "Name", Type: fieldText, Required: true}
}

// metadataFields are name and, for a namespaced kind, namespace.
func metadataFields(namespaced bool) []formField {
	fields := []formField{nameField()}
	if namespaced {
		fields = append(fields, formField{Path: []string{"metadata", "namespace"}, Label: "Namespace", Type: fieldText})
	}
	return fields
}

func mapField(label string, path ...string) formField {
	return formField{Path: path, Label: label, Type: fieldMap}
}

// workloadFields are a Deployment's or StatefulSet's name, namespace, replicas, the image of
// each container and the labels of its pods.
func workloadFields(rn *yaml.RNode) []formField {
	fields := append(metadataFields(true), formField{Path: []string{"spec", "replicas"}, Label: "Replicas", Type: fieldInteger})
	containers, _ := rn.Pipe(yaml.Lookup("spec", "template", "spec", "containers"))
	if containers != nil {
		for _, c := range containers.Content() {
			name := yaml.NewRNode(c).Field("name")
			if name == nil || name.Value.YNode().Kind != yaml.ScalarNode || name.Value.YNode().Value == "" {
				continue
			}
			n := name.Value.YNode().Value
			fields = append(fields, formField{
				Path:  []string{"spec", "template", "spec", "containers", "[name=" + n + "]", "image"},
				Label: "Image of container " + n, Type: fieldText, Required: true,
			})
		}
	}
	return append(fields, mapField("Pod labels", "spec", "template", "metadata", "labels"))
}

// readForm parses a file that holds exactly one resource of a kind a form edits, and returns
// it with its form's fields and their values; or why there is no form for it.
func readForm(text string) (*yaml.RNode, []formField, string) {
	nodes, err := kio.FromBytes([]byte(text))
	if err != nil {
		return nil, nil, "the file is not valid YAML: " + err.Error()
	}
	if len(nodes) != 1 {
		return nil, nil, fmt.Sprintf("a form edits a file of one resource; this one has %d documents", len(nodes))
	}
	rn := nodes[0]
	fieldsOf, ok := formKinds[rn.GetApiVersion()+"/"+rn.GetKind()]
	if !ok {
		return nil, nil, "there is no form for " + strings.TrimPrefix(rn.GetApiVersion()+" "+rn.GetKind(), " ") +
			"; forms edit ConfigMaps, Namespaces, Services, Deployments and StatefulSets"
	}
	fields := fieldsOf(rn)
	for i := range fields {
		f := &fields[i]
		node, err := rn.Pipe(yaml.Lookup(f.Path...))
		if err != nil || node == nil {
			continue
		}
		y := node.YNode()
		switch {
		case f.Type == fieldMap && y.Kind == yaml.MappingNode:
			f.Entries = [][2]string{}
			for j := 0; j+1 < len(y.Content); j += 2 {
				if y.Content[j+1].Kind != yaml.ScalarNode {
					return nil, nil, fmt.Sprintf("%s.%s is not a string: edit it as YAML", strings.Join(f.Path, "."), y.Content[j].Value)
				}
				f.Entries = append(f.Entries, [2]string{y.Content[j].Value, y.Content[j+1].Value})
			}
		case f.Type == fieldText && y.Kind == yaml.ScalarNode:
			f.Value = y.Value
		case f.Type == fieldInteger && y.Kind == yaml.ScalarNode && isCount(y.Value):
			f.Value = y.Value
		default:
			return nil, nil, strings.Join(f.Path, ".") + " is not " + typeNames[f.Type] + ": edit it as YAML"
		}
	}
	return rn, fields, ""
}

// form serves POST /ui/form/read {yaml} (write false): the form of the file, or why there is
// none; and POST /ui/form/write {yaml, fields} (write true): the file with the fields' values
// set, the rest of it (other fields, comments) as it was, and its form. Only the fields of the
// file's own form may be set. Neither writes anything anywhere: the page puts the answer in
// the editor.
func (s *Server) form(write bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req fileForm
		if err := decodeBody(w, r, &req); err != nil {
			writeErr(w, err)
			return
		}
		rn, fields, why := readForm(req.YAML)
		switch {
		case rn == nil && write:
			writeError(w, http.StatusUnprocessableEntity, why)
			return
		case rn == nil:
			writeJSON(w, http.StatusOK, fileForm{Why: why})
			return
		case !write:
			writeJSON(w, http.StatusOK, fileForm{Kind: rn.GetKind(), Fields: fields})
			return
		}
		if err := setFields(rn, fields, req.Fields); err != nil {
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		text, err := rn.String()
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		_, fields, _ = readForm(text)
		writeJSON(w, http.StatusOK, fileForm{YAML: text, Kind: rn.GetKind(), Fields: fields})
	}
}

// setFields writes the values of in into rn; each must be one of the fields of rn's form.
func setFields(rn *yaml.RNode, form, in []formField) error {
	byPath := map[string]formField{}
	for _, f := range form {
		byPath[strings.Join(f.Path, ".")] = f
	}
	for _, v := range in {
		f, ok := byPath[strings.Join(v.Path, ".")]
		if !ok {
			return fmt.Errorf("%s is not a field of the %s form", strings.Join(v.Path, "."), rn.GetKind())
		}
		f.Value, f.Entries = strings.TrimSpace(v.Value), v.Entries
		if err := setField(rn, f); err != nil {
			return err
		}
	}
	return nil
}

// setField writes f's value into rn; an empty value of an optional field removes it.
func setField(rn *yaml.RNode, f formField) error {
	parent, last := f.Path[:len(f.Path)-1], f.Path[len(f.Path)-1]
	var value *yaml.RNode
	switch f.Type {
	case fieldText:
		if f.Value != "" {
			value = yaml.NewStringRNode(f.Value)
		}
	case fieldInteger:
		if f.Value != "" {
			if !isCount(f.Value) {
				return fmt.Errorf("%s must be a whole number, 0 or more: %q", f.Label, f.Value)
			}
			value = yaml.NewScalarRNode(f.Value)
			value.YNode().Tag = yaml.NodeTagInt
		}
	case fieldMap:
		m, err := mapValue(rn, f)
		if err != nil {
			return err
		}
		value = m
	}
	if old, _ := rn.Pipe(yaml.Lookup(f.Path...)); old != nil && value != nil && old.YNode().Kind == value.YNode().Kind {
		// The node's own comments stay; only its value changes.
		o, v := old.YNode(), value.YNode()
		o.Value, o.Tag, o.Content = v.Value, v.Tag, v.Content
		return nil
	}
	if value == nil {
		if f.Required {
			return fmt.Errorf("%s is required", f.Label)
		}
		p, err := rn.Pipe(yaml.Lookup(parent...))
		if err != nil || p == nil {
			return err
		}
		_, err = p.Pipe(yaml.Clear(last))
		return err
	}
	return rn.PipeE(yaml.LookupCreate(yaml.MappingNode, parent...), yaml.SetField(last, value))
}

// mapValue is the mapping of a map field's entries, nil for none. The keys that were there
// before keep their comments.
func mapValue(rn *yaml.RNode, f formField) (*yaml.RNode, error) {
	if len(f.Entries) == 0 {
		return nil, nil
	}
	comments := map[string]*yaml.Node{}
	if old, _ := rn.Pipe(yaml.Lookup(f.Path...)); old != nil {
		c := old.YNode().Content
		for i := 0; i+1 < len(c); i += 2 {
			comments[c[i].Value] = c[i]
		}
	}
	m := yaml.NewMapRNode(nil)
	for _, kv := range f.Entries {
		if kv[0] == "" || m.Field(kv[0]) != nil {
			return nil, fmt.Errorf("%s: keys must be set and distinct: %q", f.Label, kv[0])
		}
		if err := m.PipeE(yaml.SetField(kv[0], yaml.NewStringRNode(kv[1]))); err != nil {
			return nil, err
		}
	}
	c := m.YNode().Content
	for i := 0; i+1 < len(c); i += 2 {
		if k := comments[c[i].Value]; k != nil {
			c[i].HeadComment, c[i].LineComment, c[i].FootComment = k.HeadComment, k.LineComment, k.FootComment
		}
	}
	return m, nil
}
