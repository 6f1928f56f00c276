package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/comments"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/order"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/yamlfast"
)

// selectionIDAnnotation identifies resources while a function with selectors runs, so its
// output can be merged back with the resources it did not see (kpt's kpt-resource-id).
const selectionIDAnnotation = "internal.config.k8s.io/kpt-resource-id"

// functionInputName is the name of the ConfigMap kpt builds from a function's configMap.
const functionInputName = "function-input"

// runPipeline runs pn's mutators then its validators over input. On error the returned
// resources are the partial state: the input as the mutators that succeeded left it.
func (r *renderer) runPipeline(ctx context.Context, pn *pkgNode, input []*yaml.RNode) ([]*yaml.RNode, error) {
	pl := pn.kf.Pipeline
	if pl == nil || (len(pl.Mutators) == 0 && len(pl.Validators) == 0) {
		if err := areKRM(input); err != nil {
			return input, &pkgError{dir: pn.dir, err: fmt.Errorf("%w: input resource list must contain only KRM resources: %w", ErrInvalidResource, err)}
		}
		return input, nil
	}
	for i := range pl.Mutators {
		fn := pl.Mutators[i]
		output, err := Selective(input, fn, func(selected []*yaml.RNode) ([]*yaml.RNode, error) {
			return r.runFunction(ctx, pn, fn, false, input, selected)
		})
		if err != nil {
			clearBookkeeping(input)
			return input, inPackage(pn, err)
		}
		input = output
	}
	for i := range pl.Validators {
		fn := pl.Validators[i]
		selected, _, err := selectResources(input, fn)
		if err != nil {
			return input, err
		}
		for _, n := range input {
			_ = yamlfast.ClearAnnotation(n, selectionIDAnnotation)
		}
		// Validators see copies and their output is dropped: they cannot change anything.
		copies := make([]*yaml.RNode, len(selected))
		for i, n := range selected {
			copies[i] = n.Copy()
			_ = yamlfast.ClearAnnotation(copies[i], selectionIDAnnotation)
		}
		if _, err := r.runFunction(ctx, pn, fn, true, input, copies); err != nil {
			clearBookkeeping(input)
			return input, inPackage(pn, err)
		}
	}
	return input, nil
}

// clearBookkeeping removes the annotations a function run adds to its input, for when the
// run stops half way (kpt's clearAnnotationsOnMutFailure).
func clearBookkeeping(nodes []*yaml.RNode) {
	for _, n := range nodes {
		_ = yamlfast.ClearAnnotations(n, kioutil.IdAnnotation, kioutil.LegacyIdAnnotation, kioutil.InternalAnnotationsMigrationResourceIDAnnotation, selectionIDAnnotation)
	}
}

// inPackage names pn in err, unless err is a *FunctionError, which already does.
func inPackage(pn *pkgNode, err error) error {
	var fe *FunctionError
	if errors.As(err, &fe) {
		return err
	}
	return &pkgError{dir: pn.dir, err: err}
}

// Selective runs a mutating function, run, over the resources fn's selectors and exclusions
// pick from input (all of them when it has neither) and puts its output back among the others
// as kpt does: unselected resources keep their place, selected ones are replaced by their
// output, new ones go last. A Kptfile pipeline's mutators and `kpoctl fn eval --match-…` run
// through it. On error input is returned as it was.
func Selective(input []*yaml.RNode, fn kptfile.Function, run func(selected []*yaml.RNode) ([]*yaml.RNode, error)) ([]*yaml.RNode, error) {
	selected, rest, err := selectResources(input, fn)
	if err != nil {
		return input, err
	}
	clear := func(nodes []*yaml.RNode) error {
		for _, n := range nodes {
			if err := yamlfast.ClearAnnotation(n, selectionIDAnnotation); err != nil {
				return err
			}
		}
		return nil
	}
	output, err := run(selected)
	if err != nil {
		_ = clear(input)
		return input, err
	}
	if rest == nil {
		return output, nil
	}
	merged := mergeSelection(input, selected, output)
	return merged, clear(merged)
}

// selectResources returns the resources fn is to see. When fn has selectors or exclusions,
// every resource is tagged with a selection id and rest holds the others; otherwise rest is
// nil and all resources are selected. A resource is selected once even when several
// selectors match it; an exclusion wins over a selector.
func selectResources(input []*yaml.RNode, fn kptfile.Function) (selected, rest []*yaml.RNode, err error) {
	if len(fn.Selectors) == 0 && len(fn.Exclusions) == 0 {
		return input, nil, nil
	}
	rest = []*yaml.RNode{}
	for i, n := range input {
		if err := yamlfast.SetAnnotation(n, selectionIDAnnotation, strconv.Itoa(i)); err != nil {
			return nil, nil, err
		}
		match := len(fn.Selectors) == 0 || slices.ContainsFunc(fn.Selectors, func(s kptfile.Selector) bool { return matches(n, s) })
		if match && slices.ContainsFunc(fn.Exclusions, func(s kptfile.Selector) bool { return !isEmptySelector(s) && matches(n, s) }) {
			match = false
		}
		if match {
			selected = append(selected, n)
		} else {
			rest = append(rest, n)
		}
	}
	return selected, rest, nil
}

func isEmptySelector(s kptfile.Selector) bool {
	return s.APIVersion == "" && s.Kind == "" && s.Name == "" && s.Namespace == "" && len(s.Labels) == 0 && len(s.Annotations) == 0
}

// matches reports whether n matches every field set in s.
func matches(n *yaml.RNode, s kptfile.Selector) bool {
	if (s.APIVersion != "" && s.APIVersion != n.GetApiVersion()) ||
		(s.Kind != "" && s.Kind != n.GetKind()) ||
		(s.Name != "" && s.Name != n.GetName()) ||
		(s.Namespace != "" && s.Namespace != n.GetNamespace()) {
		return false
	}
	labels := n.GetLabels()
	for k, v := range s.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	annotations := n.GetAnnotations()
	for k, v := range s.Annotations {
		if got, ok := annotations[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// mergeSelection puts a selective function's output back among the resources it did not
// see, as kpt does: unselected resources keep their place, selected ones are replaced by
// their output (or dropped when the function deleted them), new resources go last.
func mergeSelection(input, selected, output []*yaml.RNode) []*yaml.RNode {
	id := func(n *yaml.RNode) string { v, _ := yamlfast.Annotation(n, selectionIDAnnotation); return v }
	selectedIDs := map[string]bool{}
	for _, n := range selected {
		selectedIDs[id(n)] = true
	}
	outByID := map[string]*yaml.RNode{}
	var generated []*yaml.RNode
	for _, n := range output {
		if i := id(n); i != "" && selectedIDs[i] {
			if _, dup := outByID[i]; !dup {
				outByID[i] = n
				continue
			}
		}
		generated = append(generated, n)
	}
	var result []*yaml.RNode
	for _, n := range input {
		i := id(n)
		if !selectedIDs[i] {
			result = append(result, n)
		} else if o, ok := outByID[i]; ok {
			result = append(result, o)
		}
	}
	return append(result, generated...)
}

// runFunction runs one function of pn's pipeline over selected (all of input when the
// function selects nothing) and returns its output, with path annotations for generated
// resources and comments and field order carried over from the input.
func (r *renderer) runFunction(ctx context.Context, pn *pkgNode, fn kptfile.Function, validator bool, all, selected []*yaml.RNode) ([]*yaml.RNode, error) {
	name := fn.Image
	if name == "" {
		name = fn.Exec
	}
	fail := func(err error) *FunctionError {
		var fe *FunctionError
		if errors.As(err, &fe) {
			return fe
		}
		return &FunctionError{Package: pn.dir, Image: name, Err: err}
	}
	config, err := functionConfig(pn, fn, all)
	if err != nil {
		return nil, fail(err)
	}
	if fn.Tag != "" && fn.Image != "" {
		if r.opts.ResolveTag == nil {
			return nil, fail(fmt.Errorf("image %s has the tag constraint %q, which nothing resolves", fn.Image, fn.Tag))
		}
		image, err := r.opts.ResolveTag(fn.Image, fn.Tag)
		if err != nil {
			return nil, fail(err)
		}
		fn.Image, fn.Tag, name = image, "", image
	}
	if r.opts.Evaluator == nil {
		return nil, fail(fmt.Errorf("no evaluator for image %s", name))
	}
	ev, err := r.opts.Evaluator(fn)
	if err != nil {
		// As kpt, a function that cannot be run at all is a failed step of its own.
		r.results = append(r.results, Result{Package: pn.dir, Image: name, Validator: validator, Function: fn,
			Resources: len(selected), ExitCode: 1, ExecutionError: err.Error()})
		return nil, &FunctionError{Package: pn.dir, Image: name, ExitCode: 1, Err: err}
	}
	if ev == nil {
		return nil, fail(fmt.Errorf("no evaluator for image %s", name))
	}
	// As around kpt's function runs (a kio.Pipeline), the legacy and the internal path and
	// index annotations are reconciled when a function changed only one form.
	before, err := trackAnnotations(selected)
	if err != nil {
		return nil, err
	}
	output, err := r.evaluate(ctx, pn, fn, name, validator, ev, config, selected)
	if err != nil {
		return nil, err
	}
	if err := reconcileAnnotations(output, before); err != nil {
		return nil, err
	}
	return output, nil
}

// evaluate is the filter around one Evaluator call: KRM checks on input and output, the
// ResourceList, results bookkeeping, and kpt's post-processing of the output.
//
// Every call records one Result. As in kpt, a step that fails a check before or after the
// function itself (non-KRM input, a resource moved out of the package) counts as failed
// with exit code 1.
func (r *renderer) evaluate(ctx context.Context, pn *pkgNode, fn kptfile.Function, name string, validator bool, ev Evaluator, config *yaml.RNode, nodes []*yaml.RNode) ([]*yaml.RNode, error) {
	res := Result{Package: pn.dir, Image: name, Validator: validator, Function: fn, Resources: len(nodes)}
	if err := areKRM(nodes); err != nil {
		err = fmt.Errorf("%w: input resource list must contain only KRM resources: %w", ErrInvalidResource, err)
		res.ExitCode, res.ExecutionError = 1, executionError(err)
		r.results = append(r.results, res)
		return nil, &FunctionError{Package: pn.dir, Image: name, ExitCode: 1, Err: err}
	}
	// Functions work on copies, so that a failing function leaves the input untouched for
	// kpt.dev/save-on-render-failure, and so that comments can be restored from the input.
	// When neither is needed (no partial result is ever returned, and the evaluator edits
	// the nodes in place), they work on the nodes themselves. Ids (kyaml's, as set around
	// container functions) map the output back to the input, see RestoreComments.
	preserves := preservesComments(ev, fn)
	inPlace := preserves && !r.saveOnFailure
	items := make([]*yaml.RNode, len(nodes))
	for i, n := range nodes {
		id := strconv.Itoa(i + 1)
		if err := yamlfast.SetAnnotation(n, kioutil.IdAnnotation, id); err != nil {
			return nil, err
		}
		if err := yamlfast.SetAnnotation(n, kioutil.LegacyIdAnnotation, id); err != nil {
			return nil, err
		}
		if inPlace {
			items[i] = n
		} else {
			items[i] = n.Copy()
		}
	}
	defer func() {
		for _, n := range nodes {
			_ = yamlfast.ClearAnnotations(n, kioutil.IdAnnotation, kioutil.LegacyIdAnnotation)
		}
	}()
	rl := &framework.ResourceList{Items: items}
	if config != nil {
		rl.FunctionConfig = config.Copy()
	}
	var stderr bytes.Buffer
	err := ev.Evaluate(WithStderr(ctx, &stderr), fn, rl)
	if rce := (*RestoreCommentsError)(nil); errors.As(err, &rce) {
		return nil, rce.Err
	}

	res.Stderr, res.Results = stderr.String(), rl.Results
	var fe *FunctionError
	switch {
	case errors.As(err, &fe):
		res.ExitCode, res.Stderr = fe.ExitCode, fe.Stderr
		if res.ExitCode == 0 {
			res.ExitCode = 1
		}
		if len(fe.Results) > 0 && len(res.Results) == 0 {
			res.Results = fe.Results
		}
		fe.Package, fe.Image, fe.ExitCode = pn.dir, name, res.ExitCode
		if fe.Results == nil {
			fe.Results = res.Results
		}
	case err != nil:
		// The function did not run, or failed around its process (not allowed, not found,
		// timed out): the step says why.
		res.ExitCode, res.ExecutionError = 1, executionError(err)
		fe = &FunctionError{Package: pn.dir, Image: name, ExitCode: 1, Results: res.Results, Err: err}
	case hasErrorResult(rl.Results):
		res.ExitCode = 1
		fe = &FunctionError{Package: pn.dir, Image: name, ExitCode: 1, Results: res.Results}
	}
	if fe != nil {
		r.results = append(r.results, res)
		return nil, fe
	}
	if !preserves {
		if err := RestoreComments(nodes, rl.Items); err != nil {
			return nil, err
		}
	}
	output, err := r.postProcess(pn, rl.Items)
	if err != nil {
		res.ExitCode, res.ExecutionError = 1, executionError(err)
		r.results = append(r.results, res)
		return nil, &FunctionError{Package: pn.dir, Image: name, ExitCode: 1, Stderr: res.Stderr, Results: res.Results, Err: err}
	}
	r.results = append(r.results, res)
	return output, nil
}

// postProcess applies kpt's treatment of a function's output: ids cleared, generated
// resources given a path and a package, and the path and KRM invariants checked. (Comments
// and field order survive in-process evaluators, which edit the nodes; an evaluator that
// serializes has them restored, see RestoreComments.)
func (r *renderer) postProcess(pn *pkgNode, output []*yaml.RNode) ([]*yaml.RNode, error) {
	for _, n := range output {
		if err := yamlfast.ClearAnnotations(n, kioutil.IdAnnotation, kioutil.LegacyIdAnnotation); err != nil {
			return nil, err
		}
	}
	fail := func(err error) error { return fmt.Errorf("%w: %w", ErrInvalidResource, err) }
	// Generated resources without a path go to <namespace>/<kind>_<name>.yaml of the package
	// that ran the function.
	if err := defaultPathAnnotation(output); err != nil {
		return nil, fail(err)
	}
	for _, n := range output {
		if v, _ := yamlfast.Annotation(n, pkgPathAnnotation); v == "" {
			if err := yamlfast.SetAnnotation(n, pkgPathAnnotation, pn.dir); err != nil {
				return nil, err
			}
		}
	}
	if err := enforcePathInvariants(output); err != nil {
		return nil, fail(err)
	}
	if err := areKRM(output); err != nil {
		return nil, fail(fmt.Errorf("output resource list must contain only KRM resources: %w", err))
	}
	return output, nil
}

// CommentPreserver is implemented by evaluators that edit the ResourceList's nodes in place
// and so keep comments and field order by themselves for some functions. For those, Render
// skips RestoreComments, which is costly on large packages.
type CommentPreserver interface {
	PreservesComments(fn kptfile.Function) bool
}

// RestoreCommentsError is RestoreComments failing inside an Evaluator that restores comments
// itself (a CommentPreserver that runs a serializing function, such as a cache in front of
// one). Render fails with Err as when its own call fails: an error, not a failed function.
type RestoreCommentsError struct{ Err error }

// Error is Err's message.
func (e *RestoreCommentsError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *RestoreCommentsError) Unwrap() error { return e.Err }

func preservesComments(ev Evaluator, fn kptfile.Function) bool {
	cp, ok := ev.(CommentPreserver)
	return ok && cp.PreservesComments(fn)
}

// RestoreComments carries comments and field order over from a function's input items to
// its output items, matched by kyaml's id annotation, as kyaml's FunctionFilter does around
// container functions. Render calls it after every function whose evaluator is not a
// CommentPreserver for it.
func RestoreComments(input, output []*yaml.RNode) error {
	byID := make(map[string]*yaml.RNode, len(input))
	for _, n := range input {
		if id := idOf(n); id != "" {
			byID[id] = n
		}
	}
	for _, n := range output {
		in, ok := byID[idOf(n)]
		if !ok {
			continue
		}
		if err := comments.CopyComments(in, n); err != nil {
			return err
		}
		if err := order.SyncOrder(in, n); err != nil {
			return err
		}
	}
	return nil
}

func idOf(n *yaml.RNode) string {
	if id, _ := yamlfast.Annotation(n, kioutil.IdAnnotation); id != "" {
		return id
	}
	id, _ := yamlfast.Annotation(n, kioutil.LegacyIdAnnotation)
	return id
}

func hasErrorResult(results framework.Results) bool {
	return slices.ContainsFunc(results, func(r *framework.Result) bool { return r != nil && r.Severity == framework.Error })
}

// enforcePathInvariants refuses output that puts a resource outside its package or two
// resources at the same path and index (kpt's rule). An absolute path is taken as relative
// to the package, as kpt does when it joins it to the package directory.
func enforcePathInvariants(nodes []*yaml.RNode) error {
	seen := make(map[[3]string]bool, len(nodes))
	for _, n := range nodes {
		p, index := yamlfast.FileAnnotations(n)
		clean := path.Clean(p)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("function must not modify resources outside of package: resource has path %s", p)
		}
		pkg, _ := yamlfast.Annotation(n, pkgPathAnnotation)
		key := [3]string{pkg, clean, index}
		if seen[key] {
			return fmt.Errorf("resource at path %q and index %q already exists", clean, index)
		}
		seen[key] = true
	}
	return nil
}

// functionConfig returns fn's functionConfig: a ConfigMap named function-input holding
// fn.configMap, or the resource at fn.configPath as it is now in the package being rendered
// (so an earlier function may have changed it), or nil.
func functionConfig(pn *pkgNode, fn kptfile.Function, all []*yaml.RNode) (*yaml.RNode, error) {
	switch {
	case fn.ConfigPath != "":
		want := path.Clean(fn.ConfigPath)
		for _, n := range all {
			p, _ := yamlfast.FileAnnotations(n)
			if pkg, _ := yamlfast.Annotation(n, pkgPathAnnotation); pkg == pn.dir && path.Clean(p) == want {
				return withoutInternalAnnotations(n.Copy())
			}
		}
		return nil, fmt.Errorf("function config %q is not among the package's resources (did an earlier function delete it?)", fn.ConfigPath)
	case len(fn.ConfigMap) > 0:
		return configMapConfig(fn.ConfigMap)
	}
	return nil, nil
}

// configMapConfig builds kpt's function-input ConfigMap; every value is a string.
func configMapConfig(data map[string]string) (*yaml.RNode, error) {
	cm := yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + functionInputName + "\ndata: {}\n")
	d := yaml.NewMapRNode(nil)
	for _, k := range slices.Sorted(maps.Keys(data)) {
		if err := d.PipeE(yaml.SetField(k, yaml.NewStringRNode(data[k]))); err != nil {
			return nil, err
		}
	}
	if err := cm.PipeE(yaml.SetField("data", d)); err != nil {
		return nil, err
	}
	return cm, nil
}

// internalAnnotations are the bookkeeping annotations render adds to resources; they are
// removed from a function config before the function sees it.
var internalAnnotations = []string{
	kioutil.PathAnnotation, kioutil.LegacyPathAnnotation,
	kioutil.IndexAnnotation, kioutil.LegacyIndexAnnotation,
	kioutil.SeqIndentAnnotation, kioutil.IdAnnotation, kioutil.LegacyIdAnnotation,
	kioutil.InternalAnnotationsMigrationResourceIDAnnotation,
	pkgPathAnnotation, selectionIDAnnotation,
}

func withoutInternalAnnotations(n *yaml.RNode) (*yaml.RNode, error) {
	if err := yamlfast.ClearAnnotations(n, internalAnnotations...); err != nil {
		return nil, err
	}
	if err := yamlfast.ClearEmptyAnnotations(n); err != nil {
		return nil, err
	}
	return n, nil
}

// executionError is the message kpt records for a step that failed around the function
// rather than in it: without the sentinel kpo wraps it in.
func executionError(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalidResource.Error()+": ")
}
