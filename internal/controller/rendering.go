package controller

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/render"
)

// Renderer renders a package's files through its Kptfile pipelines.
type Renderer func(ctx context.Context, files map[string][]byte) (map[string][]byte, []render.Result, error)

// renderOutcome is what one render of draft content gave.
type renderOutcome struct {
	files   map[string][]byte
	results []kpov1.RenderResult
	// err is the render failure, with the Rendered reason it maps to.
	err    error
	reason string
}

// renderFiles renders files with r (no renderer: the files as they are).
func renderFiles(ctx context.Context, r Renderer, files map[string][]byte) renderOutcome {
	if r == nil {
		return renderOutcome{files: files, reason: kpov1.RenderSucceededReason}
	}
	out, results, err := r(ctx, files)
	o := renderOutcome{files: out, results: renderResults(results), err: err, reason: kpov1.RenderSucceededReason}
	if err != nil {
		o.reason = renderFailureReason(err)
		o.err = fmt.Errorf("render failed, content not committed: %w", err)
	}
	return o
}

// prepareContent is the one content pipeline of every path that commits content (draft
// creation, edits, upgrades): validate, render, and check that the result fits its ConfigMap,
// all before anything is committed. A failed render goes on with the files as given only when
// pushOnFailure. The outcome carries what the render said (reason empty when it did not run);
// what names the content in error messages.
func prepareContent(ctx context.Context, r Renderer, files map[string][]byte, pushOnFailure bool, what string) (renderOutcome, error) {
	if err := content.Validate(files); err != nil {
		return renderOutcome{}, terminal(kpov1.InvalidContentReason, fmt.Errorf("%s: %w", what, err))
	}
	out := renderFiles(ctx, r, files)
	if out.err != nil {
		if !pushOnFailure {
			return out, terminal(out.reason, fmt.Errorf("%s: %w", what, out.err))
		}
		out.files = files
	}
	if _, _, err := content.ToConfigMap(out.files); err != nil {
		return out, terminal(contentReason(err), fmt.Errorf("%s: the rendered package: %w", what, err))
	}
	return out, nil
}

// maxRenderResults bounds what status.renderResults holds.
const maxRenderResults = 50

// renderResults flattens the functions' results for status.renderResults: one entry per
// structured result, or per failed function without any.
func renderResults(results []render.Result) []kpov1.RenderResult {
	var out []kpov1.RenderResult
	for _, r := range results {
		if len(r.Results) == 0 && r.ExitCode != 0 {
			why := lastLine(r.Stderr)
			if r.ExecutionError != "" {
				why = r.ExecutionError // it failed around the function: not run, or its output unreadable
			}
			out = append(out, kpov1.RenderResult{Image: r.Image, Severity: "error",
				Message: fmt.Sprintf("exit code %d: %s", r.ExitCode, why)})
		}
		for _, item := range r.Results {
			if item == nil {
				continue
			}
			rr := kpov1.RenderResult{Image: r.Image, Severity: string(item.Severity), Message: item.Message}
			if ref := item.ResourceRef; ref != nil {
				rr.Resource = strings.Trim(strings.Join([]string{ref.APIVersion, ref.Kind, ref.Namespace, ref.Name}, "/"), "/")
			}
			if item.File != nil {
				rr.File = item.File.Path
			}
			out = append(out, rr)
		}
	}
	if len(out) > maxRenderResults {
		out = out[:maxRenderResults]
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// setRendered records a render outcome in the Rendered condition and status.renderResults.
func setRendered(pr *kpov1.PackageRevision, o renderOutcome) {
	cond := metav1.Condition{Type: kpov1.RenderedCondition, Status: metav1.ConditionTrue, Reason: o.reason,
		Message: fmt.Sprintf("rendered %d files", len(o.files)), ObservedGeneration: pr.Generation}
	if o.err != nil {
		cond.Status, cond.Message = metav1.ConditionFalse, o.err.Error()
	}
	meta.SetStatusCondition(&pr.Status.Conditions, cond)
	pr.Status.RenderResults = o.results
}
