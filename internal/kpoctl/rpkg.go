package kpoctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/lifecycle"
)

func newRpkgCommand(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rpkg",
		Aliases: []string{"rpkgs", "packagerevision", "packagerevisions"},
		Short:   "Author, propose, approve and delete package revisions",
		Example: `  kpoctl rpkg init my-app --repository deployments --workspace first
  kpoctl rpkg pull deployments.my-app.first ./my-app
  kpoctl rpkg push deployments.my-app.first ./my-app
  kpoctl rpkg propose deployments.my-app.first
  kpoctl rpkg approve deployments.my-app.first`,
	}
	cmd.AddCommand(
		newRpkgGetCommand(o),
		newRpkgInitCommand(o), newRpkgCloneCommand(o), newRpkgCopyCommand(o), newRpkgUpgradeCommand(o), newRpkgResolveCommand(o), newRpkgRebaseCommand(o), newRpkgRollbackCommand(o),
		newRpkgPullCommand(o), newRpkgPushCommand(o),
		newLifecycleCommand(o, proposeTransition), newLifecycleCommand(o, approveTransition),
		newLifecycleCommand(o, rejectTransition), newLifecycleCommand(o, proposeDeleteTransition),
		newRpkgDelCommand(o), newRpkgDiffCommand(o),
	)
	return cmd
}

type rpkgGetOptions struct {
	all                                     bool
	packageName, workspace, lifecycle, repo string
	revision                                int
	latest                                  bool
}

func newRpkgGetCommand(o *globalOptions) *cobra.Command {
	g := &rpkgGetOptions{}
	cmd := &cobra.Command{
		Use:     "get [NAME]",
		Aliases: []string{"list"},
		Short:   "List package revisions",
		Example: `  # Every revision in the namespace
  kpoctl rpkg get

  # The latest published revision of package basens
  kpoctl rpkg get --name basens --latest

  # Drafts of repository deployments, as YAML
  kpoctl rpkg get --repository deployments --lifecycle Draft -o yaml`,
		Args: optionalArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&g.all, "all-namespaces", "A", false, "List the package revisions of every namespace.")
	f.StringVar(&g.packageName, "name", "", "Only revisions of this package (its path in the repository).")
	f.IntVar(&g.revision, "revision", 0, "Only revisions with this revision number (-1: the registered branch).")
	f.StringVar(&g.workspace, "workspace", "", "Only revisions with this workspace name.")
	f.BoolVar(&g.latest, "latest", false, "Only the latest published revision of each package.")
	f.StringVar(&g.lifecycle, "lifecycle", "", "Only revisions in this lifecycle: Draft, Proposed, Published or DeletionProposed.")
	f.StringVar(&g.repo, "repository", "", "Only revisions of this repository.")
	return cmd
}

func (g *rpkgGetOptions) run(cmd *cobra.Command, o *globalOptions, args []string) error {
	ctx := cmd.Context()
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	var items []kpov1.PackageRevision
	if len(args) == 1 {
		pr := &kpov1.PackageRevision{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: args[0]}, pr); err != nil {
			return apiError(kindPackageRevision, args[0], err)
		}
		items = append(items, *pr)
	} else {
		if g.lifecycle != "" {
			switch kpov1.Lifecycle(g.lifecycle) {
			case kpov1.LifecycleDraft, kpov1.LifecycleProposed, kpov1.LifecyclePublished, kpov1.LifecycleDeletionProposed:
			default:
				return fmt.Errorf("unknown lifecycle %q: use Draft, Proposed, Published or DeletionProposed", g.lifecycle)
			}
		}
		opts := []client.ListOption{}
		if g.all {
			o.ns = ""
		} else {
			opts = append(opts, client.InNamespace(ns))
		}
		labels := client.MatchingLabels{}
		if g.repo != "" {
			labels[kpov1.RepositoryLabel] = g.repo
		}
		if g.latest {
			labels[kpov1.LatestRevisionLabel] = "true"
		}
		if len(labels) > 0 {
			opts = append(opts, labels)
		}
		fields := client.MatchingFields{}
		if g.packageName != "" {
			fields["spec.packageName"] = g.packageName
		}
		if g.lifecycle != "" {
			fields["spec.lifecycle"] = g.lifecycle
		}
		if len(fields) > 0 {
			opts = append(opts, fields)
		}
		list := &kpov1.PackageRevisionList{}
		if err := c.List(ctx, list, opts...); err != nil {
			return fmt.Errorf("listing package revisions: %w", err)
		}
		revisionSet := cmd.Flags().Changed("revision")
		for _, pr := range list.Items {
			if g.workspace != "" && pr.Spec.WorkspaceName != g.workspace {
				continue
			}
			if revisionSet && pr.Status.Revision != g.revision {
				continue
			}
			items = append(items, pr)
		}
	}
	objs := make([]runtime.Object, 0, len(items))
	for i := range items {
		objs = append(objs, &items[i])
	}
	return o.printObjects(objs, len(args) == 1, func() *table { return rpkgTable(items, g.all, o.output == outputWide) })
}

// rpkgTable is the table of rpkg get; wide adds the upstream revision, the outcome of the
// repository's guardrails (GuardrailsPassed's reason), on a proposal that PackageVariants
// follow the summary of how their downstreams would upgrade to it, and on a published revision
// of a deployment repository the GitOps objects that deployed it (status.deployments).
func rpkgTable(items []kpov1.PackageRevision, withNamespace, wide bool) *table {
	t := &table{header: []string{"NAME", "PACKAGE", "WORKSPACE", "REVISION", "LATEST", "LIFECYCLE", "REPOSITORY"}}
	if wide {
		t.header = append(t.header, "UPSTREAM", "GUARDRAILS", "DOWNSTREAMS", "DEPLOYED-BY")
	}
	if withNamespace {
		t.header = append([]string{"NAMESPACE"}, t.header...)
	}
	for _, pr := range items {
		latest := "false"
		if pr.Labels[kpov1.LatestRevisionLabel] == "true" {
			latest = "true"
		}
		lifecycle := pr.Status.Lifecycle
		if lifecycle == "" {
			lifecycle = pr.Spec.Lifecycle
		}
		row := []string{pr.Name, pr.Spec.PackageName, pr.Spec.WorkspaceName, strconv.Itoa(pr.Status.Revision),
			latest, string(lifecycle), pr.Spec.Repository}
		if wide {
			row = append(row, orNone(pr.Status.UpstreamRevision), orNone(guardrailsColumn(pr)), orNone(downstreamsColumn(pr)),
				orNone(deployedByColumn(pr)))
		}
		if withNamespace {
			row = append([]string{pr.Namespace}, row...)
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// deployedByColumn lists the GitOps objects that deployed pr, Kind/namespace/name, with
// " (not ready)" on those whose Ready is not True.
func deployedByColumn(pr kpov1.PackageRevision) string {
	var names []string
	for _, d := range pr.Status.Deployments {
		n := d.Kind + "/" + d.Namespace + "/" + d.Name
		if d.Ready != metav1.ConditionTrue {
			n += " (not ready)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// guardrailsColumn is the reason of the GuardrailsPassed condition ("" without guardrails).
func guardrailsColumn(pr kpov1.PackageRevision) string {
	if c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.GuardrailsPassedCondition); c != nil {
		return c.Reason
	}
	return ""
}

// downstreamsColumn is the summary of a proposal's downstream validation.
func downstreamsColumn(pr kpov1.PackageRevision) string {
	if dv := pr.Status.DownstreamValidation; dv != nil {
		return dv.Summary
	}
	return ""
}

// orNone prints an empty cell as kubectl does.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// draftTarget is where a new draft goes: repository, package and workspace.
type draftTarget struct {
	repository, packageName, workspace string
}

// createDraft creates the PackageDraft for target with source, named like the revision it
// produces, waits for it and prints the revision's name. A draft that failed without producing a
// revision is deleted, so the same command can be run again once the cause is fixed.
func (o *globalOptions) createDraft(ctx context.Context, target draftTarget, source kpov1.PackageDraftSource) error {
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	name := discovery.RevisionName(target.repository, target.packageName, target.workspace)
	draft, err := lifecycle.NewDraft(ctx, c, ns, lifecycle.DraftTarget{Repository: target.repository, PackageName: target.packageName, Workspace: target.workspace}, source,
		func(ctx context.Context, old client.Object) error { return o.waitGone(ctx, kindPackageDraft, old) })
	switch {
	case errors.Is(err, lifecycle.ErrNoRepository):
		return fmt.Errorf("repository %s not found in namespace %s: register it with `kpoctl repo reg URL --name %s`, or pick the namespace with -n", target.repository, ns, target.repository)
	case errors.Is(err, lifecycle.ErrWorkspaceTaken):
		return fmt.Errorf("package %s already has workspace %s in repository %s (package revision %s): choose another --workspace",
			target.packageName, target.workspace, target.repository, name)
	case errors.Is(err, lifecycle.ErrDraftExists):
		return fmt.Errorf("packagedraft %s already exists: its revision was deleted or is being created; remove it with `kubectl delete packagedraft %s -n %s` or choose another --workspace", name, name, ns)
	case err != nil:
		return apiError(kindPackageDraft, name, err)
	}
	if !o.wait {
		return o.printChange(draft, name, "requested")
	}
	err = o.waitFor(ctx, "packagedraft "+name+" to create its revision", func(ctx context.Context) error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(draft), draft); err != nil {
			return err
		}
		return readyOutcome(kindPackageDraft, name, draft.Generation, draft.Status.Conditions)
	})
	var cerr *conditionError
	if errors.As(err, &cerr) && draft.Status.PackageRevision == "" {
		if derr := c.Delete(ctx, draft); derr == nil {
			cerr.Hint = "Nothing was created (the PackageDraft was removed): fix the cause and run the command again."
		}
	}
	if err != nil {
		return err
	}
	prName := draft.Status.PackageRevision
	pr := &kpov1.PackageRevision{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: prName}, pr); err != nil {
		return apiError(kindPackageRevision, prName, err)
	}
	return o.printChange(pr, prName, "created")
}

func newRpkgInitCommand(o *globalOptions) *cobra.Command {
	var t draftTarget
	src := &kpov1.InitSource{}
	cmd := &cobra.Command{
		Use:     "init PACKAGE",
		Short:   "Start a new package, as kpt pkg init does",
		Example: `  kpoctl rpkg init my-app --repository deployments --workspace first --description "My app"`,
		Args:    exactArgs(1, "PACKAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t.packageName = args[0]
			if err := t.require(); err != nil {
				return err
			}
			return o.createDraft(cmd.Context(), t, kpov1.PackageDraftSource{Init: src})
		},
	}
	t.flags(cmd, true)
	cmd.Flags().StringVar(&src.Description, "description", "", "Description of the package.")
	cmd.Flags().StringSliceVar(&src.Keywords, "keywords", nil, "Keywords of the package, comma-separated.")
	cmd.Flags().StringVar(&src.Site, "site", "", "Site (URL) of the package.")
	return cmd
}

func (t *draftTarget) flags(cmd *cobra.Command, withRepository bool) {
	if withRepository {
		cmd.Flags().StringVar(&t.repository, "repository", "", "Repository the new package revision is written to (required).")
	}
	cmd.Flags().StringVar(&t.workspace, "workspace", "", "Workspace name of the new package revision, unique per package (required).")
}

func (t *draftTarget) require() error {
	var missing []string
	if t.repository == "" {
		missing = append(missing, "--repository")
	}
	if t.workspace == "" {
		missing = append(missing, "--workspace")
	}
	if len(missing) > 0 {
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return fmt.Errorf("%s %s required: say where the new package revision goes", strings.Join(missing, " and "), verb)
	}
	return nil
}

func newRpkgCloneCommand(o *globalOptions) *cobra.Command {
	var t draftTarget
	var ref, directory, secretRef string
	cmd := &cobra.Command{
		Use:   "clone SOURCE PACKAGE",
		Short: "Start a new package from an upstream one, as kpt pkg get does",
		Long: `Start a new package from an upstream: a published package revision (by name), or a package
in any Git repository (a URL, with --ref and --directory). The Kptfile records the upstream.`,
		Example: `  # From a published revision of a registered repository
  kpoctl rpkg clone blueprints.basens.v1 my-app-ns --repository deployments --workspace first

  # From any Git repository
  kpoctl rpkg clone https://github.com/kptdev/kpt.git wordpress --directory package-examples/wordpress \
      --ref v1.0.0-beta.27 --repository deployments --workspace first`,
		Args: exactArgs(2, "SOURCE and PACKAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t.packageName = args[1]
			if err := t.require(); err != nil {
				return err
			}
			clone := &kpov1.CloneSource{}
			if strings.Contains(args[0], "://") {
				clone.Git = &kpov1.GitSource{Repo: args[0], Ref: ref, Directory: directory}
				if clone.Git.Ref == "" {
					clone.Git.Ref = "main"
				}
				if secretRef != "" {
					clone.Git.SecretRef = &kpov1.LocalReference{Name: secretRef}
				}
			} else {
				if ref != "" || directory != "" || secretRef != "" {
					return fmt.Errorf("--ref, --directory and --secret-ref apply to a Git URL source, not to package revision %s", args[0])
				}
				clone.UpstreamRef = &kpov1.LocalReference{Name: args[0]}
			}
			return o.createDraft(cmd.Context(), t, kpov1.PackageDraftSource{Clone: clone})
		},
	}
	t.flags(cmd, true)
	cmd.Flags().StringVar(&ref, "ref", "", "Branch, tag or commit of a Git URL source (default: main).")
	cmd.Flags().StringVar(&directory, "directory", "", "Directory of the package in a Git URL source.")
	cmd.Flags().StringVar(&secretRef, "secret-ref", "", "Secret with the credentials of a Git URL source.")
	return cmd
}

func newRpkgCopyCommand(o *globalOptions) *cobra.Command {
	var t draftTarget
	cmd := &cobra.Command{
		Use:     "copy SOURCE",
		Aliases: []string{"edit"},
		Short:   "Start a new revision of a package from a published one",
		Long: `Start a new draft of the same package from a published revision: the next version, or a
rollback when the source is older than the latest.`,
		Example: `  kpoctl rpkg copy deployments.my-app.v1 --workspace second`,
		Args:    exactArgs(1, "SOURCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			src := &kpov1.PackageRevision{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: args[0]}, src); err != nil {
				return apiError(kindPackageRevision, args[0], err)
			}
			t.repository, t.packageName = src.Spec.Repository, src.Spec.PackageName
			if err := t.require(); err != nil {
				return err
			}
			return o.createDraft(ctx, t, kpov1.PackageDraftSource{Copy: &kpov1.CopySource{SourceRef: kpov1.LocalReference{Name: src.Name}}})
		},
	}
	t.flags(cmd, false)
	return cmd
}

// A lifecycle transition of the lifecycle commands: the move (internal/lifecycle, shared with
// the web UI) and how the command presents it.
type transition struct {
	lifecycle.Transition
	use, short, example string
	aliases             []string
}

var (
	proposeTransition = transition{
		Transition: lifecycle.Propose, use: "propose", short: "Propose drafts for publication",
		example: `  kpoctl rpkg propose deployments.my-app.first`,
	}
	approveTransition = transition{
		Transition: lifecycle.Approve, use: "approve", short: "Publish proposed package revisions (needs the kpo-approver role)",
		example: `  kpoctl rpkg approve deployments.my-app.first`,
	}
	rejectTransition = transition{
		Transition: lifecycle.Reject, use: "reject", short: "Send proposals back to Draft, or keep revisions proposed for deletion",
		example: `  # A proposal goes back to Draft
  kpoctl rpkg reject deployments.my-app.first

  # A revision proposed for deletion stays Published
  kpoctl rpkg reject deployments.my-app.first`,
	}
	proposeDeleteTransition = transition{
		Transition: lifecycle.ProposeDelete, use: "propose-delete", aliases: []string{"propose-del"}, short: "Propose published revisions for deletion",
		example: `  kpoctl rpkg propose-delete deployments.my-app.first`,
	}
)

func newLifecycleCommand(o *globalOptions, t transition) *cobra.Command {
	return &cobra.Command{
		Use:     t.use + " PACKAGE_REVISION...",
		Aliases: t.aliases,
		Short:   t.short,
		Example: t.example,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, name := range args {
				if err := o.moveLifecycle(cmd.Context(), name, t); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
}

// packageRevision reads PackageRevision name of the current namespace, with the client and
// namespace it used; a failure is the API server's, worded for the user (apiError).
func (o *globalOptions) packageRevision(ctx context.Context, name string) (client.Client, string, *kpov1.PackageRevision, error) {
	c, ns, err := o.client()
	if err != nil {
		return nil, "", nil, err
	}
	pr := &kpov1.PackageRevision{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pr); err != nil {
		return nil, "", nil, apiError(kindPackageRevision, name, err)
	}
	return c, ns, pr, nil
}

func (o *globalOptions) moveLifecycle(ctx context.Context, name string, t transition) error {
	c, _, pr, err := o.packageRevision(ctx, name)
	if err != nil {
		return err
	}
	to, err := lifecycle.Plan(pr, t.Transition)
	if blocked := (*lifecycle.BlockedError)(nil); errors.As(err, &blocked) {
		return blockedError(t.Done, blocked)
	}
	if err != nil {
		return err
	}
	if err := lifecycle.Move(ctx, c, pr, to); err != nil {
		return apiError(kindPackageRevision, name, err)
	}
	if o.wait {
		err := o.waitFor(ctx, fmt.Sprintf("packagerevision %s to be %s", name, to), func(ctx context.Context) error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(pr), pr); err != nil {
				return err
			}
			if err := readyOutcome(kindPackageRevision, name, pr.Generation, pr.Status.Conditions); err != nil {
				return err
			}
			if pr.Status.Lifecycle != to {
				return errNotYet(fmt.Sprintf("status.lifecycle is %s", pr.Status.Lifecycle))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return o.printChange(pr, name, t.Done)
}

// blockedError words a move the manager's conditions block (failed Ready, failed
// guardrails) with what to do next.
func blockedError(done string, blocked *lifecycle.BlockedError) *conditionError {
	name := blocked.Name
	cerr := &conditionError{Kind: kindPackageRevision, Name: name, Condition: blocked.Condition}
	switch {
	case blocked.Condition.Type != kpov1.GuardrailsPassedCondition:
		cerr.Hint = fmt.Sprintf("Not %s: fix the revision first (`kpoctl rpkg pull %s DIR`, edit, `kpoctl rpkg push %s DIR`).", done, name, name)
	case blocked.Condition.Reason == kpov1.GuardrailErrorReason:
		cerr.Hint = "Not proposed: a guardrail of the repository cannot run; ask whoever administers the Repository to fix its spec.guardrails."
	default:
		cerr.Hint = fmt.Sprintf("Not proposed: fix the content (`kpoctl rpkg pull %s DIR`, edit, `kpoctl rpkg push %s DIR`) until the guardrails pass.", name, name)
	}
	return cerr
}

func newRpkgDelCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "del PACKAGE_REVISION...",
		Aliases: []string{"delete"},
		Short:   "Delete package revisions (their Git branches or tags)",
		Long: `Delete package revisions: a Draft or Proposed revision's branch, or the tag of a revision
proposed for deletion (published revisions are deleted only after ` + "`rpkg propose-delete`" + `, by an
approver). The PackageDraft that produced a revision is removed with it.`,
		Example: `  kpoctl rpkg del deployments.my-app.second
  kpoctl rpkg propose-delete deployments.my-app.first && kpoctl rpkg del deployments.my-app.first`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, name := range args {
				if err := o.deleteRevision(cmd.Context(), name); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
}

func (o *globalOptions) deleteRevision(ctx context.Context, name string) error {
	c, _, pr, err := o.packageRevision(ctx, name)
	if err != nil {
		return err
	}
	if err := lifecycle.Delete(ctx, c, pr); err != nil {
		return apiError(kindPackageRevision, name, err)
	}
	if o.wait {
		if err := o.waitGone(ctx, kindPackageRevision, pr); err != nil {
			return err
		}
	}
	if err := lifecycle.DeleteDraftOf(ctx, c, pr); err != nil {
		return err
	}
	return o.printChange(nil, name, "deleted")
}
