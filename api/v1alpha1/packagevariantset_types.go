package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PackageVariantSetSpec fans one upstream package out to many downstream packages: one
// PackageVariant per target. Field names and meanings are those of Porch's PackageVariantSet
// (config.porch.kpt.dev/v1alpha2), so a Porch manifest converts by changing its apiVersion;
// spec.rollout is kpo's addition.
type PackageVariantSetSpec struct {
	// Upstream is the published revision every variant follows (an empty revision follows the
	// newest published one).
	Upstream UpstreamPackage `json:"upstream"`

	// Targets select the downstream packages; each produces one PackageVariant per selected
	// repository, package name or object.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Targets []Target `json:"targets"`

	// Rollout, when set, moves the variants to a new upstream revision in waves.
	// +optional
	Rollout *Rollout `json:"rollout,omitempty"`
}

// Target selects downstream packages in exactly one way: a list of repositories, a label
// selector over Repositories, or a selector over in-cluster objects of one kind.
// +kubebuilder:validation:XValidation:rule="(has(self.repositories) && size(self.repositories) > 0 ? 1 : 0) + (has(self.repositorySelector) ? 1 : 0) + (has(self.objectSelector) ? 1 : 0) == 1",message="set exactly one of repositories, repositorySelector and objectSelector"
type Target struct {
	// Repositories are named Repositories of the set's namespace, each with the package names
	// to create in it (the upstream package's name when none are given).
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Repositories []RepositoryTarget `json:"repositories,omitempty"`

	// RepositorySelector selects Repositories of the set's namespace by label: one variant per
	// Repository, named after the upstream package.
	// +optional
	RepositorySelector *metav1.LabelSelector `json:"repositorySelector,omitempty"`

	// ObjectSelector selects in-cluster objects of one kind in the set's namespace: one variant
	// per object, in the Repository named after the object unless the template says otherwise.
	// The manager reads ConfigMaps and kpo's kinds out of the box; any other kind needs a Role
	// granting its service account list on them.
	// +optional
	ObjectSelector *ObjectSelector `json:"objectSelector,omitempty"`

	// Template says how the variants of this target are built; its fields are literal values
	// or CEL expressions (the *Expr fields).
	// +optional
	Template *PackageVariantTemplate `json:"template,omitempty"`
}

// RepositoryTarget is a Repository and the package names to create in it.
type RepositoryTarget struct {
	// Name of the Repository.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// PackageNames are the downstream package names; empty means the upstream package's name.
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	PackageNames []string `json:"packageNames,omitempty"`
}

// ObjectSelector selects objects of one kind in the set's namespace by label (and name).
type ObjectSelector struct {
	metav1.LabelSelector `json:",inline"`
	// APIVersion of the objects, e.g. v1 or infra.example.com/v1alpha1.
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`
	// Kind of the objects.
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// Name, when set, selects only the object of this name.
	// +optional
	Name string `json:"name,omitempty"`
}

// PackageVariantTemplate is the PackageVariant spec of a target, each field literal or a CEL
// expression. The expressions see repoDefault, packageDefault (strings), upstream (the upstream
// PackageRevision: name, namespace, labels, annotations), repository (the downstream
// Repository, same fields; empty in the downstream expressions, which choose it) and target (the selected object's apiVersion, kind, name,
// namespace, labels and annotations; repo and package for repository targets). An expression
// that does not compile or evaluate stalls the set (reason InvalidTemplate) and changes none
// of its variants.
type PackageVariantTemplate struct {
	// Downstream names the downstream package (default: repoDefault and packageDefault).
	// +optional
	Downstream *DownstreamTemplate `json:"downstream,omitempty"`
	// AdoptionPolicy of the variants (default adoptNone).
	// +optional
	AdoptionPolicy AdoptionPolicy `json:"adoptionPolicy,omitempty"`
	// DeletionPolicy of the variants (default delete).
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
	// Labels of the variants' downstream revisions.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// LabelExprs add labels whose key or value is an expression.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	LabelExprs []MapExpr `json:"labelExprs,omitempty"`
	// Annotations of the variants' downstream revisions.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// AnnotationExprs add annotations whose key or value is an expression.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	AnnotationExprs []MapExpr `json:"annotationExprs,omitempty"`
	// PackageContext edits package-context.yaml.
	// +optional
	PackageContext *PackageContextTemplate `json:"packageContext,omitempty"`
	// Pipeline functions prepended to the downstream Kptfile's pipeline.
	// +optional
	Pipeline *PipelineTemplate `json:"pipeline,omitempty"`
	// Injectors select in-cluster objects to inject.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Injectors []InjectionSelectorTemplate `json:"injectors,omitempty"`
}

// DownstreamTemplate names the downstream package: each of repo and package literal or an
// expression (not both).
// +kubebuilder:validation:XValidation:rule="!(has(self.repo) && has(self.repoExpr))",message="set repo or repoExpr, not both"
// +kubebuilder:validation:XValidation:rule="!(has(self.__package__) && has(self.packageExpr))",message="set package or packageExpr, not both"
type DownstreamTemplate struct {
	// +optional
	Repo string `json:"repo,omitempty"`
	// +optional
	Package string `json:"package,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	RepoExpr string `json:"repoExpr,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	PackageExpr string `json:"packageExpr,omitempty"`
}

// MapExpr is a key and a value, each literal or an expression (not both).
// +kubebuilder:validation:XValidation:rule="has(self.key) != has(self.keyExpr)",message="set exactly one of key and keyExpr"
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.valueExpr)",message="set exactly one of value and valueExpr"
type MapExpr struct {
	// +optional
	Key *string `json:"key,omitempty"`
	// +optional
	Value *string `json:"value,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	KeyExpr *string `json:"keyExpr,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	ValueExpr *string `json:"valueExpr,omitempty"`
}

// PackageContextTemplate is a PackageContext whose entries may be expressions.
type PackageContextTemplate struct {
	// +optional
	Data map[string]string `json:"data,omitempty"`
	// +kubebuilder:validation:MaxItems=64
	// +optional
	DataExprs []MapExpr `json:"dataExprs,omitempty"`
	// +optional
	RemoveKeys []string `json:"removeKeys,omitempty"`
	// +kubebuilder:validation:MaxItems=64
	// +optional
	RemoveKeyExprs []string `json:"removeKeyExprs,omitempty"`
}

// PipelineTemplate is a Pipeline whose function configs may hold expressions.
type PipelineTemplate struct {
	// +optional
	Validators []FunctionTemplate `json:"validators,omitempty"`
	// +optional
	Mutators []FunctionTemplate `json:"mutators,omitempty"`
}

// FunctionTemplate is a Function whose configMap entries may be expressions.
type FunctionTemplate struct {
	Function `json:",inline"`
	// ConfigMapExprs add configMap entries whose key or value is an expression.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	ConfigMapExprs []MapExpr `json:"configMapExprs,omitempty"`
}

// InjectionSelectorTemplate is an InjectionSelector whose name may be an expression.
// +kubebuilder:validation:XValidation:rule="has(self.name) != has(self.nameExpr)",message="set exactly one of name and nameExpr"
type InjectionSelectorTemplate struct {
	// +optional
	Group *string `json:"group,omitempty"`
	// +optional
	Version *string `json:"version,omitempty"`
	// +optional
	Kind *string `json:"kind,omitempty"`
	// +optional
	Name *string `json:"name,omitempty"`
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	NameExpr *string `json:"nameExpr,omitempty"`
}

// Rollout moves the variants to a new upstream revision a few at a time.
type Rollout struct {
	// MaxConcurrent is how many variants move to the new upstream revision at a time: the next
	// ones move only once the downstream revisions of the previous ones, based on the new
	// upstream revision, are published (by an approver, or an approval policy). The others stay
	// on the revision they have meanwhile.
	// +kubebuilder:validation:Minimum=1
	MaxConcurrent int32 `json:"maxConcurrent"`
}

// RolloutStatus is the progress of a rollout to the upstream revision the set asks for.
type RolloutStatus struct {
	// Revision is the upstream revision being rolled out ("v2").
	Revision string `json:"revision"`
	// Done counts the variants whose downstream has a published revision based on it.
	Done int32 `json:"done"`
	// Moving are the variants moved to it whose downstream is not published yet.
	// +optional
	Moving []string `json:"moving,omitempty"`
	// Waiting counts the variants still on an older revision.
	Waiting int32 `json:"waiting"`
}

// PackageVariantSetStatus is written by the PackageVariantSet reconciler alone.
type PackageVariantSetStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready (every variant exists as the set wants it and is Ready) and Stalled
	// (the set cannot go on without a change by the user: an invalid template, a variant name
	// taken by a PackageVariant the set does not own).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Variants counts the PackageVariants the set wants.
	// +optional
	Variants int32 `json:"variants,omitempty"`
	// ReadyVariants counts those of them that are Ready.
	// +optional
	ReadyVariants int32 `json:"readyVariants,omitempty"`
	// NotReady names up to 20 of the variants that are not Ready, sorted.
	// +optional
	NotReady []string `json:"notReady,omitempty"`

	// Rollout is the progress of the current rollout, when spec.rollout is set.
	// +optional
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}

// PackageVariantSet creates, updates in place and deletes PackageVariants: one per target it
// selects, named <set>-<repo>-<package>, owned by the set (ownerReference and label
// kpo.dev/package-variant-set). Deleting the set deletes its PackageVariants, which apply
// their deletionPolicy.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pvarset,categories=kpo
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 40",message="the name of a PackageVariantSet is at most 40 characters: it prefixes the names of its PackageVariants"
// +kubebuilder:printcolumn:name="Upstream-Repo",type=string,JSONPath=`.spec.upstream.repo`
// +kubebuilder:printcolumn:name="Upstream-Package",type=string,JSONPath=`.spec.upstream.package`
// +kubebuilder:printcolumn:name="Upstream-Revision",type=string,JSONPath=`.spec.upstream.revision`
// +kubebuilder:printcolumn:name="Variants",type=integer,JSONPath=`.status.variants`
// +kubebuilder:printcolumn:name="Ready-Variants",type=integer,JSONPath=`.status.readyVariants`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PackageVariantSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PackageVariantSetSpec   `json:"spec,omitempty"`
	Status PackageVariantSetStatus `json:"status,omitempty"`
}

// GetConditions returns the status conditions.
func (s *PackageVariantSet) GetConditions() []metav1.Condition { return s.Status.Conditions }

// SetConditions replaces the status conditions.
func (s *PackageVariantSet) SetConditions(c []metav1.Condition) { s.Status.Conditions = c }

// PackageVariantSetList is a list of PackageVariantSets.
// +kubebuilder:object:root=true
type PackageVariantSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PackageVariantSet `json:"items"`
}

func init() {
	SchemeBuilder.Register(knownTypes(&PackageVariantSet{}, &PackageVariantSetList{}))
}
