package builtin

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	starjson "go.starlark.net/lib/json"
	starmath "go.starlark.net/lib/math"
	startime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

const (
	// DefaultStarlarkMaxSteps bounds the work of one script run.
	DefaultStarlarkMaxSteps = 100_000_000
	// DefaultStarlarkTimeout bounds the wall time of one script run.
	DefaultStarlarkTimeout = 30 * time.Second

	// starlarkItemAnnotation tags input items while the script runs, so comments
	// and styles can be copied from each input item to what the script returns.
	starlarkItemAnnotation = "kpo.dev/starlark-item"
)

// starlarkModules are the libraries a script can load().
var starlarkModules = map[string]starlark.StringDict{
	"encoding/json.star": {"json": starjson.Module},
	"math.star":          {"math": starmath.Module},
	"time.star":          {"time": startime.Module},
	krmfnModuleFile:      {"krmfn": krmfnModule},
}

// Starlark is the starlark function: it runs a Starlark script that reads and
// writes ctx.resource_list (items and functionConfig, as in the KRM functions
// specification). fail() fails the function with the given message, print()
// writes to stderr. The set built-in, while loops, recursion, top-level control
// flow and global reassignment are enabled, as in the catalog function. Scripts can
// load() encoding/json.star, math.star, time.star and the catalog's KRM helpers,
// krmfn.star (match_gvk, match_name, match_namespace).
//
// Starlark has no comments, so comments and scalar styles are copied from each
// input item to the item the script returns for it.
//
// Every run is bounded by MaxSteps execution steps and by Timeout wall time, so
// an endless loop ends with a clear error.
//
// Config: fn.kpt.dev/v1alpha1 StarlarkRun with source and params, or a
// ConfigMap with data.source (other data entries are parameters).
type Starlark struct {
	// MaxSteps is the execution step limit of one run.
	MaxSteps uint64
	// Timeout is the wall-time limit of one run.
	Timeout time.Duration

	stderr io.Writer
}

// NewStarlark returns the starlark built-in with the default limits.
func NewStarlark() *Starlark {
	return &Starlark{MaxSteps: DefaultStarlarkMaxSteps, Timeout: DefaultStarlarkTimeout, stderr: io.Discard}
}

// SetStderr implements StderrSetter: print() output goes to w.
func (f *Starlark) SetStderr(w io.Writer) {
	f.stderr = w
}

// Process implements framework.ResourceListProcessor.
func (f *Starlark) Process(rl *framework.ResourceList) error {
	fc := rl.FunctionConfig
	var source string
	_, kind := configMeta(fc)
	switch {
	case kind == "StarlarkRun":
		s, err := fc.Pipe(yaml.Lookup("source"))
		if err != nil || s == nil || s.YNode().Kind != yaml.ScalarNode {
			return fail(rl, configError("StarlarkRun %s needs `source`, the Starlark script, as a string", fc.GetName()))
		}
		source = s.YNode().Value
	case isConfigMap(fc):
		source = fc.GetDataMap()["source"]
	case kind == "":
		return fail(rl, configError("function config is missing: give starlark a StarlarkRun (fn.kpt.dev/v1alpha1) with `source`"))
	default:
		return fail(rl, configError("function config must be a StarlarkRun (fn.kpt.dev/v1alpha1) or a ConfigMap with data.source, got %s", kind))
	}
	if strings.TrimSpace(source) == "" {
		return fail(rl, configError("the Starlark script is empty: set `source` of the function config"))
	}
	filename := "starlark"
	if name := fc.GetName(); name != "" {
		filename = name
	}

	originals := make([]*yaml.RNode, len(rl.Items))
	items := starlark.NewList(nil)
	for i, o := range rl.Items {
		originals[i] = o
		tagged := o.Copy()
		if err := tagged.PipeE(yaml.SetAnnotation(starlarkItemAnnotation, strconv.Itoa(i))); err != nil {
			return fail(rl, err)
		}
		v, err := yamlToStarlark(tagged.YNode())
		if err != nil {
			return fail(rl, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err))
		}
		_ = items.Append(v)
	}
	resourceList := starlark.NewDict(4)
	_ = resourceList.SetKey(starlark.String("apiVersion"), starlark.String("config.kubernetes.io/v1"))
	_ = resourceList.SetKey(starlark.String("kind"), starlark.String("ResourceList"))
	_ = resourceList.SetKey(starlark.String("items"), items)
	if !isEmptyConfig(fc) {
		v, err := yamlToStarlark(fc.YNode())
		if err != nil {
			return fail(rl, fmt.Errorf("function config: %w", err))
		}
		_ = resourceList.SetKey(starlark.String("functionConfig"), v)
	}
	ctx := starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		"resource_list": resourceList,
		// The manager's environment is not the script's business.
		"environment": starlark.NewDict(0),
		"open_api":    starlark.NewDict(0),
	})

	if err := f.exec(filename, source, ctx); err != nil {
		return fail(rl, err)
	}

	out, found, err := resourceList.Get(starlark.String("items"))
	if err != nil || !found {
		return fail(rl, fmt.Errorf("the script removed ctx.resource_list[\"items\"]; set it to a list of resources"))
	}
	iterable, ok := out.(starlark.Iterable)
	if !ok || out.Type() == "dict" || out.Type() == "string" {
		return fail(rl, fmt.Errorf("ctx.resource_list[\"items\"] must be a list of resources, got %s", out.Type()))
	}
	var result []*yaml.RNode
	iter := iterable.Iterate()
	defer iter.Done()
	var v starlark.Value
	for i := 0; iter.Next(&v); i++ {
		node, err := starlarkToYAML(v)
		if err != nil {
			return fail(rl, fmt.Errorf("ctx.resource_list[\"items\"][%d]: %w", i, err))
		}
		if node.Kind != yaml.MappingNode {
			return fail(rl, fmt.Errorf("ctx.resource_list[\"items\"][%d] must be a resource (a dict), got %s", i, v.Type()))
		}
		item := yaml.NewRNode(node)
		var orig *yaml.Node
		if idx, ok := item.GetAnnotations()[starlarkItemAnnotation]; ok {
			if n, err := strconv.Atoi(idx); err == nil && n >= 0 && n < len(originals) {
				orig = originals[n].YNode()
				restoreFormatting(orig, item.YNode())
			}
			if err := removeAnnotation(item, starlarkItemAnnotation); err != nil {
				return fail(rl, err)
			}
		}
		sortNewKeys(orig, item.YNode())
		result = append(result, item)
	}
	rl.Items = result
	return nil
}

func (f *Starlark) exec(filename, source string, ctx starlark.Value) error {
	var steps, timedOut atomic.Bool
	thread := &starlark.Thread{
		Name:  filename,
		Print: func(_ *starlark.Thread, msg string) { _, _ = fmt.Fprintln(f.stderr, msg) },
		Load: func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
			if m, ok := starlarkModules[module]; ok {
				return m, nil
			}
			return nil, fmt.Errorf("module %q is not available; the built-in starlark function offers %v", module, sortedModuleNames())
		},
		OnMaxSteps: func(t *starlark.Thread) {
			steps.Store(true)
			t.Cancel("too many steps")
		},
	}
	if f.MaxSteps > 0 {
		thread.SetMaxExecutionSteps(f.MaxSteps)
	}
	if f.Timeout > 0 {
		timer := time.AfterFunc(f.Timeout, func() {
			timedOut.Store(true)
			thread.Cancel("timeout")
		})
		defer timer.Stop()
	}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}
	_, err := starlark.ExecFileOptions(opts, thread, filename, source, starlark.StringDict{"ctx": ctx})
	switch {
	case err == nil:
		return nil
	case steps.Load():
		return fmt.Errorf("starlark script %s was stopped after %d execution steps: it probably loops forever; "+
			"make sure every loop ends and the script does less work", filename, f.MaxSteps)
	case timedOut.Load():
		return fmt.Errorf("starlark script %s was stopped after running for %s: it probably loops forever; "+
			"make sure every loop ends", filename, f.Timeout)
	}
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		return errors.New(evalErr.Msg)
	}
	return err
}

func sortedModuleNames() []string {
	names := make([]string, 0, len(starlarkModules))
	for n := range starlarkModules {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// yamlToStarlark converts a YAML node into Starlark values: mappings become
// dicts (in field order), sequences lists, and scalars None, bool, int, float or
// string according to their tag.
func yamlToStarlark(n *yaml.Node) (starlark.Value, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return starlark.None, nil
		}
		return yamlToStarlark(n.Content[0])
	case yaml.AliasNode:
		return yamlToStarlark(n.Alias)
	case yaml.MappingNode:
		d := starlark.NewDict(len(n.Content) / 2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := yamlToStarlark(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			if err := d.SetKey(starlark.String(n.Content[i].Value), v); err != nil {
				return nil, err
			}
		}
		return d, nil
	case yaml.SequenceNode:
		elems := make([]starlark.Value, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlToStarlark(c)
			if err != nil {
				return nil, err
			}
			elems = append(elems, v)
		}
		return starlark.NewList(elems), nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case yaml.NodeTagNull:
			return starlark.None, nil
		case yaml.NodeTagBool:
			if b, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
				return starlark.Bool(b), nil
			}
			return starlark.String(n.Value), nil
		case yaml.NodeTagInt:
			if i, ok := new(big.Int).SetString(strings.ReplaceAll(n.Value, "_", ""), 0); ok {
				return starlark.MakeBigInt(i), nil
			}
			return starlark.String(n.Value), nil
		case yaml.NodeTagFloat:
			var v any
			if err := n.Decode(&v); err == nil {
				if fl, ok := v.(float64); ok {
					return starlark.Float(fl), nil
				}
			}
			return starlark.String(n.Value), nil
		default:
			return starlark.String(n.Value), nil
		}
	}
	return nil, fmt.Errorf("unsupported YAML node kind %d", n.Kind)
}

// starlarkToYAML converts the Starlark values a script can build back to YAML.
func starlarkToYAML(v starlark.Value) (*yaml.Node, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagNull, Value: "null"}, nil
	case starlark.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagBool, Value: strconv.FormatBool(bool(v))}, nil
	case starlark.Int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagInt, Value: v.String()}, nil
	case starlark.Float:
		f := float64(v)
		value := strconv.FormatFloat(f, 'g', -1, 64)
		switch {
		case math.IsInf(f, 1):
			value = ".inf"
		case math.IsInf(f, -1):
			value = "-.inf"
		case math.IsNaN(f):
			value = ".nan"
		case !strings.ContainsAny(value, ".eE"):
			value += ".0"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagFloat, Value: value}, nil
	case starlark.String:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: string(v)}, nil
	case *starlark.Dict:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
		for _, item := range v.Items() {
			key, ok := item[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict keys must be strings, got %s %s", item[0].Type(), item[0].String())
			}
			value, err := starlarkToYAML(item[1])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", string(key), err)
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: yaml.NodeTagString, Value: string(key)}, value)
		}
		return n, nil
	case starlark.Indexable: // list, tuple
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq}
		for i := 0; i < v.Len(); i++ {
			value, err := starlarkToYAML(v.Index(i))
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			n.Content = append(n.Content, value)
		}
		return n, nil
	}
	return nil, fmt.Errorf("cannot convert a Starlark %s to YAML", v.Type())
}

// sortNewKeys orders the keys the script added as the catalog function writes them. The
// catalog function turns the script's values into Go maps and marshals them, so every
// mapping comes out with its keys sorted (yaml's key order); kpt then puts the keys an input
// resource already had back in their order (kyaml's SyncOrder, which Render also applies)
// and leaves the added keys after them. So: in a new resource every mapping is sorted; in a
// resource from the input, the keys each mapping did not have are sorted among themselves.
func sortNewKeys(orig, out *yaml.Node) {
	if out == nil {
		return
	}
	if orig != nil && orig.Kind == yaml.DocumentNode && len(orig.Content) > 0 {
		orig = orig.Content[0]
	}
	if orig != nil && orig.Kind != out.Kind {
		orig = nil
	}
	switch out.Kind {
	case yaml.MappingNode:
		var added []int // key indexes
		for i := 0; i+1 < len(out.Content); i += 2 {
			var origValue *yaml.Node
			known := false
			if orig != nil {
				for j := 0; j+1 < len(orig.Content); j += 2 {
					if orig.Content[j].Value == out.Content[i].Value {
						origValue, known = orig.Content[j+1], true
						break
					}
				}
			}
			if !known {
				added = append(added, i)
			}
			sortNewKeys(origValue, out.Content[i+1])
		}
		pairs := make([][2]*yaml.Node, len(added))
		for k, i := range added {
			pairs[k] = [2]*yaml.Node{out.Content[i], out.Content[i+1]}
		}
		sort.SliceStable(pairs, func(a, b int) bool { return yamlKeyLess(pairs[a][0].Value, pairs[b][0].Value) })
		for k, i := range added {
			out.Content[i], out.Content[i+1] = pairs[k][0], pairs[k][1]
		}
	case yaml.SequenceNode:
		for i, c := range out.Content {
			var o *yaml.Node
			if orig != nil && i < len(orig.Content) {
				o = orig.Content[i]
			}
			sortNewKeys(o, c)
		}
	}
}

// yamlKeyLess is the order in which go.yaml.in/yaml/v3 marshals the string keys of a map:
// letters by code point, runs of digits by their numeric value.
func yamlKeyLess(a, b string) bool {
	ar, br := []rune(a), []rune(b)
	digits := false
	for i := 0; i < len(ar) && i < len(br); i++ {
		if ar[i] == br[i] {
			digits = unicode.IsDigit(ar[i])
			continue
		}
		al := unicode.IsLetter(ar[i])
		bl := unicode.IsLetter(br[i])
		if al && bl {
			return ar[i] < br[i]
		}
		if al || bl {
			if digits {
				return al
			}
			return bl
		}
		var ai, bi int
		var an, bn int64
		if ar[i] == '0' || br[i] == '0' {
			for j := i - 1; j >= 0 && unicode.IsDigit(ar[j]); j-- {
				if ar[j] != '0' {
					an = 1
					bn = 1
					break
				}
			}
		}
		for ai = i; ai < len(ar) && unicode.IsDigit(ar[ai]); ai++ {
			an = an*10 + int64(ar[ai]-'0')
		}
		for bi = i; bi < len(br) && unicode.IsDigit(br[bi]); bi++ {
			bn = bn*10 + int64(br[bi]-'0')
		}
		if an != bn {
			return an < bn
		}
		if ai != bi {
			return ai < bi
		}
		return ar[i] < br[i]
	}
	return len(ar) < len(br)
}

// restoreFormatting copies comments and styles from an input node to the node
// the script produced for it, wherever their structure still matches; scalar
// styles (quotes, literal blocks) are kept only for unchanged values.
func restoreFormatting(orig, out *yaml.Node) {
	if orig == nil || out == nil {
		return
	}
	if orig.Kind == yaml.DocumentNode && len(orig.Content) > 0 {
		orig = orig.Content[0]
	}
	if orig.Kind != out.Kind {
		return
	}
	out.HeadComment, out.LineComment, out.FootComment = orig.HeadComment, orig.LineComment, orig.FootComment
	switch out.Kind {
	case yaml.ScalarNode:
		if orig.Value == out.Value {
			out.Style = orig.Style
			if orig.ShortTag() == out.ShortTag() {
				out.Tag = orig.Tag
			}
		}
	case yaml.MappingNode:
		out.Style = orig.Style
		for i := 0; i+1 < len(out.Content); i += 2 {
			for j := 0; j+1 < len(orig.Content); j += 2 {
				if orig.Content[j].Value == out.Content[i].Value {
					restoreFormatting(orig.Content[j], out.Content[i])
					restoreFormatting(orig.Content[j+1], out.Content[i+1])
					break
				}
			}
		}
	case yaml.SequenceNode:
		out.Style = orig.Style
		for i := 0; i < len(out.Content) && i < len(orig.Content); i++ {
			restoreFormatting(orig.Content[i], out.Content[i])
		}
	}
}

// removeAnnotation deletes an annotation and an annotations map it leaves empty.
func removeAnnotation(o *yaml.RNode, key string) error {
	annotations, err := o.Pipe(yaml.Lookup("metadata", "annotations"))
	if err != nil || annotations == nil {
		return err
	}
	if _, err := annotations.Pipe(yaml.Clear(key)); err != nil {
		return err
	}
	if len(annotations.YNode().Content) == 0 {
		metadata, err := o.Pipe(yaml.Lookup("metadata"))
		if err != nil {
			return err
		}
		_, err = metadata.Pipe(yaml.Clear("annotations"))
		return err
	}
	return nil
}
