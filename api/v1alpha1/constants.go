package v1alpha1

import "time"

// Labels the manager puts on the objects it owns. Users select with them; they cannot set
// kpo.dev/latest-revision themselves (admission policy).
const (
	// RepositoryLabel names the Repository a PackageRevision or content ConfigMap belongs to.
	RepositoryLabel = "kpo.dev/repository"
	// PackageLabel holds the package path with "/" as "." (or a hash when too long for a label).
	PackageLabel = "kpo.dev/package"
	// LatestRevisionLabel is "true" on the newest published revision of each package.
	LatestRevisionLabel = "kpo.dev/latest-revision"
	// ContentLabel marks a ConfigMap as the content of the PackageRevision of the same name.
	ContentLabel = "kpo.dev/content"
	// DeploymentLabel is "true" on the PackageRevisions of a Repository with spec.deployment:
	// `kubectl get rpkg -l kpo.dev/deployment=true` lists the deployment-ready packages.
	DeploymentLabel = "kpo.dev/deployment"
	// UpstreamBehindLabel is "true" on a PackageRevision whose upstream package has a newer
	// published revision than the one it is based on: `kubectl get rpkg -l
	// kpo.dev/upstream-behind=true` lists the downstreams to upgrade.
	UpstreamBehindLabel = "kpo.dev/upstream-behind"
	// DraftLabel on a PackageRevision names the PackageDraft that produced it. Only the manager
	// sets it (admission policy), after checking the Kpo-Draft trailer of the draft's first
	// commit in Git: a label cannot make a PackageDraft adopt someone else's revision.
	DraftLabel = "kpo.dev/draft"
	// LifecycleLabel on a content ConfigMap mirrors its PackageRevision's lifecycle, so the
	// admission policy can keep all but Draft content read-only.
	LifecycleLabel = "kpo.dev/lifecycle"
	// PackageVariantLabel on a PackageRevision names the PackageVariant that owns it (created
	// it through its PackageDrafts, or adopted it). Only the manager sets it (admission policy).
	PackageVariantLabel = "kpo.dev/package-variant"
	// ShardLabel is the shard key. Users set it on a Repository to choose the manager instance
	// that serves it (the instance whose --watch-label-selector matches it); the manager copies
	// it to the Repository's PackageRevisions and content ConfigMaps, so each instance caches
	// only its own shard's objects. Users cannot set it on a PackageRevision (admission policy).
	ShardLabel = "kpo.dev/shard"
	// PackageVariantSetLabel on a PackageVariant names the PackageVariantSet that created it
	// (next to the set's controller ownerReference, which is what ownership is decided on).
	PackageVariantSetLabel = "kpo.dev/package-variant-set"
)

// Annotations users and the manager set.
const (
	// SyncRequestedAnnotation asks for an immediate sync of a Repository. Any new value
	// triggers one; status.lastHandledSyncRequest echoes the value once it is done.
	SyncRequestedAnnotation = "kpo.dev/sync-requested"
	// ApprovedByAnnotation is stamped by the admission policy with the verified identity of
	// the user who moved a PackageRevision from Proposed to Published.
	ApprovedByAnnotation = "kpo.dev/approved-by"
	// PushOnRenderFailureAnnotation on a PackageRevision commits content even when render fails.
	PushOnRenderFailureAnnotation = "kpo.dev/push-on-render-failure"
	// ApprovedCommitAnnotation is stamped by the admission policy, next to ApprovedByAnnotation,
	// with the commit the approver could see (status.commit) when approving. The manager
	// publishes exactly that commit; a proposal that moved since is refused and stays Proposed
	// (reason ApprovedContentChanged). Empty on a PackageDraft approved when created: the
	// approval then covers the commit the PackageDraft creates, nothing edited after it.
	ApprovedCommitAnnotation = "kpo.dev/approved-commit"
	// EditedByAnnotation on a content ConfigMap lists, comma-separated, the verified identities
	// that edited it since the manager's last commit: the admission policy appends the requesting
	// user to it on every content edit, and the manager writes them as the author and
	// co-authors of the edit commit, then clears it.
	EditedByAnnotation = "kpo.dev/edited-by"
	// ContentRequestedAnnotation on a published PackageRevision asks for its content in a
	// ConfigMap: drafts and proposals always have one, published revisions (immutable, and in
	// Git) only on request. The value is the time of the request (RFC 3339, e.g. `date -u
	// +%Y-%m-%dT%H:%M:%SZ`); the manager writes the ConfigMap (status.resourcesRef names it) and
	// removes it ContentRequestTTL after that time. A time in the future is refused.
	ContentRequestedAnnotation = "kpo.dev/content-requested"
	// ContentCommitAnnotation on a content ConfigMap records the Git commit it was read from.
	ContentCommitAnnotation = "kpo.dev/commit"
	// ContentDigestAnnotation on a content ConfigMap is the digest of the files the manager
	// wrote; content whose digest differs was edited by a user and is committed.
	ContentDigestAnnotation = "kpo.dev/digest"
	// ApprovalPolicyAnnotation on a PackageVariant lets the manager publish the variant's
	// drafts (Nephio's annotation): "initial" publishes the first revision of the downstream
	// package once its readiness gates are True, "always" every revision. Setting it, or
	// changing the spec of a variant that has it, needs the approve permission (admission
	// policy kpo-package-variant-approval), which stamps ApprovedByAnnotation with the
	// identity that did: the publisher recorded on what the variant publishes.
	ApprovalPolicyAnnotation = "approval.nephio.org/policy"
	// InjectedResourceNameAnnotation on an injection point names the in-cluster object
	// injected into it (kpt's annotation).
	InjectedResourceNameAnnotation = "kpt.dev/injected-resource-name"
	// ConfigInjectionAnnotation marks a resource of a package as an injection point: required
	// or optional (kpt's annotation).
	ConfigInjectionAnnotation = "kpt.dev/config-injection"
)

// The values of ApprovalPolicyAnnotation.
const (
	// ApprovalPolicyInitial publishes the first revision once its readiness gates are True.
	ApprovalPolicyInitial = "initial"
	// ApprovalPolicyAlways publishes every revision once its readiness gates are True.
	ApprovalPolicyAlways = "always"
)

// ContentRequestTTL is how long the content ConfigMap of a published revision stays after the
// time its ContentRequestedAnnotation names.
const ContentRequestTTL = 15 * time.Minute

// ManagerUsername is the identity the admission policies exempt: the manager's service
// account in a cluster install, and the same username under `make run` and envtest.
const ManagerUsername = "system:serviceaccount:kpo-system:kpo-controller-manager"

// Finalizers.
const (
	// RepositoryFinalizer removes a Repository's PackageRevisions and ConfigMaps (never Git
	// data) before the Repository goes away.
	RepositoryFinalizer = "kpo.dev/repository-cleanup"
	// PackageRevisionFinalizer removes a deleted revision's refs from Git: the branch of a
	// draft or proposal, the tag and branch of a revision proposed for deletion.
	PackageRevisionFinalizer = "kpo.dev/packagerevision-cleanup"
	// PackageDraftFinalizer abandons the draft a deleted PackageDraft produced while it is
	// still a Draft.
	PackageDraftFinalizer = "kpo.dev/packagedraft-cleanup"
	// PackageVariantFinalizer applies a deleted PackageVariant's deletionPolicy to its
	// downstream revisions.
	PackageVariantFinalizer = "kpo.dev/packagevariant-cleanup"
)

// Condition types.
const (
	// ReadyCondition summarises an object: True when the last reconcile of the current
	// generation succeeded. Every kind has it, so `kubectl wait --for=condition=Ready` works.
	ReadyCondition = "Ready"
	// RenderedCondition says whether the draft's content rendered through its Kptfile pipeline.
	RenderedCondition = "Rendered"
	// StalledCondition is True when an object cannot go on without a change by the user: on a
	// PackageVariant an invalid spec, a downstream it may not adopt, a merge conflict (as
	// Porch's); on a PackageDraft a refusal (a workspace taken, a source missing, an approval
	// refused for good). A PackageDraft that is not Ready and not Stalled is still under way.
	StalledCondition = "Stalled"
)

// Condition reasons.
const (
	// SyncedReason: the Repository's objects equal what Git holds.
	SyncedReason = "Synced"
	// ProgressingReason: work for the current generation is under way.
	ProgressingReason = "Progressing"
	// AuthenticationFailedReason: the Git server refused the credentials (or their absence).
	AuthenticationFailedReason = "AuthenticationFailed"
	// RepositoryNotFoundReason: the Git server has no repository at the URL.
	RepositoryNotFoundReason = "RepositoryNotFound"
	// RepositoryUnreachableReason: the Git server could not be reached (DNS, connection, TLS).
	RepositoryUnreachableReason = "RepositoryUnreachable"
	// BranchNotFoundReason: the registered branch does not exist and createBranch is false.
	BranchNotFoundReason = "BranchNotFound"
	// SecretNotFoundReason: spec.git.secretRef names a Secret that does not exist.
	SecretNotFoundReason = "SecretNotFound"
	// InvalidCredentialsReason: the Secret lacks the keys a credential needs.
	InvalidCredentialsReason = "InvalidCredentials"
	// GitErrorReason: any other Git failure; the message says what happened.
	GitErrorReason = "GitError"
	// UpToDateReason: a PackageRevision equals its Git ref.
	UpToDateReason = "UpToDate"
	// PackageTooLargeReason: the package's files do not fit in one ConfigMap.
	PackageTooLargeReason = "PackageTooLarge"
	// InvalidContentReason: the package's files cannot be stored as ConfigMap keys, or edited
	// content is not valid (YAML, Kptfile, paths); nothing was committed.
	InvalidContentReason = "InvalidContent"
	// TransitionFailedReason: a lifecycle change could not be carried out in Git.
	TransitionFailedReason = "TransitionFailed"
	// RepositoryNotReadyReason: the Repository a revision or draft names is missing or failing.
	RepositoryNotReadyReason = "RepositoryNotReady"
	// CreatedReason: a PackageDraft produced its draft revision.
	CreatedReason = "Created"
	// DuplicateWorkspaceReason: the package already has a revision with this workspace.
	DuplicateWorkspaceReason = "DuplicateWorkspace"
	// PackageExistsReason: init or clone onto a package that exists (use copy).
	PackageExistsReason = "PackageExists"
	// NestedPackageReason: the package path is inside another package, or contains one.
	NestedPackageReason = "NestedPackage"
	// SourceNotFoundReason: the revision or Git location a draft copies from does not exist.
	SourceNotFoundReason = "SourceNotFound"
	// SourceNotPublishedReason: copy or clone from a revision that is not published.
	SourceNotPublishedReason = "SourceNotPublished"
	// UnsupportedSourceReason: a draft source this version cannot build yet.
	UnsupportedSourceReason = "UnsupportedSource"
	// RenderSucceededReason: the Kptfile pipelines ran and their output was committed.
	RenderSucceededReason = "RenderSucceeded"
	// FunctionFailedReason: a function of a pipeline failed; nothing was committed.
	FunctionFailedReason = "FunctionFailed"
	// InvalidKptfileReason: a Kptfile of the package is not valid kpt.dev/v1.
	InvalidKptfileReason = "InvalidKptfile"
	// ImageNotAllowedReason: a function image is neither built in nor allowed to run as a Job.
	ImageNotAllowedReason = "ImageNotAllowed"
	// TimeoutReason: a function did not finish in time.
	TimeoutReason = "Timeout"
	// MergeConflictReason: an upgrade met changes it cannot merge; the message lists them.
	MergeConflictReason = "MergeConflict"
	// LocalChangesReason: a fast-forward upgrade of a package that was changed locally.
	LocalChangesReason = "LocalChanges"
	// LifecycleConflictReason: the declared lifecycle cannot be reached from the current one.
	LifecycleConflictReason = "LifecycleConflict"
	// ApprovedContentChangedReason: the proposal moved after it was approved; nothing was
	// published. Withdraw the approval (spec.lifecycle: Proposed), review, and approve again.
	ApprovedContentChangedReason = "ApprovedContentChanged"
	// SelfApprovalForbiddenReason: the repository forbids self-approval and the approver edited
	// the revision; another approver must publish it.
	SelfApprovalForbiddenReason = "SelfApprovalForbidden"
	// ContentPendingReason: the content ConfigMap holds an edit that is not committed yet (or
	// the ConfigMap and the Git head disagree); the revision is not Ready until they agree.
	ContentPendingReason = "ContentPending"
	// InvalidContentRequestReason: the kpo.dev/content-requested annotation is not a time in
	// RFC 3339 at or before now; no content ConfigMap is written for it.
	InvalidContentRequestReason = "InvalidContentRequest"
	// InvalidSpecReason: a PackageVariant asks for something kpo refuses (a manager-owned label
	// or annotation, a reserved package-context key); the message names it.
	InvalidSpecReason = "InvalidSpec"
	// UpstreamNotFoundReason: the PackageVariant's upstream revision is not a published
	// PackageRevision (yet).
	UpstreamNotFoundReason = "UpstreamNotFound"
	// DownstreamNotOwnedReason: the downstream package exists and no PackageVariant owns it;
	// set adoptionPolicy: adoptExisting to take it over.
	DownstreamNotOwnedReason = "DownstreamNotOwned"
	// DownstreamOwnedElsewhereReason: another PackageVariant owns the downstream package.
	DownstreamOwnedElsewhereReason = "DownstreamOwnedElsewhere"
	// InjectionFailedReason: the package's injection points cannot be filled (an invalid
	// kpt.dev/config-injection value, ambiguous injection points).
	InjectionFailedReason = "InjectionFailed"
	// WaitingForDraftReason: the variant's draft is being created, edited or rendered.
	WaitingForDraftReason = "WaitingForDraft"
	// DraftBehindUpstreamReason: the variant's draft or proposal is based on another upstream
	// revision than the spec asks for; publish or delete it and the variant upgrades.
	DraftBehindUpstreamReason = "DraftBehindUpstream"
	// InvalidTemplateReason: a PackageVariantSet's template has a CEL expression that does not
	// compile or evaluate, or renders a variant kpo refuses; the message names the field and the
	// expression. None of the set's variants is changed until it is fixed.
	InvalidTemplateReason = "InvalidTemplate"
	// VariantNotOwnedReason: a PackageVariant of the name the set would give a variant exists
	// and is not the set's; the set leaves it alone. Delete or rename it.
	VariantNotOwnedReason = "VariantNotOwned"
	// WaitingForVariantsReason: some of a set's PackageVariants are not Ready yet.
	WaitingForVariantsReason = "WaitingForVariants"
	// RolloutInProgressReason: a set moves its variants to a new upstream revision in waves.
	RolloutInProgressReason = "RolloutInProgress"
	// TargetsUnavailableReason: the objects an objectSelector names cannot be listed (kind not
	// served, or the manager may not list them).
	TargetsUnavailableReason = "TargetsUnavailable"
)

// Conditions and reasons of the sync's per-package checks: one package that cannot be
// represented never fails a whole Repository, and content that is synced but not valid is
// reported instead of passing silently.
const (
	// PackagesValidCondition on a Repository says whether every package revision found in Git
	// could be synced. False (reason InvalidPackages) names each one that could not — a
	// package path too long for spec.packageName, a workspace name too long, a name that
	// collides with another package's, or an object the API server refused — with why and how
	// to fix it; those revisions get no PackageRevision (an existing one is removed), while
	// every other package is synced and Ready stays True (Synced). True (reason Valid) after
	// a sync that found no such revision. The condition is set by each full sync that got as
	// far as listing the packages; its observedGeneration says which generation that was.
	PackagesValidCondition = "PackagesValid"
	// ContentValidCondition on a PackageRevision says whether the files last read from Git
	// are valid (internal/content.Validate: YAML, every Kptfile, paths). False with reason
	// InvalidKptfile or InvalidContent is a warning: the revision is synced as Git holds it
	// (its ConfigMap exists and Ready is True), but rendering, upgrades or deployment will
	// likely fail until the files are fixed in Git or in a new draft; the message names each
	// file and its error (status.contentWarning holds the same). False with the reason of
	// status.contentError (InvalidContent, PackageTooLarge) when the files could not be
	// stored at all; Ready is then False too. Unknown (Progressing) before the first read.
	ContentValidCondition = "ContentValid"
)

// Conditions and reasons of guardrails (Repository spec.guardrails) and of proposed-change
// validation (status.downstreamValidation), both owned by the PackageRevision reconciler.
const (
	// GuardrailsPassedCondition on a PackageRevision says whether its draft content passed its
	// Repository's guardrails: True (Passed), False (GuardrailFailed: a guardrail reported
	// errors; GuardrailError: a guardrail could not run, e.g. an image that is not allowed).
	// Absent when the Repository has none. A draft proposed while it is False stays Draft, and
	// its Ready condition carries the same reason.
	GuardrailsPassedCondition = "GuardrailsPassed"
	// PassedReason: every guardrail passed.
	PassedReason = "Passed"
	// GuardrailFailedReason: a guardrail reported errors on the draft's content; the draft is
	// not proposed until its content is fixed (or the guardrails change).
	GuardrailFailedReason = "GuardrailFailed"
	// GuardrailErrorReason: a guardrail could not be evaluated (image neither built in nor
	// allowed, timeout, invalid config); the draft is not proposed until the Repository's
	// guardrails are fixed.
	GuardrailErrorReason = "GuardrailError"
	// DownstreamsValidatedCondition on a Proposed revision says whether every downstream a
	// PackageVariant ties to its package would upgrade to it cleanly: True (AllClean), False
	// (DownstreamsFailing) with the summary as message. Absent when no PackageVariant follows
	// the package.
	DownstreamsValidatedCondition = "DownstreamsValidated"
	// AllCleanReason: every downstream upgrades cleanly to the proposal.
	AllCleanReason = "AllClean"
	// DownstreamsFailingReason: some downstream would conflict or fail render or guardrails.
	DownstreamsFailingReason = "DownstreamsFailing"
)

// Results of a downstream's upgrade to a proposal (status.downstreamValidation.results).
const (
	// DownstreamClean: the upgrade merges and renders, and passes the guardrails.
	DownstreamClean = "Clean"
	// DownstreamConflict: the three-way merge meets local changes to the same fields.
	DownstreamConflict = "Conflict"
	// DownstreamRenderFailed: the merged package fails its pipeline (validators included).
	DownstreamRenderFailed = "RenderFailed"
	// DownstreamGuardrailFailed: the merged package fails the downstream repository's guardrails.
	DownstreamGuardrailFailed = "GuardrailFailed"
	// DownstreamError: the upgrade could not be tried (content unreadable, strategy refused).
	DownstreamError = "Error"
)

// Reasons of PackagesValid and ContentValid.
const (
	// ValidReason: PackagesValid or ContentValid is True.
	ValidReason = "Valid"
	// InvalidPackagesReason: some package revisions found in Git could not be synced; the
	// PackagesValid message names them.
	InvalidPackagesReason = "InvalidPackages"
)

// Limits of a PackageRevision's names; they equal the MaxLength markers of
// PackageRevisionSpec, so the sync can refuse a package with a message that says how to fix
// it before the API server refuses its object.
const (
	// MaxPackageNameLength bounds spec.packageName: the package path below the directory.
	MaxPackageNameLength = 200
	// MaxWorkspaceNameLength bounds spec.workspaceName.
	MaxWorkspaceNameLength = 63
)

// Upgrades with conflicts (spec.upgrade.allowConflicts of a PackageDraft).
const (
	// ConflictsResolvedCondition on a PackageRevision created by an upgrade with conflicts:
	// False (UnresolvedConflicts) while any of status.conflicts is unresolved, which keeps the
	// draft from being proposed; True (ConflictsResolved) once every one is. Absent on a
	// revision that never had conflicts.
	ConflictsResolvedCondition = "ConflictsResolved"
	// UnresolvedConflictsReason: conflicts of an upgrade are not resolved yet; the message
	// names how many and the first ones. A proposal is refused with this reason too.
	UnresolvedConflictsReason = "UnresolvedConflicts"
	// ConflictsResolvedReason: every conflict of the upgrade is resolved.
	ConflictsResolvedReason = "ConflictsResolved"
	// InvalidConflictResolutionReason: the ResolveConflictsAnnotation is not valid (not a JSON
	// object, an unknown conflict id, a choice other than local or upstream); nothing was
	// written.
	InvalidConflictResolutionReason = "InvalidConflictResolution"

	// ResolveConflictsAnnotation on a Draft PackageRevision chooses a side per conflict, as a
	// JSON object from conflict id (status.conflicts[].id) to "local" or "upstream", e.g.
	// {"3f2a9c01de":"upstream","b71c0e55a2":"local"}. The manager sets each field to the
	// chosen value in one commit on the draft branch, authored by ResolvedByAnnotation's
	// identity, and then removes the annotation. Ids already resolved are skipped, so applying
	// it twice is harmless.
	ResolveConflictsAnnotation = "kpo.dev/resolve-conflicts"
	// ResolvedByAnnotation is stamped by the admission policy kpo-resolve-conflicts-stamp with
	// the verified identity of whoever set ResolveConflictsAnnotation, overwriting anything the
	// client sent; the resolution commit names it as its author.
	ResolvedByAnnotation = "kpo.dev/resolve-conflicts-by"

	// RebaseOntoAnnotation on a Draft PackageRevision asks the manager to rebase the draft onto
	// another published revision of its upstream package (a PackageRevision name): a three-way
	// merge of base = the draft's upstream (status.upstreamRevision), local = the draft's
	// content, upstream = the named revision, committed to the draft branch with its conflicts
	// recorded as an upgrade with allowConflicts records them. The manager removes the
	// annotation once the draft's upstreamLock is the named revision's commit. A draft with
	// unresolved conflicts is not rebased: resolve them first.
	RebaseOntoAnnotation = "kpo.dev/rebase-onto"
	// InvalidRebaseReason: the RebaseOntoAnnotation cannot be carried out (not a Draft, no
	// known upstream, a target that is not a published revision of the same upstream package);
	// nothing was written.
	InvalidRebaseReason = "InvalidRebase"

	// ConflictLocal and ConflictUpstream are the choices of a conflict's resolution;
	// ConflictEdited records a conflict resolved by an edit of its field.
	ConflictLocal    = "local"
	ConflictUpstream = "upstream"
	ConflictEdited   = "edited"

	// MaxRecordedConflicts bounds the conflicts an upgrade with conflicts records; one with
	// more is refused (MergeConflict) as it is without allowConflicts.
	MaxRecordedConflicts = 100
)
