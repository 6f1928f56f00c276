// Package kptfile holds kpo's own model of kpt's Kptfile (apiVersion kpt.dev/v1, kind Kptfile):
// the types, a strict decoder, an encoder that writes kpt's field order, and what
// `kpt pkg init` writes.
//
// kpt's Go modules are not a dependency of kpo, so the types are written here from kpt's
// published schema. Field names and their order follow kpt's, so a Kptfile written by kpt
// decodes, and a Kptfile written here reads like one written by kpt. Decoding is strict: a
// field kpt's v1 schema does not define is refused rather than silently dropped, because
// dropping it would lose it on the next write. YAML is read and written with
// go.yaml.in/yaml/v3, the parser kyaml (and so kpt) uses.
package kptfile

// APIVersion is the only Kptfile apiVersion kpo reads and writes.
const APIVersion = "kpt.dev/v1"

// Kind is the kind of every Kptfile.
const Kind = "Kptfile"

// FileName is the name of the file that marks a directory as a kpt package.
const FileName = "Kptfile"

// LocalConfigAnnotation marks a resource as configuration for tools (kpt, functions)
// rather than something to apply to a cluster. kpt pkg init sets it on the Kptfile.
const LocalConfigAnnotation = "config.kubernetes.io/local-config"

// Kptfile is the content of a package's Kptfile. Fields are in kpt's order, which is the
// order Encode writes them in.
type Kptfile struct {
	APIVersion string     `json:"apiVersion,omitempty" yaml:"apiVersion,omitempty"`
	Kind       string     `json:"kind,omitempty" yaml:"kind,omitempty"`
	Metadata   ObjectMeta `json:"metadata,omitempty" yaml:"metadata,omitempty"`

	// Upstream is where the package was cloned from and how it is updated.
	Upstream *Upstream `json:"upstream,omitempty" yaml:"upstream,omitempty"`
	// UpstreamLock pins the exact upstream commit last fetched.
	UpstreamLock *UpstreamLock `json:"upstreamLock,omitempty" yaml:"upstreamLock,omitempty"`
	// Info is descriptive metadata; kpt passes it through.
	Info *PackageInfo `json:"info,omitempty" yaml:"info,omitempty"`
	// Pipeline is the list of functions `kpt fn render` runs.
	Pipeline *Pipeline `json:"pipeline,omitempty" yaml:"pipeline,omitempty"`
	// Inventory configures the inventory object `kpt live apply` uses.
	Inventory *Inventory `json:"inventory,omitempty" yaml:"inventory,omitempty"`
	// Status is written by tools (render results, readiness conditions).
	Status *Status `json:"status,omitempty" yaml:"status,omitempty"`
}

// ObjectMeta is the subset of Kubernetes object metadata a Kptfile may carry.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty" yaml:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
}

// OriginType is the kind of place a package comes from.
type OriginType string

// GitOrigin is the only origin type kpt's v1 Kptfile defines.
const GitOrigin OriginType = "git"

// UpdateStrategy is how `kpt pkg update` (and kpo's upgrade) merges upstream changes.
type UpdateStrategy string

// The update strategies kpt accepts in upstream.updateStrategy.
const (
	// ResourceMerge three-way merges each resource (kpt's default).
	ResourceMerge UpdateStrategy = "resource-merge"
	// FastForward refuses the update when the local package was changed.
	FastForward UpdateStrategy = "fast-forward"
	// ForceDeleteReplace replaces the local package with upstream, dropping local changes.
	ForceDeleteReplace UpdateStrategy = "force-delete-replace"
	// CopyMerge copies upstream files over local ones, keeping local-only files.
	CopyMerge UpdateStrategy = "copy-merge"
)

// UpdateStrategies lists every valid UpdateStrategy, in kpt's order. It is the one list of
// them: the CRD enum of PackageDraft's spec.source.upgrade.strategy (api/v1alpha1) must equal it,
// which a test there checks.
var UpdateStrategies = []UpdateStrategy{ResourceMerge, FastForward, ForceDeleteReplace, CopyMerge}

// Upstream says where a package was cloned from.
type Upstream struct {
	Type           OriginType     `json:"type,omitempty" yaml:"type,omitempty"`
	Git            *Git           `json:"git,omitempty" yaml:"git,omitempty"`
	UpdateStrategy UpdateStrategy `json:"updateStrategy,omitempty" yaml:"updateStrategy,omitempty"`
}

// Git locates a package in a Git repository.
type Git struct {
	// Repo is the repository URL.
	Repo string `json:"repo,omitempty" yaml:"repo,omitempty"`
	// Directory is the package's directory inside the repository, e.g. "/catalog/nginx".
	Directory string `json:"directory,omitempty" yaml:"directory,omitempty"`
	// Ref is a branch, tag or commit.
	Ref string `json:"ref,omitempty" yaml:"ref,omitempty"`
}

// UpstreamLock is the resolved form of Upstream as of the last fetch.
type UpstreamLock struct {
	Type OriginType `json:"type,omitempty" yaml:"type,omitempty"`
	Git  *GitLock   `json:"git,omitempty" yaml:"git,omitempty"`
}

// GitLock is Git plus the commit the ref resolved to.
type GitLock struct {
	Repo      string `json:"repo,omitempty" yaml:"repo,omitempty"`
	Directory string `json:"directory,omitempty" yaml:"directory,omitempty"`
	Ref       string `json:"ref,omitempty" yaml:"ref,omitempty"`
	Commit    string `json:"commit,omitempty" yaml:"commit,omitempty"`
}

// PackageInfo is descriptive metadata about the package.
type PackageInfo struct {
	Site        string   `json:"site,omitempty" yaml:"site,omitempty"`
	Emails      []string `json:"emails,omitempty" yaml:"emails,omitempty"`
	License     string   `json:"license,omitempty" yaml:"license,omitempty"`
	LicenseFile string   `json:"licenseFile,omitempty" yaml:"licenseFile,omitempty"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
	Keywords    []string `json:"keywords,omitempty" yaml:"keywords,omitempty"`
	Man         string   `json:"man,omitempty" yaml:"man,omitempty"`
	// ReadinessGates are conditions that must be True in status before the package
	// revision counts as ready (Porch's readiness gates).
	ReadinessGates []ReadinessGate `json:"readinessGates,omitempty" yaml:"readinessGates,omitempty"`
}

// ReadinessGate names a condition type that must be True.
type ReadinessGate struct {
	ConditionType string `json:"conditionType" yaml:"conditionType"`
}

// Pipeline is the function pipeline `kpt fn render` runs: mutators, then validators.
type Pipeline struct {
	Mutators   []Function `json:"mutators,omitempty" yaml:"mutators,omitempty"`
	Validators []Function `json:"validators,omitempty" yaml:"validators,omitempty"`
}

// Function is one step of a Pipeline.
type Function struct {
	// Image is the function's container image; exactly one of Image and Exec is set.
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// Exec is a local executable; exactly one of Image and Exec is set.
	Exec string `json:"exec,omitempty" yaml:"exec,omitempty"`
	// ConfigPath is a package-relative path of the function config resource.
	ConfigPath string `json:"configPath,omitempty" yaml:"configPath,omitempty"`
	// ConfigMap is an inline function config (a ConfigMap's data); excludes ConfigPath.
	ConfigMap map[string]string `json:"configMap,omitempty" yaml:"configMap,omitempty"`
	// Tag is a semver constraint ("~0.2", "0.4.1 - 0.4.3") that picks the image's tag: the
	// highest version that satisfies it. Image then names no tag.
	Tag string `json:"tag,omitempty" yaml:"tag,omitempty"`
	// Name identifies the function when kpt merges pipelines on update.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Selectors limit the function to matching resources (any selector matches).
	Selectors []Selector `json:"selectors,omitempty" yaml:"selectors,omitempty"`
	// Exclusions remove matching resources from the selection.
	Exclusions []Selector `json:"exclude,omitempty" yaml:"exclude,omitempty"`
}

// Selector matches resources; every set field must match.
type Selector struct {
	APIVersion  string            `json:"apiVersion,omitempty" yaml:"apiVersion,omitempty"`
	Kind        string            `json:"kind,omitempty" yaml:"kind,omitempty"`
	Name        string            `json:"name,omitempty" yaml:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
}

// Inventory holds the parameters of the inventory object `kpt live` uses.
type Inventory struct {
	Namespace   string            `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Name        string            `json:"name,omitempty" yaml:"name,omitempty"`
	InventoryID string            `json:"inventoryID,omitempty" yaml:"inventoryID,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
}

// Status is written by tools: readiness conditions and, in recent kpt, the last render's
// outcome.
type Status struct {
	Conditions   []Condition   `json:"conditions,omitempty" yaml:"conditions,omitempty"`
	RenderStatus *RenderStatus `json:"renderStatus,omitempty" yaml:"renderStatus,omitempty"`
}

// ConditionStatus is the status of a Condition.
type ConditionStatus string

// The values a ConditionStatus may take.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition is one status condition, e.g. a readiness gate's.
type Condition struct {
	Type    string          `json:"type" yaml:"type"`
	Status  ConditionStatus `json:"status" yaml:"status"`
	Reason  string          `json:"reason,omitempty" yaml:"reason,omitempty"`
	Message string          `json:"message,omitempty" yaml:"message,omitempty"`
}

// RenderStatus records the outcome of the last `kpt fn render`, as recent kpt writes it.
type RenderStatus struct {
	MutationSteps   []PipelineStepResult `json:"mutationSteps,omitempty" yaml:"mutationSteps,omitempty"`
	ValidationSteps []PipelineStepResult `json:"validationSteps,omitempty" yaml:"validationSteps,omitempty"`
	ErrorSummary    string               `json:"errorSummary,omitempty" yaml:"errorSummary,omitempty"`
}

// PipelineStepResult is the outcome of one pipeline function.
type PipelineStepResult struct {
	Name           string       `json:"name,omitempty" yaml:"name,omitempty"`
	Image          string       `json:"image,omitempty" yaml:"image,omitempty"`
	ExecPath       string       `json:"exec,omitempty" yaml:"exec,omitempty"`
	ExecutionError string       `json:"executionError,omitempty" yaml:"executionError,omitempty"`
	Stderr         string       `json:"stderr,omitempty" yaml:"stderr,omitempty"`
	ExitCode       int          `json:"exitCode" yaml:"exitCode"`
	Results        []ResultItem `json:"results,omitempty" yaml:"results,omitempty"`
	ErrorResults   []ResultItem `json:"errorResults,omitempty" yaml:"errorResults,omitempty"`
}

// ResultItem is one result a function reported.
type ResultItem struct {
	Message     string       `json:"message,omitempty" yaml:"message,omitempty"`
	Severity    string       `json:"severity,omitempty" yaml:"severity,omitempty"`
	ResourceRef *ResourceRef `json:"resourceRef,omitempty" yaml:"resourceRef,omitempty"`
	Field       *FieldRef    `json:"field,omitempty" yaml:"field,omitempty"`
	File        *FileRef     `json:"file,omitempty" yaml:"file,omitempty"`
}

// ResourceRef identifies the resource a result is about.
type ResourceRef struct {
	APIVersion string `json:"apiVersion,omitempty" yaml:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty" yaml:"kind,omitempty"`
	Name       string `json:"name,omitempty" yaml:"name,omitempty"`
	Namespace  string `json:"namespace,omitempty" yaml:"namespace,omitempty"`
}

// FieldRef identifies the field a result is about.
type FieldRef struct {
	Path          string `json:"path,omitempty" yaml:"path,omitempty"`
	CurrentValue  string `json:"currentValue,omitempty" yaml:"currentValue,omitempty"`
	ProposedValue string `json:"proposedValue,omitempty" yaml:"proposedValue,omitempty"`
}

// FileRef identifies the file (and document index in it) a result is about.
type FileRef struct {
	Path  string `json:"path,omitempty" yaml:"path,omitempty"`
	Index int    `json:"index,omitempty" yaml:"index,omitempty"`
}
