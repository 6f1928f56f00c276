package render

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/kptfile"
)

// DefaultImagePrefix is the registry path kpt puts in front of a short function image name
// (set-labels:latest → ghcr.io/kptdev/krm-functions-catalog/set-labels:latest).
const DefaultImagePrefix = "ghcr.io/kptdev/krm-functions-catalog/"

// The Rendered condition kpt writes into the root Kptfile's status (kptdev/kpt#4418).
const (
	// RenderedConditionType is the condition's type.
	RenderedConditionType = "Rendered"
	// RenderSuccessReason is its reason after a render that succeeded (status True).
	RenderSuccessReason = "RenderSuccess"
	// RenderFailedReason is its reason after a render that failed (status False).
	RenderFailedReason = "RenderFailed"
)

// QualifyImage is the image kpt runs for image: a short name gets prefix (DefaultImagePrefix
// when empty) and a reference without tag or digest gets :latest.
func QualifyImage(image, prefix string) string {
	image = strings.TrimSpace(image)
	if image == "" {
		return ""
	}
	if prefix == "" {
		prefix = DefaultImagePrefix
	}
	if !strings.Contains(image, "/") {
		image = strings.TrimSuffix(prefix, "/") + "/" + image
	}
	if last := image[strings.LastIndex(image, "/")+1:]; !strings.ContainsAny(last, ":@") {
		image += ":latest"
	}
	return image
}

// StepResult is one function run as kpt records it in the Kptfile's renderStatus and in the
// results file of --results-dir: image fully qualified (short names completed with prefix) or
// exec command, stderr, exit code, results, and the error results or execution error of a
// step that failed.
func StepResult(r Result, prefix string) kptfile.PipelineStepResult {
	step := kptfile.PipelineStepResult{
		Stderr:         r.Stderr,
		ExitCode:       r.ExitCode,
		ExecutionError: r.ExecutionError,
	}
	switch {
	case r.Function.Exec != "":
		step.ExecPath = r.Function.Exec
	case r.Function.Image != "":
		step.Image = QualifyImage(r.Function.Image, prefix)
	default:
		step.Image = r.Image
	}
	for _, item := range r.Results {
		if item == nil {
			continue
		}
		ri := resultItem(item)
		step.Results = append(step.Results, ri)
		if r.ExitCode != 0 && item.Severity == framework.Error {
			step.ErrorResults = append(step.ErrorResults, ri)
		}
	}
	return step
}

func resultItem(r *framework.Result) kptfile.ResultItem {
	ri := kptfile.ResultItem{Message: r.Message, Severity: string(r.Severity)}
	if id := r.ResourceRef; id != nil && (id.Kind != "" || id.Name != "") {
		ri.ResourceRef = &kptfile.ResourceRef{APIVersion: id.APIVersion, Kind: id.Kind, Name: id.Name, Namespace: id.Namespace}
	}
	if f := r.Field; f != nil && f.Path != "" {
		ri.Field = &kptfile.FieldRef{Path: f.Path}
		if f.CurrentValue != nil {
			ri.Field.CurrentValue = fmt.Sprint(f.CurrentValue)
		}
		if f.ProposedValue != nil {
			ri.Field.ProposedValue = fmt.Sprint(f.ProposedValue)
		}
	}
	if f := r.File; f != nil && f.Path != "" {
		ri.File = &kptfile.FileRef{Path: f.Path, Index: f.Index}
	}
	return ri
}

// Status is the status kpt writes into the root Kptfile after a render: the Rendered
// condition (True/RenderSuccess, or False/RenderFailed with kpt's error text) and the
// renderStatus of every step, mutators and validators apart, with a summary of the failure.
// bfs says the package was rendered breadth-first (kpt words a subpackage's failure
// differently then).
func Status(results []Result, renderErr error, prefix string, bfs bool) *kptfile.Status {
	rs := &kptfile.RenderStatus{}
	var failed *kptfile.PipelineStepResult
	for _, r := range results {
		step := StepResult(r, prefix)
		if r.Validator {
			rs.ValidationSteps = append(rs.ValidationSteps, step)
		} else {
			rs.MutationSteps = append(rs.MutationSteps, step)
		}
		if r.ExitCode != 0 && failed == nil {
			failed = &step
		}
	}
	cond := kptfile.Condition{Type: RenderedConditionType, Status: kptfile.ConditionTrue, Reason: RenderSuccessReason}
	if renderErr != nil {
		cond = kptfile.Condition{Type: RenderedConditionType, Status: kptfile.ConditionFalse, Reason: RenderFailedReason,
			Message: renderFailureMessage(renderErr, failed, bfs)}
		if failed != nil {
			name := failed.Image
			if name == "" {
				name = failed.ExecPath
			}
			if failed.ExecutionError != "" {
				rs.ErrorSummary = name + ": " + failed.ExecutionError
			} else {
				rs.ErrorSummary = fmt.Sprintf("%s: exit code %d", name, failed.ExitCode)
			}
		}
	}
	status := &kptfile.Status{Conditions: []kptfile.Condition{cond}}
	if len(rs.MutationSteps)+len(rs.ValidationSteps) > 0 || rs.ErrorSummary != "" {
		status.RenderStatus = rs
	}
	return status
}

// renderFailureMessage is the Rendered condition's message kpt writes for err: kpt's own error
// chain, "pkg.render: pkg <dir>:" then "pipeline.run: …" for a failed step ("already handled
// error" when the function itself failed, its report being in renderStatus).
func renderFailureMessage(err error, failed *kptfile.PipelineStepResult, bfs bool) string {
	var (
		fe  *FunctionError
		cpe *ConfigPathError
		ske *subpackageKptfileError
	)
	switch {
	case errors.As(err, &cpe):
		return fmt.Sprintf("pkg.render: pkg .: Kptfile is invalid:\nField: %s\nValue: %q\nReason: %s\n", cpe.Field, cpe.Value, cpe.Reason)
	case errors.As(err, &ske) && ske.yamlErr != "":
		return fmt.Sprintf("pkg.render: pkg .:\n\tpkg.Subpackages: pkg %s: error reading Kptfile at %q: %s", pkgRef(ske.dir), pkgRef(ske.dir), ske.yamlErr)
	}
	if failed == nil || !errors.As(err, &fe) {
		var pe *pkgError
		msg := err.Error()
		dir := "."
		if errors.As(err, &pe) {
			dir, msg = pkgRef(pe.dir), pe.err.Error()
		}
		msg = strings.TrimPrefix(msg, ErrInvalidResource.Error()+": ")
		return fmt.Sprintf("pkg.render: pkg %s: %s", dir, msg)
	}
	why := "already handled error"
	if failed.ExecutionError != "" {
		why = failed.ExecutionError
	}
	if bfs && fe.Package != "." && fe.Package != "" {
		return fmt.Sprintf("pkg.render: pkg .:\n\tpipeline.run: pkg %s: %s", pkgRef(fe.Package), why)
	}
	return fmt.Sprintf("pkg.render: pkg %s:\n\tpipeline.run: %s", pkgRef(fe.Package), why)
}

func pkgRef(dir string) string {
	if dir == "" || dir == "." {
		return "."
	}
	return "./" + dir
}

// pkgError is an error of package dir that is not a function's (see inPackage).
type pkgError struct {
	dir string
	err error
}

func (e *pkgError) Error() string { return fmt.Sprintf("package %q: %v", e.dir, e.err) }
func (e *pkgError) Unwrap() error { return e.err }

// WritesStatus reports whether kpt writes the Kptfile status after a render that ended with
// err: always, except when it could not read the package (an invalid root Kptfile, a function
// config file that is missing or not one KRM resource).
func WritesStatus(err error) bool {
	var ue *unreadablePackageError
	return !errors.As(err, &ue) && !errors.Is(err, ErrNotAPackage)
}

// WithStatus returns files (a rendered package) with the render's status in the root Kptfile,
// as kpt leaves a package it rendered in place; files itself is not changed. When kpt would
// write no status, or the Kptfile cannot take one, files is returned as it is.
func WithStatus(files map[string][]byte, results []Result, renderErr error, prefix string) map[string][]byte {
	kf, ok := files[kptfile.FileName]
	if !ok || !WritesStatus(renderErr) {
		return files
	}
	withStatus, err := SetRenderStatus(kf, results, renderErr, prefix)
	if err != nil {
		return files
	}
	out := maps.Clone(files)
	out[kptfile.FileName] = withStatus
	return out
}

// SetRenderStatus returns the root Kptfile kf with the status kpt writes after a render (see
// Status), encoded as kpt writes a Kptfile (from its Go type: comments are lost, as
// with kpt). Every earlier Rendered condition and renderStatus are replaced; other
// conditions are kept.
func SetRenderStatus(kf []byte, results []Result, renderErr error, prefix string) ([]byte, error) {
	k, err := kptfile.Decode(kf)
	if err != nil {
		return nil, err
	}
	status := Status(results, renderErr, prefix, isTrue(k.Metadata.Annotations[BFSRenderAnnotation]))
	if k.Status != nil {
		for _, c := range k.Status.Conditions {
			if c.Type != RenderedConditionType {
				status.Conditions = append(status.Conditions, c)
			}
		}
	}
	k.Status = status
	return kptfile.Encode(k)
}
