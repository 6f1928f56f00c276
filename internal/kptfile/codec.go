package kptfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every error Decode returns, so callers can tell a bad Kptfile
// (the user must fix it) from other failures with errors.Is.
var ErrInvalid = errors.New("invalid Kptfile")

// Decode parses and validates a Kptfile.
//
// Decoding is strict: unknown fields (at any depth) and duplicate keys are refused, the
// apiVersion must be kpt.dev/v1 and the kind Kptfile, metadata.name is required, every
// pipeline function names exactly one of image and exec and at most one of configPath and
// configMap, and enumerated fields (update strategy, origin type, condition status) hold
// one of their values. All problems found are reported together; each names the field and,
// where the YAML parser knows it, the line.
func Decode(data []byte) (*Kptfile, error) {
	doc, err := parseSingleDocument(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// Unknown fields, type errors and rule violations are all collected, so one round of
	// fixes is enough. Unknown fields do not stop decoding: the decoder ignores them.
	errs := (&fieldChecker{}).check(doc, reflect.TypeFor[Kptfile](), "")
	var k Kptfile
	if err := doc.Decode(&k); err != nil {
		errs = append(errs, errors.New(describeYAMLError(err)))
	} else {
		errs = append(errs, k.validate()...)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return &k, nil
}

// Encode writes k as YAML the way kpt writes a Kptfile: two-space indentation, sequences
// indented under their key, fields in kpt's order (apiVersion, kind, metadata, upstream,
// upstreamLock, info, pipeline, inventory, status), empty fields omitted. Map keys are
// sorted. Encode does not validate; Decode(Encode(k)) fails if k is invalid.
func Encode(k *Kptfile) ([]byte, error) {
	if k == nil {
		return nil, errors.New("cannot encode a nil Kptfile")
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2) // yaml.v3 indents sequences under their key by default: kpt's "wide" style
	if err := enc.Encode(k); err != nil {
		return nil, fmt.Errorf("encoding Kptfile: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding Kptfile: %w", err)
	}
	return buf.Bytes(), nil
}

// parseSingleDocument parses data into the mapping node of its only YAML document.
func parseSingleDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the Kptfile is empty: it needs at least apiVersion: kpt.dev/v1, kind: Kptfile and metadata.name")
		}
		return nil, fmt.Errorf("not valid YAML: %s", describeYAMLError(err))
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, fmt.Errorf("not valid YAML: %s", describeYAMLError(err))
	default:
		return nil, fmt.Errorf("line %d: a second YAML document starts here: a Kptfile holds exactly one document; move other resources to their own files", extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the Kptfile must be a YAML mapping (apiVersion: ..., kind: ...)", root.Line)
	}
	return root, nil
}

// describeYAMLError turns a YAML library error into a message without the library's
// "yaml: " prefix, one problem per line, each starting with its line number.
func describeYAMLError(err error) string {
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		return strings.Join(typeErr.Errors, "\n")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// fieldChecker walks a YAML node tree alongside a Go type; see check.
type fieldChecker struct {
	// seen holds the aliased nodes already checked, per type.
	seen map[aliasTarget]bool
}

type aliasTarget struct {
	n *yaml.Node
	t reflect.Type
}

// check walks n alongside the Go type t and reports every mapping key that t does not
// define, by field path and line. It also reports every null item of a sequence: the
// decoder drops those without a word, so the item would vanish on the next write and the
// ones after it would move up. It leaves type mismatches to the decoder.
//
// A node reached through an alias is checked once per type, under the path it was first
// reached by: walking it again for every alias would take time quadratic (or worse, with
// nested aliases) in the size of the file, enough for a Kptfile of a few hundred
// kilobytes to hold up a reconcile for minutes.
func (c *fieldChecker) check(n *yaml.Node, t reflect.Type, at string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		key := aliasTarget{n, t}
		if c.seen[key] {
			return nil
		}
		if c.seen == nil {
			c.seen = map[aliasTarget]bool{}
		}
		c.seen[key] = true
	}
	var errs []error
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			f, ok := fields[key.Value]
			if !ok {
				errs = append(errs, unknownFieldError(key, at, t))
				continue
			}
			errs = append(errs, c.check(value, f.Type, join(at, key.Value))...)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			itemAt := fmt.Sprintf("%s[%d]", at, i)
			if item.ShortTag() == "!!null" {
				errs = append(errs, fmt.Errorf(`line %d: %s is empty (null): fill it in or remove its "-"`, item.Line, itemAt))
				continue
			}
			errs = append(errs, c.check(item, t.Elem(), itemAt)...)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, c.check(n.Content[i+1], t.Elem(), join(at, n.Content[i].Value))...)
		}
	}
	return errs
}

func unknownFieldError(key *yaml.Node, at string, t reflect.Type) error {
	where := "at the top level"
	if at != "" {
		where = "in " + at
	}
	known := slices.Sorted(maps.Keys(yamlFields(t)))
	return fmt.Errorf("line %d: unknown field %q %s: remove it or correct its spelling (known fields: %s)",
		key.Line, key.Value, where, strings.Join(known, ", "))
}

// yamlFields maps the YAML names of t's fields to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f
	}
	return fields
}

func join(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}

// validate checks the rules the schema alone does not express.
func (k *Kptfile) validate() []error {
	var errs []error
	switch {
	case k.APIVersion == "":
		errs = append(errs, fmt.Errorf("apiVersion is missing: set apiVersion: %s", APIVersion))
	case k.APIVersion != APIVersion && strings.HasPrefix(k.APIVersion, "kpt.dev/"):
		errs = append(errs, fmt.Errorf("apiVersion %q is an old Kptfile version that kpo does not read: convert the package to %s first (kpt's gcr.io/kpt-fn/fix function does this)", k.APIVersion, APIVersion))
	case k.APIVersion != APIVersion:
		errs = append(errs, fmt.Errorf("apiVersion %q is not a Kptfile apiVersion: set apiVersion: %s", k.APIVersion, APIVersion))
	}
	if k.Kind != Kind {
		errs = append(errs, fmt.Errorf("kind %q is not %s: set kind: %s", k.Kind, Kind, Kind))
	}
	if k.Metadata.Name == "" {
		errs = append(errs, errors.New("metadata.name is missing: set it to the package name (the last segment of the package directory)"))
	}
	if u := k.Upstream; u != nil {
		errs = append(errs, validateOrigin("upstream.type", u.Type)...)
		if u.UpdateStrategy != "" && !slices.Contains(UpdateStrategies, u.UpdateStrategy) {
			errs = append(errs, fmt.Errorf("upstream.updateStrategy %q is not an update strategy: use one of %s", u.UpdateStrategy, quoteAll(UpdateStrategies)))
		}
	}
	if l := k.UpstreamLock; l != nil {
		errs = append(errs, validateOrigin("upstreamLock.type", l.Type)...)
	}
	if i := k.Info; i != nil {
		for n, g := range i.ReadinessGates {
			if g.ConditionType == "" {
				errs = append(errs, fmt.Errorf("info.readinessGates[%d].conditionType is empty: name the condition type that must be True", n))
			}
		}
	}
	if p := k.Pipeline; p != nil {
		for n := range p.Mutators {
			errs = append(errs, p.Mutators[n].validate(fmt.Sprintf("pipeline.mutators[%d]", n))...)
		}
		for n := range p.Validators {
			errs = append(errs, p.Validators[n].validate(fmt.Sprintf("pipeline.validators[%d]", n))...)
		}
	}
	if s := k.Status; s != nil {
		for n, c := range s.Conditions {
			at := fmt.Sprintf("status.conditions[%d]", n)
			if c.Type == "" {
				errs = append(errs, fmt.Errorf("%s.type is empty: name the condition type", at))
			}
			switch c.Status {
			case ConditionTrue, ConditionFalse, ConditionUnknown:
			default:
				errs = append(errs, fmt.Errorf("%s.status %q is not a condition status: use %q, %q or %q", at, c.Status, ConditionTrue, ConditionFalse, ConditionUnknown))
			}
		}
	}
	return errs
}

func validateOrigin(field string, t OriginType) []error {
	if t == "" || t == GitOrigin {
		return nil
	}
	return []error{fmt.Errorf("%s %q is not supported: use %q", field, t, GitOrigin)}
}

func (f *Function) validate(at string) []error {
	var errs []error
	switch {
	case f.Image == "" && f.Exec == "":
		errs = append(errs, fmt.Errorf("%s names no function: set image (a container image) or exec (a local executable)", at))
	case f.Image != "" && f.Exec != "":
		errs = append(errs, fmt.Errorf("%s sets both image %q and exec %q: keep only one of them", at, f.Image, f.Exec))
	}
	if f.ConfigPath != "" && len(f.ConfigMap) > 0 {
		errs = append(errs, fmt.Errorf("%s sets both configPath and configMap: give the function config one way only", at))
	}
	if f.ConfigPath != "" {
		if err := validateConfigPath(f.ConfigPath); err != nil {
			errs = append(errs, fmt.Errorf("%s.configPath %q %w", at, f.ConfigPath, err))
		}
	}
	return errs
}

// validateConfigPath applies kpt's rule: a function config lives inside the package, so
// the path is relative and never goes up.
func validateConfigPath(p string) error {
	if strings.TrimSpace(p) == "" {
		return errors.New("is blank: give the path of a file in the package")
	}
	if strings.HasPrefix(p, "/") {
		return errors.New("is absolute: use a path relative to the package directory")
	}
	if slices.Contains(strings.Split(path.Clean(p), "/"), "..") {
		return errors.New("leaves the package: use a path inside the package directory")
	}
	return nil
}

func quoteAll[S ~string](values []S) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(quoted, ", ")
}
