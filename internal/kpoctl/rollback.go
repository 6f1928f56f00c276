package kpoctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/lifecycle"
)

type rollbackOptions struct {
	to        string
	workspace string
	downstreamScope
}

func newRpkgRollbackCommand(o *globalOptions) *cobra.Command {
	r := &rollbackOptions{}
	cmd := &cobra.Command{
		Use:   "rollback [PACKAGE_REVISION | --all-downstreams UPSTREAM]",
		Short: "Start drafts that bring back an older published revision of packages",
		Long: `Roll a package back: start a new draft of it that is a copy of an older published revision
(as rpkg copy does), to propose and approve like any draft. Git history is never rewritten: the
rollback is published as the next revision.

PACKAGE_REVISION names the package by any of its revisions; what is rolled back is its latest
published revision. --to picks the revision to go back to, by number or name (default: the
published revision before the latest). The draft's workspace is --workspace, by default
rollback-v<LATEST>-to-v<TO>.

With --all-downstreams UPSTREAM, roll back every downstream package of the upstream package
UPSTREAM names: each package whose latest published revision is based on a revision of that
upstream package (status.upstreamRevision) gets a copy of its own previous published revision
(the highest below its latest). When UPSTREAM is a published revision, only the downstreams
based on exactly that revision are rolled back (undo an upgrade to it); with any other revision
of the package (such as UPSTREAM.main), all of them are. --repository and --selector (-l)
narrow the downstreams. A downstream with no earlier published revision is skipped, and so is
one whose rollback an existing PackageDraft already requests, so running the command again
creates nothing twice. Failures are reported per downstream and make the command fail.`,
		Example: `  # Bring back the revision before the latest of my-app
  kpoctl rpkg rollback deployments.my-app.main

  # ... or its revision 1
  kpoctl rpkg rollback deployments.my-app.main --to 1 --workspace back-to-1

  # Undo the upgrade of every downstream to blueprints.basens.v2
  kpoctl rpkg rollback --all-downstreams blueprints.basens.v2

  # ... of the deployment repository east only
  kpoctl rpkg rollback --all-downstreams blueprints.basens.v2 --repository east`,
		Args: optionalArg("PACKAGE_REVISION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			all, err := r.check(args, scopeUsage{
				acts:    "rolls back",
				single:  "a rollback of PACKAGE_REVISION stays in its repository",
				missing: "name the package to roll back by one of its revisions, or pass --all-downstreams UPSTREAM",
			})
			switch {
			case err != nil:
				return err
			case !all:
				return r.run(ctx, o, args[0])
			case r.to != "":
				return errors.New("--to applies to one package: with --all-downstreams every downstream goes back to its own previous published revision")
			}
			return r.runAll(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.to, "to", "", "Published revision to go back to, by number or name (default: the one before the latest).")
	f.StringVar(&r.workspace, "workspace", "", "Workspace name of the new draft (default rollback-v<LATEST>-to-v<TO>).")
	r.flags(f, "roll back")
	return cmd
}

func (r *rollbackOptions) run(ctx context.Context, o *globalOptions, name string) error {
	x, err := o.listRevisions(ctx)
	if err != nil {
		return err
	}
	pr, err := x.get(name)
	if err != nil {
		return err
	}
	pub := x.published(pr.Spec.Repository, pr.Spec.PackageName)
	if len(pub) == 0 {
		return fmt.Errorf("package %s of repository %s has no published revision: there is nothing to roll back", pr.Spec.PackageName, pr.Spec.Repository)
	}
	latest := pub[len(pub)-1]
	if isPublished(pr) && pr.Name != latest.Name && r.to == "" {
		return fmt.Errorf("%s is not the latest published revision of package %s (%s is): to go back to it, `kpoctl rpkg rollback %s --to %d`",
			pr.Name, pr.Spec.PackageName, latest.Name, latest.Name, pr.Status.Revision)
	}
	var to *kpov1.PackageRevision
	switch n, nerr := strconv.Atoi(r.to); {
	case r.to == "":
		if len(pub) < 2 {
			return fmt.Errorf("%s is the only published revision of package %s: there is nothing to roll back to", latest.Name, pr.Spec.PackageName)
		}
		to = pub[len(pub)-2]
	case nerr == nil:
		for _, c := range pub {
			if c.Status.Revision == n {
				to = c
			}
		}
		if to == nil {
			return fmt.Errorf("package %s of repository %s has no published revision %d: list them with `kpoctl rpkg get --repository %s --name %s --lifecycle Published`",
				pr.Spec.PackageName, pr.Spec.Repository, n, pr.Spec.Repository, pr.Spec.PackageName)
		}
	default:
		if to, err = x.get(r.to); err != nil {
			return err
		}
		if !samePackage(to, pr) || !isPublished(to) {
			return fmt.Errorf("--to %s is not a published revision of package %s of repository %s: a rollback copies an older revision of the same package",
				r.to, pr.Spec.PackageName, pr.Spec.Repository)
		}
	}
	if to.Name == latest.Name {
		return fmt.Errorf("%s is the latest published revision of package %s: there is nothing to roll back", to.Name, pr.Spec.PackageName)
	}
	return o.runBulk(ctx, x, []*bulkItem{r.item(latest, to)}, "rollbacks")
}

// item is the rollback of latest to a copy of to.
func (r *rollbackOptions) item(latest, to *kpov1.PackageRevision) *bulkItem {
	target, source := lifecycle.RollbackDraft(latest, to, r.workspace)
	return &bulkItem{
		subject: latest.Name,
		action:  fmt.Sprintf("rollback of %s to a copy of %s", latest.Name, to.Name),
		target:  draftTarget{repository: target.Repository, packageName: target.PackageName, workspace: target.Workspace},
		source:  source,
	}
}

// runAll rolls back every downstream of the upstream package to its previous published revision.
func (r *rollbackOptions) runAll(ctx context.Context, o *globalOptions) error {
	x, err := o.listRevisions(ctx)
	if err != nil {
		return err
	}
	up, err := x.get(r.allDownstreams)
	if err != nil {
		return err
	}
	ds, err := x.downstreams(up, r.filter)
	if err != nil {
		return err
	}
	var items []*bulkItem
	for _, d := range ds {
		if isPublished(up) && d.based.Name != up.Name {
			items = append(items, &bulkItem{subject: d.pr.Name, skip: fmt.Sprintf("based on %s, not %s", d.based.Name, up.Name)})
			continue
		}
		var prev *kpov1.PackageRevision
		for _, c := range x.published(d.pr.Spec.Repository, d.pr.Spec.PackageName) {
			if c.Status.Revision < d.pr.Status.Revision {
				prev = c
			}
		}
		if prev == nil {
			items = append(items, &bulkItem{subject: d.pr.Name, skip: "no earlier published revision to roll back to"})
			continue
		}
		items = append(items, r.item(d.pr, prev))
	}
	if len(items) == 0 {
		_, err := fmt.Fprintf(o.streams.Out, "No published downstream of package %s of repository %s%s.\n", up.Spec.PackageName, up.Spec.Repository, r.filter.describe())
		return err
	}
	return o.runBulk(ctx, x, items, "rollbacks")
}
