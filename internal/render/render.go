// Package render implements `kpt fn render` over an in-memory package: files in, files out,
// plus the results of every function that ran. It is pure: no Kubernetes client, no disk, no
// process. Functions run through the Evaluator interface it defines; the evaluators (built
// in, exec, sandbox, Job, cache) live in package internal/fn and its subpackages, which
// import render, never the reverse. Besides the interface, render defines what evaluators
// and Render's callers share: FunctionError, ErrTimeout, Result, the stderr of a run
// (WithStderr, StderrWriter) and comment restoration (CommentPreserver, RestoreComments).
//
// The semantics follow kpt's renderer (kpt v1, e2e fixtures of kptdev/kpt): packages are
// hydrated depth-first post-order (or breadth-first top-down when the root Kptfile asks for
// it), each package runs its mutators then its validators, functions see the package's
// resources plus those of its subpackages, resources are tracked by kpt's path and index
// annotations, and the result is written back file by file with comments kept.
package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/yamlfast"
)

// ErrInvalidKptfile is wrapped by every error about a Kptfile that cannot be read or that
// kpt would refuse (bad YAML, unknown fields, old apiVersion, a function config that is
// missing or malformed). The message names the Kptfile.
var ErrInvalidKptfile = errors.New("invalid Kptfile")

// ErrNotAPackage is returned when the root of the files has no Kptfile.
var ErrNotAPackage = errors.New("not a kpt package")

// ErrInvalidResource is wrapped when a file cannot be parsed as KRM, a resource lacks
// apiVersion, kind or metadata.name, or a function moves a resource to an invalid path.
var ErrInvalidResource = errors.New("invalid resource")

// ErrTimeout is wrapped by an Evaluator's error when a function runs longer than the
// evaluator allows; Render passes it on, so its callers can tell a timeout from a failure.
var ErrTimeout = errors.New("function timed out")

// Annotations kpt uses on the root Kptfile to change how a package is rendered.
const (
	// BFSRenderAnnotation set to "true" renders top-down, breadth-first, instead of the default
	// depth-first post-order.
	BFSRenderAnnotation = "kpt.dev/bfs-rendering"
	// SaveOnRenderFailureAnnotation set to "true" makes Render return the partially rendered
	// files together with the error when a function fails.
	SaveOnRenderFailureAnnotation = "kpt.dev/save-on-render-failure"
)

// Evaluator runs one function of a pipeline over a ResourceList in place: it replaces the
// items and results with the function's output. A function that fails is reported as a
// *FunctionError (Render fills in the package and image), a run past the evaluator's limit
// as an error wrapping ErrTimeout; any other error is a failure of the evaluator itself.
// Diagnostics of a function that succeeded go to StderrWriter(ctx).
type Evaluator interface {
	Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error
}

// EvaluatorFunc adapts a function to an Evaluator.
type EvaluatorFunc func(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error

// Evaluate calls f.
func (f EvaluatorFunc) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	return f(ctx, fn, rl)
}

// stderrKey is the context key of the writer StderrWriter returns.
type stderrKey struct{}

// WithStderr returns a context whose StderrWriter is w. Render gives every function run its
// own, and records what was written as the Result's Stderr.
func WithStderr(ctx context.Context, w io.Writer) context.Context {
	return context.WithValue(ctx, stderrKey{}, w)
}

// StderrWriter is where an Evaluator writes the diagnostics of a function that succeeded (a
// failed function reports them in FunctionError.Stderr instead). It discards them when the
// context has none.
func StderrWriter(ctx context.Context) io.Writer {
	if w, ok := ctx.Value(stderrKey{}).(io.Writer); ok {
		return w
	}
	return io.Discard
}

// FunctionError is a function that failed: it exited non-zero, returned an error, or
// reported results of severity error.
type FunctionError struct {
	// Package is the slash-separated path of the package whose pipeline ran the function,
	// relative to the root ("." for the root).
	Package string
	// Image is the function's image, or its exec command for an exec function.
	Image string
	// ExitCode is the function's exit code (1 for in-process failures).
	ExitCode int
	// Stderr is (a bounded tail of) what the function wrote to stderr.
	Stderr string
	// Results are the structured results the function reported.
	Results framework.Results
	// Err is the underlying error, when there is one beyond the results.
	Err error
}

// Error says which function of which package failed and why.
func (e *FunctionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "function %q", e.Image)
	if e.Package != "" {
		fmt.Fprintf(&b, " of package %q", e.Package)
	}
	b.WriteString(" failed")
	if e.ExitCode != 0 {
		fmt.Fprintf(&b, " with exit code %d", e.ExitCode)
	}
	var why []string
	if e.Err != nil {
		why = append(why, e.Err.Error())
	}
	for _, r := range e.Results {
		if r != nil && r.Severity == framework.Error {
			why = append(why, r.String())
		}
	}
	if len(why) == 0 && e.Stderr != "" {
		why = append(why, strings.TrimSpace(e.Stderr))
	}
	if len(why) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(why, "; "))
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *FunctionError) Unwrap() error { return e.Err }

// Options configure Render.
type Options struct {
	// Evaluator picks the evaluator for a function (by image or exec). When nil, every
	// function fails with "no evaluator for image X".
	Evaluator func(fn kptfile.Function) (Evaluator, error)
	// ResolveTag resolves a function's semver tag constraint (kpt's `tag:`) to an image with
	// a tag; the function then runs, and is reported, with that image. When nil, a function
	// with a tag fails.
	ResolveTag func(image, constraint string) (string, error)
}

// Result is the outcome of one function run, in the order the functions ran.
type Result struct {
	// Package is the slash-separated path of the package whose pipeline ran the function
	// ("." for the root).
	Package string
	// Image is the function's image as the Kptfile names it, or its exec command.
	Image string
	// Validator is true for a pipeline.validators function, false for a mutator.
	Validator bool
	// ExitCode is 0 for success.
	ExitCode int
	// Stderr is what the function wrote to stderr, if anything.
	Stderr string
	// Results are the structured results the function reported.
	Results framework.Results
	// Function is the pipeline entry that ran.
	Function kptfile.Function
	// ExecutionError says why the step failed when it failed around the function rather than
	// in it (the function could not be run, or its input or output broke kpt's rules).
	ExecutionError string
	// Resources is the number of resources the function was given (its selection, when it
	// has selectors or exclusions).
	Resources int
}

// Render runs the Kptfile pipelines of the package held in files (slash-separated paths
// relative to the root package, mapped to their exact bytes) and returns the rendered files
// and one Result per function run.
//
// On failure out is nil and err says why (a *FunctionError, wrapped, when a function failed);
// results holds what ran up to the failure. The one exception is kpt's
// kpt.dev/save-on-render-failure: "true" on the root Kptfile: then out holds the partially
// rendered package, as kpt would write it.
func Render(ctx context.Context, files map[string][]byte, opts Options) (out map[string][]byte, results []Result, err error) {
	r, resources, err := run(ctx, files, opts)
	if r == nil {
		return nil, nil, err
	}
	if err != nil {
		if !r.saveOnFailure || resources == nil {
			return nil, r.results, err
		}
		out, werr := r.write(resources, false)
		if werr != nil {
			return nil, r.results, fmt.Errorf("%w (saving the partial result also failed: %v)", err, werr)
		}
		return out, r.results, err
	}
	out, err = r.write(resources, true)
	if err != nil {
		return nil, r.results, err
	}
	return out, r.results, nil
}

// OutOfPlace is Render for output out of place (kpt fn render -o): it returns the
// rendered resources of every package rather than files, each annotated with its path
// relative to the root and its index in that file (the reader's annotations, new resources
// given theirs), each package's resources in the order of its files with its Kptfile last.
// On failure resources is nil, or the partial result under kpt.dev/save-on-render-failure.
func OutOfPlace(ctx context.Context, files map[string][]byte, opts Options) (resources []*yaml.RNode, results []Result, err error) {
	r, resources, err := run(ctx, files, opts)
	if r == nil {
		return nil, nil, err
	}
	if err != nil && (!r.saveOnFailure || resources == nil) {
		return nil, r.results, err
	}
	if perr := rootRelativePaths(resources); perr != nil {
		return nil, r.results, perr
	}
	return kptfilesLast(resources), r.results, err
}

// WriteResources turns resources annotated with their paths (as OutOfPlace returns
// them) into files, as kpt writes a package out of place: one file per path, resources in
// index order, the reader's annotations removed.
func WriteResources(resources []*yaml.RNode) (map[string][]byte, error) {
	r := &renderer{files: map[string][]byte{}, root: &pkgNode{dir: "."}}
	return r.write(resources, false)
}

// run loads the packages and hydrates them; it returns a nil renderer when the files are not
// a package it can render.
func run(ctx context.Context, files map[string][]byte, opts Options) (*renderer, []*yaml.RNode, error) {
	files, err := cleanPaths(files)
	if err != nil {
		return nil, nil, err
	}
	root, err := loadPackages(files)
	if err != nil {
		return nil, nil, err
	}
	r := &renderer{opts: opts, files: files, root: root,
		saveOnFailure: isTrue(root.kf.Metadata.Annotations[SaveOnRenderFailureAnnotation])}

	var resources []*yaml.RNode
	if isTrue(root.kf.Metadata.Annotations[BFSRenderAnnotation]) {
		resources, err = r.hydrateBFS(ctx)
	} else {
		resources, err = r.hydrate(ctx, root)
	}
	return r, resources, err
}

// kptfilesLast orders resources by package (in the order they come), and within a package
// puts its Kptfile after its other resources, as kpt's package reader lists them.
func kptfilesLast(resources []*yaml.RNode) []*yaml.RNode {
	out := make([]*yaml.RNode, 0, len(resources))
	var kptfiles []*yaml.RNode
	dirOf := func(n *yaml.RNode) string { p, _ := yamlfast.FileAnnotations(n); return path.Dir(p) }
	for i, n := range resources {
		if p, _ := yamlfast.FileAnnotations(n); path.Base(p) == kptfile.FileName && n.GetKind() == "Kptfile" {
			kptfiles = append(kptfiles, n)
		} else {
			out = append(out, n)
		}
		if i == len(resources)-1 || dirOf(resources[i+1]) != dirOf(n) {
			out = append(out, kptfiles...)
			kptfiles = kptfiles[:0]
		}
	}
	return out
}

func isTrue(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }

// cleanPaths refuses paths that are absolute or leave the package, and returns a copy of
// files keyed by cleaned paths.
func cleanPaths(files map[string][]byte) (map[string][]byte, error) {
	clean := make(map[string][]byte, len(files))
	for _, p := range slices.Sorted(maps.Keys(files)) {
		c := path.Clean(p)
		if p == "" || strings.HasPrefix(p, "/") || c == ".." || strings.HasPrefix(c, "../") || c == "." {
			return nil, fmt.Errorf("file path %q is not a path inside the package", p)
		}
		if _, dup := clean[c]; dup {
			return nil, fmt.Errorf("file path %q names the same file as another path", p)
		}
		clean[c] = files[p]
	}
	return clean, nil
}

// renderer holds the state of one Render call.
type renderer struct {
	opts    Options
	files   map[string][]byte
	root    *pkgNode
	results []Result
	// saveOnFailure is kpt.dev/save-on-render-failure: a failed render returns the
	// resources as the functions that succeeded left them.
	saveOnFailure bool
}

// hydrate renders pn's subtree depth-first post-order and returns its resources: the
// package's own, then each subpackage's rendered resources. On error the returned resources
// are the partial state (what ran so far), for save-on-render-failure.
func (r *renderer) hydrate(ctx context.Context, pn *pkgNode) ([]*yaml.RNode, error) {
	input, err := pn.readResources(r.files)
	if err != nil {
		return nil, err
	}
	for _, child := range pn.children {
		out, err := r.hydrate(ctx, child)
		if err != nil {
			if out == nil {
				return nil, err
			}
			return append(input, out...), err
		}
		input = append(input, out...)
	}
	return r.runPipeline(ctx, pn, input)
}

// hydrateBFS renders top-down: every package, in breadth-first order, runs its pipeline over
// its own resources and those of its descendants, as they are at that point.
func (r *renderer) hydrateBFS(ctx context.Context) ([]*yaml.RNode, error) {
	var order []*pkgNode
	for queue := []*pkgNode{r.root}; len(queue) > 0; queue = queue[1:] {
		order = append(order, queue[0])
		queue = append(queue, queue[0].children...)
	}
	byDir := make(map[string]*pkgNode, len(order))
	for _, pn := range order {
		byDir[pn.dir] = pn
		res, err := pn.readResources(r.files)
		if err != nil {
			return nil, err
		}
		pn.resources = res
	}
	all := func() []*yaml.RNode {
		var out []*yaml.RNode
		for _, pn := range order {
			out = append(out, pn.resources...)
		}
		return out
	}
	for _, pn := range order {
		var input []*yaml.RNode
		var collect func(n *pkgNode)
		collect = func(n *pkgNode) {
			input = append(input, n.resources...)
			for _, c := range n.children {
				collect(c)
			}
		}
		collect(pn)
		output, err := r.runPipeline(ctx, pn, input)
		if output != nil {
			// Hand every resource back to the package it belongs to.
			var clear func(n *pkgNode)
			clear = func(n *pkgNode) {
				n.resources = nil
				for _, c := range n.children {
					clear(c)
				}
			}
			clear(pn)
			for _, res := range output {
				pkg, _ := yamlfast.Annotation(res, pkgPathAnnotation)
				owner := byDir[pkg]
				if owner == nil {
					owner = pn
				}
				owner.resources = append(owner.resources, res)
			}
		}
		if err != nil {
			if output == nil {
				return nil, err
			}
			return all(), err
		}
	}
	return all(), nil
}
