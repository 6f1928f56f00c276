// Package fn evaluates the KRM functions of kpt pipelines for package render: every
// evaluator implements render.Evaluator. This package holds the in-process evaluator of kpo's
// built-ins (BuiltinEvaluator, over package builtin), the local-binary one (ExecEvaluator, for
// development and tests), the result cache (CachingEvaluator), and the Selector that chooses
// per function: in process when kpo builds it in (in a bounded child process, package
// sandbox, when the built-in runs the package's own code: starlark), as a local binary when
// one is mapped, else as a Kubernetes Job (package job).
//
// Dependencies point one way: fn and its subpackages import render (for the interface and
// the types it shares with its callers), render imports none of them.
package fn

import (
	"context"
	"fmt"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/fn/sandbox"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// Selector picks an evaluator per function. Runs of sandboxed built-ins, exec binaries and
// Jobs are cached by (function, config digest, input digest); the other built-ins are cheaper
// than a cache lookup.
type Selector struct {
	// Sandbox runs the built-ins that execute user code (starlark) in a child process under
	// a memory and a time budget; nil runs them in process, bounded by their step and time
	// limits only.
	Sandbox *sandbox.Evaluator
	// Exec maps image names to local binaries; nil for none.
	Exec *ExecEvaluator
	// Job runs everything else that is on its allowlist; nil refuses everything else.
	Job *job.Evaluator
	// Pool, when set, runs what Job would run in its warm pods instead (Job's allowlist and
	// settings); nil starts a Job per run.
	Pool *job.Pool

	cached *CachingEvaluator
}

// NewSelector returns a Selector whose exec and Job runs go through a bounded cache.
func NewSelector(exec *ExecEvaluator, jobs *job.Evaluator, cacheSize int) *Selector {
	s := &Selector{Exec: exec, Job: jobs}
	s.cached = &CachingEvaluator{Next: render.EvaluatorFunc(s.external), Size: cacheSize}
	return s
}

// Evaluator implements render.Options.Evaluator.
func (s *Selector) Evaluator(fn kptfile.Function) (render.Evaluator, error) {
	if fn.Image != "" {
		if _, ok := builtin.Lookup(fn.Image); ok && !s.sandboxes(fn) {
			return BuiltinEvaluator{}, nil
		}
	}
	return s.cached, nil
}

// sandboxes reports whether fn runs in the Sandbox.
func (s *Selector) sandboxes(fn kptfile.Function) bool {
	return s.Sandbox != nil && s.Sandbox.Runs(fn.Image)
}

// external runs a function that does not run in process: a sandboxed built-in, a mapped
// local binary, or a Job.
func (s *Selector) external(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	if s.sandboxes(fn) {
		return s.Sandbox.Evaluate(ctx, fn, rl)
	}
	if s.Exec != nil {
		if _, ok := s.Exec.Binaries[builtin.ImageName(fn.Image)]; ok || (fn.Exec != "" && s.Exec.Binaries[fn.Exec] != "") {
			return s.Exec.Evaluate(ctx, fn, rl)
		}
	}
	if fn.Exec != "" {
		return fmt.Errorf("%w: exec function %q: kpo runs only images and the binaries its manager maps (--exec-functions)", ErrExecNotAllowed, fn.Exec)
	}
	if s.Job == nil {
		return fmt.Errorf("%w: %q is not built in and the manager runs no function Jobs: start it with --function-image-allowlist", job.ErrImageNotAllowed, fn.Image)
	}
	if s.Pool != nil {
		return s.Pool.Evaluate(ctx, fn, rl)
	}
	return s.Job.Evaluate(ctx, fn, rl)
}

// Render renders files with this Selector's evaluators, semver tags resolved against the
// built-ins' versions, and writes the outcome into the root Kptfile's status as kpt does (and
// as kpoctl fn render does), so a package rendered by the manager and by kpt are the same files.
func (s *Selector) Render(ctx context.Context, files map[string][]byte) (map[string][]byte, []render.Result, error) {
	out, results, err := render.Render(ctx, files, render.Options{Evaluator: s.Evaluator, ResolveTag: builtin.ResolveTag})
	if out != nil {
		out = render.WithStatus(out, results, err, "")
	}
	return out, results, err
}
