package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Lifecycle is where a package revision stands between authoring and publication.
// +kubebuilder:validation:Enum=Draft;Proposed;Published;DeletionProposed
type Lifecycle string

// The lifecycles and the Git refs that hold them.
const (
	// LifecycleDraft lives on branch drafts/<package>/<workspace>.
	LifecycleDraft Lifecycle = "Draft"
	// LifecycleProposed lives on branch proposed/<package>/<workspace>.
	LifecycleProposed Lifecycle = "Proposed"
	// LifecyclePublished is tag <package>/v<N> (or a package on the registered branch).
	LifecyclePublished Lifecycle = "Published"
	// LifecycleDeletionProposed is a published tag with branch deletionProposed/<package>/v<N>.
	LifecycleDeletionProposed Lifecycle = "DeletionProposed"
)

// PackageRevisionSpec is one revision of one package and the user's lifecycle intent.
// +kubebuilder:validation:XValidation:rule="self.repository == oldSelf.repository",message="repository is immutable"
// +kubebuilder:validation:XValidation:rule="self.packageName == oldSelf.packageName",message="packageName is immutable"
// +kubebuilder:validation:XValidation:rule="self.workspaceName == oldSelf.workspaceName",message="workspaceName is immutable"
type PackageRevisionSpec struct {
	// Repository is the name of the Repository holding the package.
	// +kubebuilder:validation:MinLength=1
	Repository string `json:"repository"`

	// PackageName is the package's path below the repository directory.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	PackageName string `json:"packageName"`

	// WorkspaceName names the revision while it is authored; published revisions keep it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	WorkspaceName string `json:"workspaceName"`

	// Lifecycle: Draft → Proposed (propose), Proposed → Draft (reject), Proposed → Published
	// (approve; needs the packagerevisions/approval permission), Published → DeletionProposed,
	// DeletionProposed → Published (reject deletion).
	// An approval the manager has not carried out yet (status.lifecycle still Proposed) can be
	// withdrawn: Published → Proposed.
	// +kubebuilder:default=Draft
	// +optional
	Lifecycle Lifecycle `json:"lifecycle,omitempty"`

	// ReadinessGates name conditions of the Kptfile status that must be True before publish.
	// +optional
	ReadinessGates []ReadinessGate `json:"readinessGates,omitempty"`
}

// ReadinessGate names a condition that must be True before publication.
type ReadinessGate struct {
	// ConditionType is the type of the Kptfile status condition.
	ConditionType string `json:"conditionType"`
}

// UpstreamGit is the Git location a package was cloned from, as in the Kptfile.
type UpstreamGit struct {
	Repo      string `json:"repo,omitempty"`
	Directory string `json:"directory,omitempty"`
	Ref       string `json:"ref,omitempty"`
	// Commit is set in upstreamLock only.
	// +optional
	Commit string `json:"commit,omitempty"`
}

// Upstream is the Kptfile's upstream or upstreamLock.
type Upstream struct {
	// Type is "git".
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	Git *UpstreamGit `json:"git,omitempty"`
}

// RenderResult is one result a function of the Kptfile pipeline reported.
type RenderResult struct {
	// Image (or exec path) of the function.
	Image string `json:"image,omitempty"`
	// Severity is error, warning or info.
	// +optional
	Severity string `json:"severity,omitempty"`
	// Message of the result.
	Message string `json:"message,omitempty"`
	// Resource the result is about, as apiVersion/kind/namespace/name.
	// +optional
	Resource string `json:"resource,omitempty"`
	// File the result is about, relative to the package.
	// +optional
	File string `json:"file,omitempty"`
}

// ContentError is a package whose files could not be put in its ConfigMap.
type ContentError struct {
	// Reason: PackageTooLarge or InvalidContent.
	Reason string `json:"reason"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
}

// GuardrailsResult is the outcome of the Repository's guardrails on one commit of a draft.
type GuardrailsResult struct {
	// Commit of the draft the guardrails were evaluated on.
	Commit string `json:"commit"`
	// Digest of the Repository's spec.guardrails that were evaluated; a change of the
	// guardrails (another digest) evaluates the draft again.
	Digest string `json:"digest"`
	// Failed names the guardrail that failed (its name, or its image when it has none); empty
	// when all passed.
	// +optional
	Failed string `json:"failed,omitempty"`
	// Reason is Passed, GuardrailFailed or GuardrailError.
	Reason string `json:"reason"`
	// Message says what failed and how to fix it.
	// +optional
	Message string `json:"message,omitempty"`
	// Results the guardrails reported, in the form of renderResults.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Results []RenderResult `json:"results,omitempty"`
}

// DownstreamResult is the outcome of upgrading one downstream package to a proposal.
type DownstreamResult struct {
	// PackageRevision is the downstream's newest published revision.
	PackageRevision string `json:"packageRevision"`
	// PackageVariant ties the downstream to the proposal's package.
	PackageVariant string `json:"packageVariant"`
	// Result: Clean, Conflict, RenderFailed or GuardrailFailed (or Error when the upgrade could
	// not be tried: its content could not be read).
	// +kubebuilder:validation:Enum=Clean;Conflict;RenderFailed;GuardrailFailed;Error
	Result string `json:"result"`
	// Message names the conflicting field or the failing function.
	// +optional
	Message string `json:"message,omitempty"`
}

// DownstreamValidation says, for a Proposed revision of an upstream package, whether each
// downstream that a PackageVariant ties to the package would upgrade cleanly to it. Computed
// without writing to Git, for the proposal's commit and the downstreams' commits (Key).
type DownstreamValidation struct {
	// Key identifies what was computed: the proposal's commit and every downstream's commit.
	Key string `json:"key"`
	// Summary counts the results, e.g. "2 upgrade cleanly, 1 conflicts, 1 fails validation".
	Summary string `json:"summary"`
	// Results, one per downstream (at most 50; the summary counts all).
	// +optional
	// +kubebuilder:validation:MaxItems=50
	Results []DownstreamResult `json:"results,omitempty"`
}

// PackageRevisionStatus is the revision as Git holds it.
//
// Each field has one writer. The Repository sync (a full sync, or the re-read of one package
// after a write) owns the Git projection: lifecycle, revision, ref, commit, tree, upstream,
// upstreamLock, publishedBy, publishedAt, resourcesRef, contentError, contentWarning and
// conflicts; it writes them with a merge patch of those fields alone. The PackageRevision
// reconciler owns observedGeneration, every condition (Ready, Rendered, ContentValid,
// GuardrailsPassed, DownstreamsValidated, ConflictsResolved and the ones mirrored from the
// Kptfile), renderResults, guardrails,
// downstreamValidation, upstreamRevision and latestUpstreamRevision; it writes them at
// the end of each reconcile onto the freshest object, with optimistic locking. One exception:
// the sync's first status write of a new published revision carries the conditions the
// reconciler would derive from it (the same function), so a new revision costs one write.
// The deployment-status reconciler owns deployments (published revisions of deployment
// repositories only).
type PackageRevisionStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready (the revision equals its Git ref), Rendered (the last render of its
	// content), ContentValid (the files read from Git are valid), and those mirrored from the
	// Kptfile status.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Revision is the published revision number: assigned at publication as the highest
	// published revision plus one; 0 before; -1 for the package as it stands on the
	// registered branch.
	// +kubebuilder:default=0
	// +optional
	Revision int `json:"revision"`

	// Lifecycle is the lifecycle Git holds; spec.lifecycle differs while a transition is under
	// way.
	// +optional
	Lifecycle Lifecycle `json:"lifecycle,omitempty"`

	// LifecycleGeneration is the metadata.generation of the spec that lifecycle was last read
	// from Git against. A full sync makes spec.lifecycle follow a lifecycle changed in Git
	// (another tool moved it) only while spec is unchanged since: a user's newer intent is never
	// overwritten by a move the manager made for an older one and had not recorded yet.
	// +optional
	LifecycleGeneration int64 `json:"lifecycleGeneration,omitempty"`

	// Ref is the Git ref that holds the revision.
	// +optional
	Ref string `json:"ref,omitempty"`

	// Commit the ref pointed at when the content was last read.
	// +optional
	Commit string `json:"commit,omitempty"`

	// Tree is the Git tree hash of the package directory at Commit; the content ConfigMap is
	// rewritten only when it changes.
	// +optional
	Tree string `json:"tree,omitempty"`

	// Upstream the package was cloned from (from its Kptfile).
	// +optional
	Upstream *Upstream `json:"upstream,omitempty"`

	// UpstreamLock pins the upstream commit (from its Kptfile).
	// +optional
	UpstreamLock *Upstream `json:"upstreamLock,omitempty"`

	// UpstreamRevision names the registered PackageRevision the package was cloned from or last
	// upgraded to (found from upstreamLock).
	// +optional
	UpstreamRevision string `json:"upstreamRevision,omitempty"`

	// LatestUpstreamRevision names the newest published revision of that upstream package;
	// when it is not UpstreamRevision an upgrade is available (label kpo.dev/upstream-behind).
	// +optional
	LatestUpstreamRevision string `json:"latestUpstreamRevision,omitempty"`

	// PublishedBy is the verified identity of the approver.
	// +optional
	PublishedBy string `json:"publishedBy,omitempty"`

	// PublishedAt is when the revision was published.
	// +optional
	PublishedAt *metav1.Time `json:"publishedAt,omitempty"`

	// ResourcesRef names the ConfigMap holding the package's files.
	// +optional
	ResourcesRef *corev1.LocalObjectReference `json:"resourcesRef,omitempty"`

	// ContentError says why the package's files are not in a ConfigMap (too large, or paths
	// that cannot be ConfigMap keys).
	// +optional
	ContentError *ContentError `json:"contentError,omitempty"`

	// ContentWarning says what is wrong with the files last read from Git when they are
	// synced but not valid (reason InvalidKptfile or InvalidContent; the message names each
	// file and its error). The ContentValid condition mirrors it. Unset when they are valid.
	// +optional
	ContentWarning *ContentError `json:"contentWarning,omitempty"`

	// RenderResults of the last render.
	// +optional
	RenderResults []RenderResult `json:"renderResults,omitempty"`

	// Guardrails is the outcome of the Repository's spec.guardrails on the draft's committed
	// content, evaluated once per draft commit and guardrails digest while the revision is a
	// Draft (kept afterwards). Condition GuardrailsPassed mirrors it.
	// +optional
	Guardrails *GuardrailsResult `json:"guardrails,omitempty"`

	// DownstreamValidation, on a Proposed revision that PackageVariants follow, says how each
	// of their downstream packages would upgrade to it (merge, render, guardrails). Condition
	// DownstreamsValidated summarises it; removed when the revision is no longer Proposed.
	// +optional
	DownstreamValidation *DownstreamValidation `json:"downstreamValidation,omitempty"`

	// Deployments are the GitOps objects in the cluster that last applied this revision (Flux
	// Kustomizations of a GitRepository on the revision's repository, tag and package
	// directory; Config Sync RootSyncs and RepoSyncs), with their health. Set on published
	// revisions of deployment repositories, when those kinds are served.
	// +listType=atomic
	// +optional
	Deployments []Deployment `json:"deployments,omitempty"`

	// Conflicts are the fields an upgrade with conflicts (spec.upgrade.allowConflicts of a
	// PackageDraft) could not merge, and how each was resolved. Owned by the Repository sync:
	// derived from the draft's Git history (the Kpo-Conflict trailers of the commit that
	// started it, the Kpo-Resolved trailers of later ones), so a resync rebuilds it.
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Conflicts []MergeConflict `json:"conflicts,omitempty"`
}

// Deployment is one GitOps object that applied a published revision, as it reports it.
type Deployment struct {
	// Kind is Kustomization (Flux), RootSync or RepoSync (Config Sync).
	Kind string `json:"kind"`
	// Namespace and Name of the object.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Revision it last applied, as it names it (Flux: <tag>@sha1:<commit>; Config Sync: the
	// commit).
	// +optional
	Revision string `json:"revision,omitempty"`
	// Ready is the status of its readiness: True, False or Unknown (Flux's Ready condition;
	// Config Sync's Syncing condition done without errors).
	Ready metav1.ConditionStatus `json:"ready"`
	// Message says why it is not Ready.
	// +optional
	Message string `json:"message,omitempty"`
}

// MergeConflict is one field both the local package and upstream changed, differently.
type MergeConflict struct {
	// ID is a short hash of file, resource and field: the same conflict has the same id after
	// any resync.
	// +kubebuilder:validation:MaxLength=16
	ID string `json:"id"`
	// File is the file's path relative to the package root.
	// +kubebuilder:validation:MaxLength=512
	File string `json:"file"`
	// APIVersion, Kind, Namespace and Name identify the resource.
	// +kubebuilder:validation:MaxLength=253
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:MaxLength=253
	Kind string `json:"kind"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Field is the field path, e.g. spec.template.spec.containers[name=app].image.
	// +kubebuilder:validation:MaxLength=1024
	Field string `json:"field"`
	// Local is the local value in YAML flow style, truncated to 256 characters; empty when
	// the local package deleted the field.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Local string `json:"local,omitempty"`
	// Upstream is upstream's value, like Local; the draft holds it until the conflict is
	// resolved.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Upstream string `json:"upstream,omitempty"`
	// Resolution is how the conflict was resolved: local or upstream (chosen), edited (the
	// field was edited); empty while unresolved.
	// +kubebuilder:validation:Enum="";local;upstream;edited
	// +optional
	Resolution string `json:"resolution,omitempty"`
}

// PackageRevision is one revision of one package: a draft or proposed branch, a published tag,
// or a deletion-proposed branch. Only the manager creates them; users start drafts with
// PackageDraft and move revisions through their lifecycle by editing spec.lifecycle.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rpkg,categories=kpo
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.spec.lifecycle) || !has(self.spec.lifecycle) || self.spec.lifecycle == oldSelf.spec.lifecycle || (oldSelf.spec.lifecycle == 'Draft' && self.spec.lifecycle == 'Proposed') || (oldSelf.spec.lifecycle == 'Proposed' && (self.spec.lifecycle == 'Draft' || self.spec.lifecycle == 'Published')) || (oldSelf.spec.lifecycle == 'Published' && self.spec.lifecycle == 'DeletionProposed') || (oldSelf.spec.lifecycle == 'DeletionProposed' && self.spec.lifecycle == 'Published') || (oldSelf.spec.lifecycle == 'Published' && self.spec.lifecycle == 'Proposed' && has(oldSelf.status) && has(oldSelf.status.lifecycle) && oldSelf.status.lifecycle == 'Proposed')",message="illegal lifecycle transition: allowed are Draft→Proposed, Proposed→Draft, Proposed→Published, Published→DeletionProposed, DeletionProposed→Published, and Published→Proposed while the approval is not carried out yet (status.lifecycle Proposed)"
// +kubebuilder:selectablefield:JSONPath=`.spec.repository`
// +kubebuilder:selectablefield:JSONPath=`.spec.packageName`
// +kubebuilder:selectablefield:JSONPath=`.spec.lifecycle`
// +kubebuilder:printcolumn:name="Package",type=string,JSONPath=`.spec.packageName`
// +kubebuilder:printcolumn:name="Workspace",type=string,JSONPath=`.spec.workspaceName`
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.status.revision`
// +kubebuilder:printcolumn:name="Latest",type=string,JSONPath=`.metadata.labels.kpo\.dev/latest-revision`
// +kubebuilder:printcolumn:name="Lifecycle",type=string,JSONPath=`.spec.lifecycle`
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Upstream",type=string,JSONPath=`.status.upstreamRevision`,priority=1
// +kubebuilder:printcolumn:name="Latest-Upstream",type=string,JSONPath=`.status.latestUpstreamRevision`,priority=1
// +kubebuilder:printcolumn:name="Behind",type=string,JSONPath=`.metadata.labels.kpo\.dev/upstream-behind`,priority=1
// +kubebuilder:printcolumn:name="Guardrails",type=string,JSONPath=`.status.conditions[?(@.type=="GuardrailsPassed")].reason`,priority=1
// +kubebuilder:printcolumn:name="Downstreams",type=string,JSONPath=`.status.downstreamValidation.summary`,priority=1
// +kubebuilder:printcolumn:name="Deployed-By",type=string,JSONPath=`.status.deployments[*].name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PackageRevision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PackageRevisionSpec   `json:"spec,omitempty"`
	Status PackageRevisionStatus `json:"status,omitempty"`
}

// GetConditions returns the status conditions.
func (r *PackageRevision) GetConditions() []metav1.Condition { return r.Status.Conditions }

// SetConditions replaces the status conditions.
func (r *PackageRevision) SetConditions(c []metav1.Condition) { r.Status.Conditions = c }

// PackageRevisionList is a list of PackageRevisions.
// +kubebuilder:object:root=true
type PackageRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PackageRevision `json:"items"`
}

func init() {
	SchemeBuilder.Register(knownTypes(&PackageRevision{}, &PackageRevisionList{}))
}
