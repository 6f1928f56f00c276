package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// renderTimeout bounds one preview: built-in functions on a package that fits a ConfigMap
// take milliseconds.
const renderTimeout = 10 * time.Second

// renderRequest is the package to preview: its files by slash-separated path.
type renderRequest struct {
	Files map[string]string `json:"files"`
}

// renderResponse is the preview: the rendered files when the pipeline passed, and what each
// function did.
type renderResponse struct {
	Files   map[string]string `json:"files,omitempty"`
	Results []functionResult  `json:"results"`
	Error   string            `json:"error,omitempty"`
}

// functionResult is one function of the preview.
type functionResult struct {
	Package   string       `json:"package"`
	Image     string       `json:"image"`
	Validator bool         `json:"validator"`
	ExitCode  int          `json:"exitCode"`
	Stderr    string       `json:"stderr,omitempty"`
	Error     string       `json:"error,omitempty"`
	Results   []resultItem `json:"results,omitempty"`
	Skipped   bool         `json:"notPreviewed,omitempty"`
}

// resultItem is one structured result of a function.
type resultItem struct {
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Resource string `json:"resource,omitempty"`
	File     string `json:"file,omitempty"`
}

// previewEvaluator runs built-in functions in process and passes every other function over,
// unchanged, noting it: a preview never executes a binary or starts a container.
type previewEvaluator struct {
	mu      sync.Mutex
	skipped map[string]bool
}

func (p *previewEvaluator) evaluator(f kptfile.Function) (render.Evaluator, error) {
	if f.Image != "" {
		if _, ok := builtin.Lookup(f.Image); ok {
			return fn.BuiltinEvaluator{}, nil
		}
	}
	p.mu.Lock()
	p.skipped[functionName(f)] = true
	p.mu.Unlock()
	return render.EvaluatorFunc(func(context.Context, kptfile.Function, *framework.ResourceList) error { return nil }), nil
}

func functionName(f kptfile.Function) string {
	if f.Image != "" {
		return f.Image
	}
	return f.Exec
}

// preview renders files with kpo's render engine, as the manager does on commit, except that
// only built-in functions run. It writes nothing anywhere.
func preview(ctx context.Context, files map[string][]byte) renderResponse {
	ctx, cancel := context.WithTimeout(ctx, renderTimeout)
	defer cancel()
	pe := &previewEvaluator{skipped: map[string]bool{}}
	out, results, err := render.Render(ctx, files, render.Options{Evaluator: pe.evaluator, ResolveTag: builtin.ResolveTag})
	resp := renderResponse{Results: []functionResult{}}
	for _, r := range results {
		fr := functionResult{Package: r.Package, Image: r.Image, Validator: r.Validator, ExitCode: r.ExitCode,
			Stderr: r.Stderr, Error: r.ExecutionError, Skipped: pe.skipped[functionName(r.Function)]}
		for _, item := range r.Results {
			fr.Results = append(fr.Results, toResultItem(item))
		}
		resp.Results = append(resp.Results, fr)
	}
	if err != nil {
		resp.Error = err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			resp.Error = "the preview took longer than " + renderTimeout.String() + " and was stopped"
		}
	}
	if out != nil {
		resp.Files = make(map[string]string, len(out))
		for p, b := range out {
			resp.Files[p] = string(b)
		}
	}
	return resp
}

func toResultItem(r *framework.Result) resultItem {
	item := resultItem{Severity: string(r.Severity), Message: r.Message}
	if r.Severity == "" {
		item.Severity = "info"
	}
	if r.ResourceRef != nil {
		item.Resource = r.ResourceRef.Kind + "/" + r.ResourceRef.Name
	}
	if r.File != nil {
		item.File = r.File.Path
	}
	return item
}

// render is POST /ui/render: the preview of the posted files, bounded in size and time.
func (s *Server) render(w http.ResponseWriter, r *http.Request) {
	var req renderRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "the preview needs {\"files\": {path: content}} under 4 MiB: "+err.Error())
		return
	}
	files := make(map[string][]byte, len(req.Files))
	for p, c := range req.Files {
		files[p] = []byte(c)
	}
	writeJSON(w, http.StatusOK, preview(r.Context(), files))
}
