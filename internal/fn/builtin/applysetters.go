package builtin

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

const setterCommentPrefix = "# kpt-set: "

var setterReference = regexp.MustCompile(`\$\{([^}]*)\}`)

// ApplySetters is the apply-setters function: fields tagged with a line comment
// `# kpt-set: <pattern>` get the pattern with every ${setter} replaced by its
// value. Scalars may be partially parameterized (nginx:${tag}); a list field
// tagged with exactly one setter gets the setter value parsed as a YAML list.
// Setters missing from the config keep the value they have in the field when it
// can be derived from the pattern, otherwise the run fails.
//
// Config: ConfigMap data (setter name → value) or fn.kpt.dev/v1alpha1
// ApplySetters with setters.data.
type ApplySetters struct {
	Setters struct {
		Data map[string]string `yaml:"data,omitempty"`
	} `yaml:"setters,omitempty"`

	names   []string
	results framework.Results
	file    *framework.File
}

// Process implements framework.ResourceListProcessor.
func (f *ApplySetters) Process(rl *framework.ResourceList) error {
	fc := rl.FunctionConfig
	switch {
	case isEmptyConfig(fc), isConfigMap(fc):
		f.Setters.Data = fc.GetDataMap()
	case isKind(fc, "ApplySetters"):
		if err := decodeConfig(fc, f); err != nil {
			return fail(rl, err)
		}
	default:
		apiVersion, kind := configMeta(fc)
		return fail(rl, configError("failed to apply setters: function config must be a ConfigMap (v1) or ApplySetters (fn.kpt.dev/v1alpha1), got %s %s", apiVersion, kind))
	}
	for name := range f.Setters.Data {
		f.names = append(f.names, name)
	}
	slices.Sort(f.names)

	for _, o := range rl.Items {
		f.file = nil
		if path, _, _ := kioutil.GetFileAnnotations(o); path != "" {
			f.file = &framework.File{Path: path}
		}
		if err := f.walk(o, ""); err != nil {
			return fail(rl, fmt.Errorf("failed to apply setters: %s %s: %w", o.GetKind(), o.GetName(), err))
		}
	}
	if len(f.results) == 0 {
		rl.Results = append(rl.Results, &framework.Result{Message: "no matches for input setter(s)"})
		return nil
	}
	rl.Results = append(rl.Results, f.results...)
	return nil
}

func (f *ApplySetters) walk(o *yaml.RNode, path string) error {
	return walkFields(o, path, f.setLists, f.setScalar)
}

// setLists applies list setters: `field: # kpt-set: ${name}` on a block list, or
// the comment on the value of a flow list.
func (f *ApplySetters) setLists(o *yaml.RNode, path string) error {
	return o.VisitFields(func(n *yaml.MapNode) error {
		if n.Key.IsNil() || n.Value.IsNil() || n.Value.YNode().Kind != yaml.SequenceNode {
			return nil
		}
		comment := n.Key.YNode().LineComment
		if n.Value.YNode().Style == yaml.FlowStyle {
			comment = n.Value.YNode().LineComment
		}
		pattern := setterPattern(comment)
		if pattern == "" || !f.mentionsSetter(pattern) {
			return nil
		}
		refs := setterReference.FindAllString(pattern, -1)
		if len(refs) != 1 || refs[0] != pattern {
			return fmt.Errorf("invalid setter pattern for array node: %q: a list can only be set by a single setter, e.g. # kpt-set: ${env}", pattern)
		}
		value := f.Setters.Data[strings.TrimSuffix(strings.TrimPrefix(pattern, "${"), "}")]
		fieldPath := strings.TrimPrefix(path+"."+n.Key.YNode().Value, ".")
		if value == "" {
			n.Value.YNode().Content = nil
			n.Value.YNode().Style = yaml.FlowStyle
			n.Value.YNode().LineComment = comment
			n.Key.YNode().LineComment = ""
		} else {
			list, err := yaml.Parse(value)
			if err != nil || list.YNode().Kind != yaml.SequenceNode {
				return fmt.Errorf("input to array setter must be an array of values, but found %q", value)
			}
			n.Value.YNode().Content = list.YNode().Content
			n.Value.YNode().Style = 0
			n.Value.YNode().LineComment = ""
			n.Key.YNode().LineComment = comment
		}
		f.results = append(f.results, &framework.Result{
			Message: fmt.Sprintf("set field value to %q", value), Field: &framework.Field{Path: fieldPath}, File: f.file,
		})
		return nil
	})
}

func (f *ApplySetters) setScalar(node *yaml.Node, path string) error {
	pattern := setterPattern(node.LineComment)
	if pattern == "" || !f.mentionsSetter(pattern) {
		return nil
	}
	current := currentSetterValues(pattern, node.Value)
	value := setterReference.ReplaceAllStringFunc(pattern, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if v, ok := f.Setters.Data[name]; ok {
			return v
		}
		if v, ok := current[name]; ok {
			return v
		}
		return ref
	})
	if unresolved := setterReference.FindAllString(value, -1); len(unresolved) > 0 {
		return fmt.Errorf("values for setters %v must be provided", unresolved)
	}
	node.Value = value
	if value == "" {
		node.Style = yaml.DoubleQuotedStyle
	}
	node.Tag = yaml.NodeTagEmpty
	f.results = append(f.results, &framework.Result{
		Message: fmt.Sprintf("set field value to %q", value), Field: &framework.Field{Path: strings.TrimPrefix(path, ".")}, File: f.file,
	})
	return nil
}

func (f *ApplySetters) mentionsSetter(pattern string) bool {
	for _, name := range f.names {
		if strings.Contains(pattern, "${"+name+"}") {
			return true
		}
	}
	return false
}

func setterPattern(comment string) string {
	if !strings.HasPrefix(comment, setterCommentPrefix) {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(comment, setterCommentPrefix))
}

// currentSetterValues derives the values setters have in value from pattern,
// e.g. ${image}:${tag} and nginx:1.2 → image=nginx, tag=1.2. Nothing is derived
// when the value does not fit the pattern or a part would be empty.
func currentSetterValues(pattern, value string) map[string]string {
	refs := setterReference.FindAllString(pattern, -1)
	expr := regexp.QuoteMeta(pattern)
	for _, ref := range refs {
		expr = strings.Replace(expr, regexp.QuoteMeta(ref), `(.*)`, 1)
	}
	re, err := regexp.Compile("^" + expr + "$")
	if err != nil {
		return nil
	}
	m := re.FindStringSubmatch(value)
	if len(m) != len(refs)+1 {
		return nil
	}
	res := map[string]string{}
	for i, ref := range refs {
		if m[i+1] == "" {
			return nil
		}
		res[ref[2:len(ref)-1]] = m[i+1]
	}
	return res
}
