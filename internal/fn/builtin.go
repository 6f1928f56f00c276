package fn

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// builtinFailureStderr is what the catalog's Go functions print when they fail (the KRM
// functions SDK's message), so a failed built-in reports the same stderr as its image.
const builtinFailureStderr = "failed to evaluate function: error: function failure"

// BuiltinEvaluator runs functions with kpo's in-process implementations of catalog functions
// (package internal/fn/builtin), chosen by image name whatever the registry and tag.
type BuiltinEvaluator struct{}

// Evaluate runs the built-in for fn.Image over rl. A failure (an error, or results of
// severity error) is a *render.FunctionError with exit code 1, like the catalog image's.
func (BuiltinEvaluator) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if fn.Image == "" {
		return fmt.Errorf("%w: exec function %q", builtin.ErrNotBuiltin, fn.Exec)
	}
	p, ok := builtin.Lookup(fn.Image)
	if !ok {
		return fmt.Errorf("%w: image %s (%s)", builtin.ErrNotBuiltin, fn.Image, builtin.ImageName(fn.Image))
	}
	if v, ok := p.(builtin.VersionSetter); ok {
		v.SetVersion(builtin.ImageTag(fn.Image))
	}
	var stderr bytes.Buffer
	if s, ok := p.(builtin.StderrSetter); ok {
		s.SetStderr(&stderr)
	}
	err := p.Process(rl)
	if err == nil && !hasErrorResult(rl.Results) {
		// Success with diagnostics: report them like a container's stderr (the catalog's
		// functions end them without a newline, as kpt records them).
		_, _ = render.StderrWriter(ctx).Write(bytes.TrimSuffix(stderr.Bytes(), []byte("\n")))
		return nil
	}
	if stderr.Len() > 0 && !bytes.HasSuffix(stderr.Bytes(), []byte("\n")) {
		stderr.WriteByte('\n')
	}
	stderr.WriteString(builtinFailureStderr)
	return &render.FunctionError{Image: fn.Image, ExitCode: 1, Stderr: stderr.String(), Results: rl.Results, Err: err}
}

// PreservesComments reports whether the built-in for fn keeps comments and field order by
// editing nodes in place: all of them do except starlark, whose script works on plain
// values, so Render restores comments after it as kpt does after any container.
func (BuiltinEvaluator) PreservesComments(fn kptfile.Function) bool {
	return fn.Image != "" && builtin.ImageName(fn.Image) != "starlark"
}

// Builtin is a render.Options.Evaluator that runs every function with its built-in, and
// refuses functions that have none.
func Builtin(fn kptfile.Function) (render.Evaluator, error) {
	if fn.Image == "" {
		return nil, fmt.Errorf("%w: exec function %q", builtin.ErrNotBuiltin, fn.Exec)
	}
	if _, ok := builtin.Lookup(fn.Image); !ok {
		return nil, fmt.Errorf("no evaluator for image %s: %w", fn.Image, builtin.ErrNotBuiltin)
	}
	return BuiltinEvaluator{}, nil
}

// hasErrorResult reports whether a function reported a result of severity error: a failure
// even when it exited 0.
func hasErrorResult(results framework.Results) bool {
	return slices.ContainsFunc(results, func(r *framework.Result) bool { return r != nil && r.Severity == framework.Error })
}
