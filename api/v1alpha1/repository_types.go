package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RepositoryType is the kind of storage behind a Repository.
// +kubebuilder:validation:Enum=git
type RepositoryType string

// GitRepositoryType is a Git repository reached over http(s) or file://.
const GitRepositoryType RepositoryType = "git"

// RepositorySpec registers a Git repository of kpt packages.
type RepositorySpec struct {
	// Description is free text shown to users.
	// +optional
	Description string `json:"description,omitempty"`

	// Type of the repository. Only git is supported.
	// +kubebuilder:default=git
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="type is immutable: register a new Repository instead"
	// +optional
	Type RepositoryType `json:"type,omitempty"`

	// Git locates the repository.
	Git GitRepository `json:"git"`

	// Deployment marks the packages published here as ready to deploy.
	// +optional
	Deployment bool `json:"deployment,omitempty"`

	// Upstream names the Repository that clones into this one come from by default.
	// +optional
	Upstream *LocalReference `json:"upstream,omitempty"`

	// Sync sets how often the repository is re-read.
	// +optional
	Sync *RepositorySync `json:"sync,omitempty"`

	// Approval sets rules the manager checks before it publishes a revision of this
	// repository, on top of the packagerevisions/approval permission.
	// +optional
	Approval *ApprovalRules `json:"approval,omitempty"`

	// Guardrails are validator functions (as a Kptfile's pipeline.validators: image, configMap,
	// selectors, exclude) that the committed content of every draft of this repository must
	// pass before the manager proposes it. They run with the render engine (built-ins in
	// process, other images as Jobs under the same allowlist) over the package's resources as
	// committed, subpackages included, without running the package's own pipeline. They live in
	// the Repository's spec, so only who may edit the Repository changes them (kpo-author may
	// not). A draft that fails one stays Draft with condition GuardrailsPassed=False (reason
	// GuardrailFailed, or GuardrailError when the function could not run), naming it; results
	// are kept per draft commit and guardrails digest (status.guardrails), and a change here
	// re-checks open drafts only. configPath is refused: it would read the config from the
	// package, which its author controls.
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:XValidation:rule="self.all(f, !has(f.configPath))",message="a guardrail cannot use configPath: it would read its config from the package its author controls; put the config in configMap"
	// +optional
	Guardrails []Function `json:"guardrails,omitempty"`
}

// ApprovalRules are the repository's own rules for publishing.
type ApprovalRules struct {
	// ForbidSelfApproval ("four eyes"): an approver cannot publish a revision whose content they
	// edited. The editors are the authors (and co-authors) of the revision's edit commits in
	// Git, which the manager writes from the verified identities the API server stamps on each
	// content edit. A refused approval keeps the revision Proposed, with reason
	// SelfApprovalForbidden.
	// +optional
	ForbidSelfApproval bool `json:"forbidSelfApproval,omitempty"`
}

// GitRepository locates packages in a Git repository.
// +kubebuilder:validation:XValidation:rule="self.repo == oldSelf.repo",message="git.repo is immutable: register a new Repository instead"
// +kubebuilder:validation:XValidation:rule="self.branch == oldSelf.branch",message="git.branch is immutable: register a new Repository instead"
// +kubebuilder:validation:XValidation:rule="self.directory == oldSelf.directory",message="git.directory is immutable: register a new Repository instead"
type GitRepository struct {
	// Repo is the URL of the repository: https://, http:// or file://. It must not hold
	// credentials (user:password@): they would show in every status, event and log line
	// that names the URL. Put them in the Secret named by secretRef.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(https?|file)://`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",message="spec.git.repo must not hold credentials (user:password@ or token@ before the host): put them in a Secret and name it in spec.git.secretRef"
	Repo string `json:"repo"`

	// Branch holds the published packages.
	// +kubebuilder:default=main
	// +kubebuilder:validation:MinLength=1
	// +optional
	Branch string `json:"branch,omitempty"`

	// CreateBranch creates Branch when the repository does not have it.
	// +optional
	CreateBranch bool `json:"createBranch,omitempty"`

	// Directory below which packages live; "/" is the repository root.
	// +kubebuilder:default="/"
	// +kubebuilder:validation:Pattern=`^/?([^/.][^/]*(/[^/.][^/]*)*)?/?$`
	// +optional
	Directory string `json:"directory,omitempty"`

	// SecretRef names a Secret in the same namespace with the credentials: type
	// kubernetes.io/basic-auth (username, password) or Opaque with bearerToken; either may
	// carry ca.crt.
	// +optional
	SecretRef *LocalReference `json:"secretRef,omitempty"`

	// Author of the commits the manager makes.
	// +optional
	Author string `json:"author,omitempty"`

	// Email of the commits the manager makes.
	// +optional
	Email string `json:"email,omitempty"`
}

// RepositorySync sets when a repository is re-read.
type RepositorySync struct {
	// Interval between syncs; jittered by up to 10%. Default 5m.
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// RunOnceAt asks for one sync at the given time.
	// +optional
	RunOnceAt *metav1.Time `json:"runOnceAt,omitempty"`
}

// LocalReference names an object in the same namespace.
type LocalReference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// RepositoryStatus is what the manager last saw in Git. The Repository reconciler is the only
// writer of every field, packageCount included (a PackageRevision created or deleted requeues
// it to recount).
type RepositoryStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, with reasons Synced, AuthenticationFailed, RepositoryNotFound,
	// RepositoryUnreachable, BranchNotFound, SecretNotFound, InvalidCredentials, GitError; and
	// PackagesValid, False (InvalidPackages) when packages in Git cannot be synced, naming them.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastSyncTime is when Git was last read successfully.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// Commit is the head of the registered branch at the last sync.
	// +optional
	Commit string `json:"commit,omitempty"`

	// PackageCount is the number of packages on the registered branch or in any revision.
	// +kubebuilder:default=0
	// +optional
	PackageCount int `json:"packageCount"`

	// LastHandledSyncRequest echoes the kpo.dev/sync-requested annotation of the last sync.
	// +optional
	LastHandledSyncRequest string `json:"lastHandledSyncRequest,omitempty"`
}

// Repository registers a Git repository of kpt packages; the manager keeps one
// PackageRevision per package revision found in it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=repo,categories=kpo
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.git.repo`
// +kubebuilder:printcolumn:name="Branch",type=string,JSONPath=`.spec.git.branch`
// +kubebuilder:printcolumn:name="Directory",type=string,JSONPath=`.spec.git.directory`,priority=1
// +kubebuilder:printcolumn:name="Deployment",type=boolean,JSONPath=`.spec.deployment`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Packages",type=integer,JSONPath=`.status.packageCount`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be an RFC 1123 label (lower-case letters, digits and '-', at most 63 characters): it becomes part of every PackageRevision name"
type Repository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RepositorySpec   `json:"spec,omitempty"`
	Status RepositoryStatus `json:"status,omitempty"`
}

// GetConditions returns the status conditions.
func (r *Repository) GetConditions() []metav1.Condition { return r.Status.Conditions }

// SetConditions replaces the status conditions.
func (r *Repository) SetConditions(c []metav1.Condition) { r.Status.Conditions = c }

// RepositoryList is a list of Repositories.
// +kubebuilder:object:root=true
type RepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Repository `json:"items"`
}

func init() {
	SchemeBuilder.Register(knownTypes(&Repository{}, &RepositoryList{}))
}
