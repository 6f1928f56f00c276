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

var searchReplaceKeys = []string{"by-value", "by-file-path", "by-value-regex", "by-path", "put-value", "put-comment"}

// SearchReplace is the search-replace function: it matches fields by value
// (by-value, or by-value-regex matched against the whole value), by field path
// (by-path: dot-separated, `*` one field, `**` any number, `[i]`/`[*]` list
// elements) and by file (by-file-path: a glob with `**`, `*`, `?`, classes and
// {a,b}); matchers are AND'ed. put-value sets the value and put-comment the line
// comment of every match; both may use the ${N} capture groups of
// by-value-regex. A plain by-path with put-value and no value matcher creates the
// field where it is missing.
//
// Config: ConfigMap data with the keys above.
type SearchReplace struct {
	ByValue      string
	ByValueRegex string
	ByPath       string
	ByFilePath   string
	PutValue     string
	PutComment   string

	regex    *regexp.Regexp
	fileGlob *regexp.Regexp
	file     string
	results  framework.Results
}

// Process implements framework.ResourceListProcessor.
func (f *SearchReplace) Process(rl *framework.ResourceList) error {
	if err := f.config(rl.FunctionConfig); err != nil {
		return f.fail(rl, err)
	}
	for _, o := range rl.Items {
		path, _, _ := kioutil.GetFileAnnotations(o)
		if f.fileGlob != nil && !f.fileGlob.MatchString(path) {
			continue
		}
		f.file = path
		var err error
		if f.putByPath() {
			err = f.putValueByPath(o)
		} else {
			err = f.walk(o, "")
		}
		if err != nil {
			return f.fail(rl, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err))
		}
	}
	if len(f.results) == 0 {
		rl.Results = append(rl.Results, &framework.Result{Message: "no matches"})
		return nil
	}
	rl.Results = append(rl.Results, f.results...)
	return nil
}

func (f *SearchReplace) fail(rl *framework.ResourceList, err error) error {
	rl.Results = append(rl.Results, &framework.Result{
		Message:  fmt.Sprintf("failed to perform search-replace operation: %q", err.Error()),
		Severity: framework.Error,
	})
	return fmt.Errorf("failed to perform search-replace operation: %w", err)
}

func (f *SearchReplace) config(fc *yaml.RNode) error {
	if !isEmptyConfig(fc) && !isConfigMap(fc) {
		apiVersion, kind := configMeta(fc)
		return configError("function config must be a ConfigMap (v1) with data keys %q, got %s %s", searchReplaceKeys, apiVersion, kind)
	}
	data := map[string]string{}
	if !isEmptyConfig(fc) {
		data = fc.GetDataMap()
	}
	for key := range data {
		if !slices.Contains(searchReplaceKeys, key) {
			return configError("invalid matcher %q, must be one of %q", key, searchReplaceKeys)
		}
	}
	f.ByValue, f.ByValueRegex, f.ByPath = data["by-value"], data["by-value-regex"], data["by-path"]
	f.ByFilePath, f.PutValue, f.PutComment = data["by-file-path"], data["put-value"], data["put-comment"]
	if f.ByValue != "" && f.ByValueRegex != "" {
		return configError("only one of [%q, %q] can be provided", "by-value", "by-value-regex")
	}
	if f.ByValueRegex != "" {
		re, err := regexp.Compile("^(?:" + f.ByValueRegex + ")$")
		if err != nil {
			return configError("by-value-regex %q is not a valid regular expression: %v", f.ByValueRegex, err)
		}
		f.regex = re
	}
	if f.ByFilePath != "" {
		re, err := globRegexp(f.ByFilePath)
		if err != nil {
			return configError("by-file-path %q is not a valid pattern: %v", f.ByFilePath, err)
		}
		f.fileGlob = re
	}
	return nil
}

// putByPath reports whether put-value goes straight to an absolute by-path.
func (f *SearchReplace) putByPath() bool {
	if f.ByPath == "" || f.PutValue == "" || f.ByValue != "" || f.ByValueRegex != "" || strings.Contains(f.ByPath, "[") {
		return false
	}
	for _, elem := range strings.Split(f.ByPath, ".") {
		if elem == "" || strings.Contains(elem, "*") {
			return false
		}
	}
	return true
}

func (f *SearchReplace) putValueByPath(o *yaml.RNode) error {
	path := strings.Split(f.ByPath, ".")
	parent, err := o.Pipe(yaml.LookupCreate(yaml.MappingNode, path[:len(path)-1]...))
	if err != nil {
		return err
	}
	value := yaml.NewScalarRNode(f.PutValue)
	value.YNode().Tag = yaml.NodeTagEmpty
	if err := parent.PipeE(yaml.SetField(path[len(path)-1], value)); err != nil {
		return err
	}
	f.addResult(f.ByPath, f.PutValue)
	return nil
}

func (f *SearchReplace) walk(o *yaml.RNode, path string) error {
	return walkFields(o, path, f.commentLists, func(n *yaml.Node, path string) error {
		return f.matchScalar(n, strings.TrimPrefix(path, "."))
	})
}

// commentLists puts put-comment on the keys of list fields matched by by-path.
func (f *SearchReplace) commentLists(o *yaml.RNode, path string) error {
	if f.PutComment == "" {
		return nil
	}
	return o.VisitFields(func(n *yaml.MapNode) error {
		if n.IsNilOrEmpty() || n.Value.YNode().Kind != yaml.SequenceNode {
			return nil
		}
		fieldPath := strings.TrimPrefix(path+"."+n.Key.YNode().Value, ".")
		if !f.pathMatch(fieldPath) {
			return nil
		}
		n.Key.YNode().LineComment = f.PutComment
		n.Value.YNode().Style = yaml.FlowStyle
		value, err := yaml.String(n.Value.YNode())
		if err != nil {
			return err
		}
		n.Value.YNode().Style = 0
		f.addResult(f.ByPath+" # "+f.PutComment, strings.TrimSpace(value))
		return nil
	})
}

func (f *SearchReplace) matchScalar(node *yaml.Node, path string) error {
	valueMatch := (f.ByValue != "" && f.ByValue == node.Value) || (f.regex != nil && f.regex.MatchString(node.Value))
	pathMatch := f.pathMatch(path)
	matched := (valueMatch && pathMatch) || (valueMatch && f.ByPath == "") || (pathMatch && f.ByValue == "" && f.ByValueRegex == "")
	if !matched {
		return nil
	}
	if f.PutComment != "" {
		comment, err := f.resolve(node.Value, f.PutComment)
		if err != nil {
			return err
		}
		node.LineComment = comment
	}
	if f.PutValue != "" {
		value, err := f.resolve(node.Value, f.PutValue)
		if err != nil {
			return err
		}
		node.Value = value
		node.Tag = yaml.NodeTagEmpty
	}
	if f.file != "" {
		value, err := yaml.String(node)
		if err != nil {
			return err
		}
		f.addResult(path, strings.TrimSpace(value))
	}
	return nil
}

func (f *SearchReplace) addResult(fieldPath, value string) {
	message := fmt.Sprintf("Matched field value %q", value)
	if f.PutComment != "" || f.PutValue != "" {
		message = fmt.Sprintf("Mutated field value to %q", value)
	}
	r := &framework.Result{Message: message, Field: &framework.Field{Path: fieldPath}}
	if f.file != "" {
		r.File = &framework.File{Path: f.file}
	}
	f.results = append(f.results, r)
}

var captureGroupReference = regexp.MustCompile(`\$\{([0-9]+)\}`)

// resolve replaces the ${N} capture groups of by-value-regex in pattern.
func (f *SearchReplace) resolve(value, pattern string) (string, error) {
	if f.regex == nil {
		return pattern, nil
	}
	groups := f.regex.FindStringSubmatch(value)
	for i := 1; i < len(groups); i++ {
		pattern = strings.ReplaceAll(pattern, fmt.Sprintf("${%d}", i), groups[i])
	}
	if captureGroupReference.MatchString(pattern) {
		return "", fmt.Errorf("unable to resolve capture groups in %q: by-value-regex %q has fewer groups", pattern, f.ByValueRegex)
	}
	return pattern, nil
}

// pathMatch matches a field path such as spec.containers[0].image against by-path.
func (f *SearchReplace) pathMatch(path string) bool {
	if f.ByPath == "" {
		return false
	}
	return matchPathElems(strings.Split(path, "."), strings.Split(f.ByPath, "."))
}

func matchPathElems(path, pattern []string) bool {
	if len(pattern) == 0 {
		return len(path) == 0
	}
	if pattern[0] == "**" {
		for i := 0; i <= len(path); i++ {
			if matchPathElems(path[i:], pattern[1:]) {
				return true
			}
		}
		return false
	}
	if len(path) == 0 {
		return false
	}
	return (pattern[0] == "*" || matchPathElem(path[0], pattern[0])) && matchPathElems(path[1:], pattern[1:])
}

// matchPathElem matches one element; a[1] matches a[1], a[*], *[1] and *[*].
func matchPathElem(elem, pattern string) bool {
	if elem == pattern {
		return true
	}
	name, index, ok := strings.Cut(elem, "[")
	if !ok {
		return false
	}
	pName, pIndex, ok := strings.Cut(pattern, "[")
	if !ok || (pName != "*" && pName != name) {
		return false
	}
	return pIndex == "*]" || pIndex == index
}

// globRegexp turns a doublestar file glob into an anchored regular expression.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	inAlt := 0
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch c {
		case '\\':
			if i+1 < len(glob) {
				i++
				b.WriteString(regexp.QuoteMeta(string(glob[i])))
			}
		case '*':
			if i+1 < len(glob) && glob[i+1] == '*' {
				i++
				if i+1 < len(glob) && glob[i+1] == '/' && (i == 1 || glob[i-2] == '/') {
					i++
					b.WriteString("(?:.*/)?")
				} else {
					b.WriteString("[^/]*")
				}
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := strings.IndexByte(glob[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unterminated character class")
			}
			class := glob[i+1 : i+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += j
		case '{':
			inAlt++
			b.WriteString("(?:")
		case '}':
			if inAlt == 0 {
				return nil, fmt.Errorf("unbalanced }")
			}
			inAlt--
			b.WriteString(")")
		case ',':
			if inAlt > 0 {
				b.WriteString("|")
			} else {
				b.WriteString(",")
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if inAlt > 0 {
		return nil, fmt.Errorf("unbalanced {")
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
