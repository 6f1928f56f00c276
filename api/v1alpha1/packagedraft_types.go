package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UpdateStrategy is how an upgrade combines the old upstream, the new upstream and the local
// package, as kpt pkg update does: one of the values of a Kptfile's upstream.updateStrategy.
// Those values and what they do are defined once, in kpo.dev/kpo/internal/kptfile (the
// UpdateStrategy constants and UpdateStrategies); this type only carries one across the API
// (the manager converts it in its upgrade step), and the enum below must list the same values,
// which TestUpdateStrategy_enumListsKptfileStrategies checks. Empty means resource-merge.
// +kubebuilder:validation:Enum=resource-merge;fast-forward;force-delete-replace;copy-merge
type UpdateStrategy string

// PackageDraftSpec asks for a new draft revision of a package.
// +kubebuilder:validation:XValidation:rule="self.repository == oldSelf.repository",message="repository is immutable"
// +kubebuilder:validation:XValidation:rule="self.packageName == oldSelf.packageName",message="packageName is immutable"
// +kubebuilder:validation:XValidation:rule="self.workspaceName == oldSelf.workspaceName",message="workspaceName is immutable"
// +kubebuilder:validation:XValidation:rule="self.source == oldSelf.source",message="source is immutable: create a new PackageDraft instead"
type PackageDraftSpec struct {
	// Repository is the name of the Repository the draft is written to.
	// +kubebuilder:validation:MinLength=1
	Repository string `json:"repository"`

	// PackageName is the package's path below the repository directory.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][-A-Za-z0-9_.]*(/[A-Za-z0-9][-A-Za-z0-9_.]*)*$`
	PackageName string `json:"packageName"`

	// WorkspaceName names the draft; unique per package.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	WorkspaceName string `json:"workspaceName"`

	// Source of the draft's content: exactly one of init, clone, copy, upgrade.
	Source PackageDraftSource `json:"source"`

	// Lifecycle, when set, is the declarative form of propose and approve: the PackageDraft
	// then owns the lifecycle of the revision it produced.
	// +kubebuilder:validation:Enum=Draft;Proposed;Published
	// +optional
	Lifecycle Lifecycle `json:"lifecycle,omitempty"`
}

// PackageDraftSource is where a draft's content comes from.
// +kubebuilder:validation:XValidation:rule="[has(self.init), has(self.clone), has(self.copy), has(self.upgrade)].filter(x, x).size() == 1",message="exactly one of init, clone, copy and upgrade must be set"
type PackageDraftSource struct {
	// Init creates a new, empty package, as kpt pkg init does.
	// +optional
	Init *InitSource `json:"init,omitempty"`
	// Clone copies a package from an upstream, as kpt pkg get does.
	// +optional
	Clone *CloneSource `json:"clone,omitempty"`
	// Copy starts a new revision of the same package from a published one (rollback when
	// the source is older than the latest).
	// +optional
	Copy *CopySource `json:"copy,omitempty"`
	// Upgrade merges a newer upstream into a downstream package, as kpt pkg update does.
	// +optional
	Upgrade *UpgradeSource `json:"upgrade,omitempty"`
}

// InitSource is what kpt pkg init asks for.
type InitSource struct {
	// +optional
	Description string `json:"description,omitempty"`
	// +optional
	Keywords []string `json:"keywords,omitempty"`
	// +optional
	Site string `json:"site,omitempty"`
}

// CloneSource is a registered upstream revision or any Git location.
// +kubebuilder:validation:XValidation:rule="has(self.upstreamRef) != has(self.git)",message="exactly one of upstreamRef and git must be set"
type CloneSource struct {
	// UpstreamRef names a published PackageRevision.
	// +optional
	UpstreamRef *LocalReference `json:"upstreamRef,omitempty"`
	// Git is any Git repository, ref and directory.
	// +optional
	Git *GitSource `json:"git,omitempty"`
}

// GitSource is a package in any Git repository.
type GitSource struct {
	// Repo URL: https://, http:// or file://, without credentials (user:password@): put them
	// in the Secret named by secretRef.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(https?|file)://`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",message="spec.source.clone.git.repo must not hold credentials (user:password@ or token@ before the host): put them in a Secret and name it in spec.source.clone.git.secretRef"
	Repo string `json:"repo"`
	// Ref: a branch, tag or commit.
	// +kubebuilder:validation:MinLength=1
	Ref string `json:"ref"`
	// Directory of the package in the repository.
	// +optional
	Directory string `json:"directory,omitempty"`
	// SecretRef names the credentials Secret, as for Repository.
	// +optional
	SecretRef *LocalReference `json:"secretRef,omitempty"`
}

// CopySource names the published revision to copy.
type CopySource struct {
	SourceRef LocalReference `json:"sourceRef"`
}

// UpgradeSource names the three revisions of a three-way merge.
type UpgradeSource struct {
	// OldUpstream is the upstream revision the package was cloned from.
	OldUpstream LocalReference `json:"oldUpstream"`
	// NewUpstream is the upstream revision to move to.
	NewUpstream LocalReference `json:"newUpstream"`
	// Current is the downstream revision with the local changes.
	Current LocalReference `json:"current"`
	// Strategy of the merge.
	// +kubebuilder:default=resource-merge
	// +optional
	Strategy UpdateStrategy `json:"strategy,omitempty"`
	// AllowConflicts creates the draft even when the merge has conflicts (fields changed both
	// locally and upstream), instead of refusing it with reason MergeConflict. Each conflict
	// is recorded in the draft's first commit (Kpo-Conflict trailers) and in the
	// PackageRevision's status.conflicts; the draft holds upstream's value for each of them, as
	// kpt pkg update does, and cannot be proposed until every one is resolved — by editing the
	// field, or by choosing a side with the kpo.dev/resolve-conflicts annotation (kpoctl rpkg
	// resolve). At most 100 conflicts are recorded; more are refused as without it.
	// +optional
	AllowConflicts bool `json:"allowConflicts,omitempty"`
}

// PackageDraftStatus reports the draft the request produced. The PackageDraft reconciler is the
// only writer of every field.
type PackageDraftStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, and Stalled (True while only a change by the user helps: a refusal;
	// absent otherwise).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// PackageRevision is the name of the PackageRevision produced.
	// +optional
	PackageRevision string `json:"packageRevision,omitempty"`

	// Commit is the Git commit the produced revision stands at. A declarative approval
	// (spec.lifecycle set to Published) binds to it: the admission policy records it in the
	// kpo.dev/approved-commit annotation, and the manager publishes that commit or nothing.
	// +optional
	Commit string `json:"commit,omitempty"`
}

// PackageDraft is the authoring request a user or a GitOps pipeline applies to start a draft:
// the manager builds the content, commits it to drafts/<package>/<workspace> and creates the
// PackageRevision.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=draft,categories=kpo
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Package",type=string,JSONPath=`.spec.packageName`
// +kubebuilder:printcolumn:name="Workspace",type=string,JSONPath=`.spec.workspaceName`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.packageRevision`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PackageDraft struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PackageDraftSpec   `json:"spec,omitempty"`
	Status PackageDraftStatus `json:"status,omitempty"`
}

// GetConditions returns the status conditions.
func (d *PackageDraft) GetConditions() []metav1.Condition { return d.Status.Conditions }

// SetConditions replaces the status conditions.
func (d *PackageDraft) SetConditions(c []metav1.Condition) { d.Status.Conditions = c }

// PackageDraftList is a list of PackageDrafts.
// +kubebuilder:object:root=true
type PackageDraftList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PackageDraft `json:"items"`
}

func init() {
	SchemeBuilder.Register(knownTypes(&PackageDraft{}, &PackageDraftList{}))
}
