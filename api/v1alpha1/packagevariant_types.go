package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AdoptionPolicy says whether a PackageVariant takes over a downstream package it did not
// create (Porch's config.porch.kpt.dev/v1alpha1 values).
// +kubebuilder:validation:Enum=adoptExisting;adoptNone
type AdoptionPolicy string

// DeletionPolicy says what happens to a PackageVariant's downstream revisions when it is
// deleted (Porch's values).
// +kubebuilder:validation:Enum=delete;orphan
type DeletionPolicy string

// The adoption and deletion policies.
const (
	// AdoptionPolicyAdoptExisting takes over a downstream package that exists without a
	// PackageVariant owning it.
	AdoptionPolicyAdoptExisting AdoptionPolicy = "adoptExisting"
	// AdoptionPolicyAdoptNone leaves such a package alone and reports it (the default).
	AdoptionPolicyAdoptNone AdoptionPolicy = "adoptNone"
	// DeletionPolicyDelete deletes the owned drafts and proposals and proposes the deletion of
	// the owned published revisions (the default).
	DeletionPolicyDelete DeletionPolicy = "delete"
	// DeletionPolicyOrphan leaves every downstream revision as it is, no longer owned.
	DeletionPolicyOrphan DeletionPolicy = "orphan"
)

// PackageVariantSpec ties one downstream package to one upstream revision, with the
// customisations the variant applies to it. Field names and meanings are those of Porch's
// PackageVariant (config.porch.kpt.dev/v1alpha1), so a Porch manifest converts by changing its
// apiVersion.
// +kubebuilder:validation:XValidation:rule="self.downstream == oldSelf.downstream",message="downstream is immutable: create another PackageVariant for another downstream package"
type PackageVariantSpec struct {
	// Upstream is the published revision the downstream package follows.
	Upstream UpstreamPackage `json:"upstream"`

	// Downstream is the package the variant creates and keeps up to date.
	Downstream DownstreamPackage `json:"downstream"`

	// AdoptionPolicy: adoptNone (default) or adoptExisting.
	// +kubebuilder:default=adoptNone
	// +optional
	AdoptionPolicy AdoptionPolicy `json:"adoptionPolicy,omitempty"`

	// DeletionPolicy: delete (default) or orphan.
	// +kubebuilder:default=delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// Labels are set on every downstream PackageRevision the variant creates or adopts. Keys
	// under kpo.dev/ are the manager's and are refused (condition Stalled, reason InvalidSpec).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations are set on every downstream PackageRevision the variant creates or adopts.
	// Keys under kpo.dev/ are the manager's and are refused.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// PackageContext edits the data of the kptfile.kpt.dev ConfigMap (package-context.yaml).
	// +optional
	PackageContext *PackageContext `json:"packageContext,omitempty"`

	// Pipeline functions are prepended to the downstream Kptfile's pipeline, each named
	// PackageVariant.<variant>.<function name>.<index>; those of an earlier apply are replaced.
	// +optional
	Pipeline *Pipeline `json:"pipeline,omitempty"`

	// AllowConflicts (kpo's, not Porch's) lets upgrades go ahead when fields conflict: an
	// upgrade draft is created with its conflicts recorded (spec.upgrade.allowConflicts of its
	// PackageDraft) instead of the variant stalling with MergeConflict, and an owned Draft
	// behind the upstream is rebased onto it (annotation kpo.dev/rebase-onto) instead of
	// waiting with DraftBehindUpstream. The conflicts are resolved on the draft (kpoctl rpkg
	// resolve, or an edit); until then it cannot be proposed, nor rebased again.
	// +optional
	AllowConflicts bool `json:"allowConflicts,omitempty"`

	// Injectors select in-cluster objects (in the variant's namespace) to copy into the
	// package's injection points: resources annotated kpt.dev/config-injection: required or
	// optional.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Injectors []InjectionSelector `json:"injectors,omitempty"`
}

// UpstreamPackage is the upstream revision of a PackageVariant: a package of a registered
// Repository and one of its published revisions. (Upstream is the name of the Kptfile's upstream.)
type UpstreamPackage struct {
	// Repo is the name of the upstream Repository, in the variant's namespace.
	// +kubebuilder:validation:MinLength=1
	Repo string `json:"repo"`
	// Package is the upstream package's path below the repository directory.
	// +kubebuilder:validation:MinLength=1
	Package string `json:"package"`
	// Revision of the upstream package: "v3" or "3" (Porch writes "v3"). Empty follows the
	// newest published revision.
	// +kubebuilder:validation:Pattern=`^(v?[1-9][0-9]{0,8})?$`
	// +optional
	Revision string `json:"revision,omitempty"`
}

// DownstreamPackage is the package a PackageVariant writes.
type DownstreamPackage struct {
	// Repo is the name of the downstream Repository, in the variant's namespace.
	// +kubebuilder:validation:MinLength=1
	Repo string `json:"repo"`
	// Package is the downstream package's path below the repository directory.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][-A-Za-z0-9_.]*(/[A-Za-z0-9][-A-Za-z0-9_.]*)*$`
	Package string `json:"package"`
}

// PackageContext edits the data of package-context.yaml's kptfile.kpt.dev ConfigMap. The keys
// name and package-path are kpt's and are refused (condition Stalled, reason InvalidSpec).
type PackageContext struct {
	// Data keys and values to set.
	// +optional
	Data map[string]string `json:"data,omitempty"`
	// RemoveKeys are keys to remove.
	// +optional
	RemoveKeys []string `json:"removeKeys,omitempty"`
}

// Pipeline is a Kptfile pipeline: mutators, then validators.
type Pipeline struct {
	// +optional
	Mutators []Function `json:"mutators,omitempty"`
	// +optional
	Validators []Function `json:"validators,omitempty"`
}

// Function is a function of a Kptfile pipeline, as in the Kptfile.
type Function struct {
	// Image of the function.
	// +kubebuilder:validation:MinLength=1
	Image string `json:"image"`
	// Name of the function; the Kptfile gets PackageVariant.<variant>.<name>.<index>.
	// +optional
	Name string `json:"name,omitempty"`
	// ConfigPath is a package-relative path of the function config.
	// +optional
	ConfigPath string `json:"configPath,omitempty"`
	// ConfigMap is an inline function config.
	// +optional
	ConfigMap map[string]string `json:"configMap,omitempty"`
	// Selectors limit the function to matching resources (any selector matches).
	// +optional
	Selectors []Selector `json:"selectors,omitempty"`
	// Exclusions remove matching resources from the selection.
	// +optional
	Exclusions []Selector `json:"exclude,omitempty"`
}

// Selector matches resources of a package, as in the Kptfile: every field set must match.
type Selector struct {
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// +optional
	Kind string `json:"kind,omitempty"`
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// InjectionSelector selects the in-cluster object injected into matching injection points:
// every field set must match the object, and group, version and kind (when set) the
// injection point too.
type InjectionSelector struct {
	// +optional
	Group *string `json:"group,omitempty"`
	// +optional
	Version *string `json:"version,omitempty"`
	// +optional
	Kind *string `json:"kind,omitempty"`
	// Name of the in-cluster object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// DownstreamTarget is a downstream revision the variant owns: its Draft and Proposed revisions,
// or the newest published one when there are none.
type DownstreamTarget struct {
	// Name of the PackageRevision.
	Name string `json:"name"`
	// RenderStatus is the reason of the revision's Rendered condition (e.g. RenderSucceeded,
	// FunctionFailed), empty before its first render.
	// +optional
	RenderStatus string `json:"renderStatus,omitempty"`
}

// PackageVariantStatus is written by the PackageVariant reconciler alone.
type PackageVariantStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready (the downstream is up to date with the spec and the upstream) and
	// Stalled (a failure that needs a change from the user).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// DownstreamTargets are the downstream revisions the variant owns and works on.
	// +optional
	DownstreamTargets []DownstreamTarget `json:"downstreamTargets,omitempty"`
}

// PackageVariant keeps one downstream package a customised variant of an upstream revision:
// it clones it, upgrades it when the upstream revision changes, and edits it when the
// customisations change, always through drafts; it publishes only under an approval policy
// (annotation approval.nephio.org/policy), which needs the approve permission to set.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pvar,categories=kpo
// +kubebuilder:printcolumn:name="Upstream-Repo",type=string,JSONPath=`.spec.upstream.repo`
// +kubebuilder:printcolumn:name="Upstream-Package",type=string,JSONPath=`.spec.upstream.package`
// +kubebuilder:printcolumn:name="Upstream-Revision",type=string,JSONPath=`.spec.upstream.revision`
// +kubebuilder:printcolumn:name="Downstream-Repo",type=string,JSONPath=`.spec.downstream.repo`
// +kubebuilder:printcolumn:name="Downstream-Package",type=string,JSONPath=`.spec.downstream.package`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Targets",type=string,JSONPath=`.status.downstreamTargets[*].name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PackageVariant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PackageVariantSpec   `json:"spec,omitempty"`
	Status PackageVariantStatus `json:"status,omitempty"`
}

// GetConditions returns the status conditions.
func (v *PackageVariant) GetConditions() []metav1.Condition { return v.Status.Conditions }

// SetConditions replaces the status conditions.
func (v *PackageVariant) SetConditions(c []metav1.Condition) { v.Status.Conditions = c }

// PackageVariantList is a list of PackageVariants.
// +kubebuilder:object:root=true
type PackageVariantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PackageVariant `json:"items"`
}

func init() {
	SchemeBuilder.Register(knownTypes(&PackageVariant{}, &PackageVariantList{}))
}
