package kpoctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/lifecycle"
)

type upgradeOptions struct {
	t        draftTarget
	revision int
	strategy string
	discover string
	// allowConflicts creates drafts with their conflicts recorded instead of refusing them.
	allowConflicts bool
	downstreamScope
}

func newRpkgUpgradeCommand(o *globalOptions) *cobra.Command {
	u := &upgradeOptions{}
	cmd := &cobra.Command{
		Use:   "upgrade [PACKAGE_REVISION | --all-downstreams UPSTREAM]",
		Short: "Start drafts that move downstream packages to a newer upstream revision",
		Long: `Start a new draft of a downstream package that merges a newer revision of its upstream, as
kpt pkg update does (three-way: the old upstream, the new upstream and the current revision).
With --discover=upstream, list the revisions whose upstream has a newer published revision; with
--discover=downstream, list the downstream revisions behind each latest upstream revision.

With --all-downstreams UPSTREAM, start one upgrade draft for every downstream package of the
upstream package UPSTREAM names (any of its revisions): for each package whose latest published
revision is based on an older revision of that package (status.upstreamRevision), an upgrade
from that revision to the target. The target is UPSTREAM itself when it is a published
revision, else revision --revision, else the latest published revision. --repository and
--selector (-l) narrow the downstreams. Each draft's workspace is --workspace, by default
upgrade-v<DOWNSTREAM REVISION>-to-upstream-v<TARGET REVISION>; a downstream already at the target,
or whose upgrade an existing PackageDraft already requests, is skipped, so running the command
again creates nothing twice. Every draft is reported (created, skipped, or its failure, such as
MergeConflict with the conflicting fields); a failed draft is removed so a later run retries it,
and the command fails when any draft failed. --timeout applies to the whole batch.`,
		Example: `  # Which packages can be upgraded?
  kpoctl rpkg upgrade --discover=upstream

  # Move deployments.my-app.v1 to the latest revision of its upstream
  kpoctl rpkg upgrade deployments.my-app.v1 --workspace upgrade-1 --strategy resource-merge

  # ... or to upstream revision 2
  kpoctl rpkg upgrade deployments.my-app.v1 --revision 2 --workspace upgrade-2

  # ... keeping the draft when fields conflict, to resolve them one by one
  kpoctl rpkg upgrade deployments.my-app.v1 --workspace upgrade-3 --allow-conflicts

  # Upgrade every downstream of blueprints.basens to its revision 2
  kpoctl rpkg upgrade --all-downstreams blueprints.basens.v2

  # ... only those of deployment repositories, to the latest revision of basens
  kpoctl rpkg upgrade --all-downstreams blueprints.basens.main -l kpo.dev/deployment=true`,
		Args: optionalArg("PACKAGE_REVISION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			switch u.discover {
			case "upstream", "downstream":
				if len(args) > 0 || u.allDownstreams != "" {
					return errors.New("--discover lists candidates for every package: drop the PACKAGE_REVISION argument and --all-downstreams")
				}
				return u.runDiscover(ctx, o)
			case "":
			default:
				return fmt.Errorf("unknown --discover=%s: use upstream or downstream", u.discover)
			}
			if err := u.validStrategy(); err != nil {
				return err
			}
			all, err := u.check(args, scopeUsage{
				acts:    "upgrades",
				single:  "the draft of a single upgrade goes to the repository of PACKAGE_REVISION",
				missing: "name the package revision to upgrade, pass --all-downstreams UPSTREAM, or pass --discover=upstream",
			})
			switch {
			case err != nil:
				return err
			case all:
				return u.runAll(ctx, o)
			}
			return u.run(ctx, o, args[0])
		},
	}
	f := cmd.Flags()
	f.IntVar(&u.revision, "revision", 0, "Upstream revision number to upgrade to (default: the latest).")
	f.StringVar(&u.t.workspace, "workspace", "", "Workspace name of the new draft (required; with --all-downstreams, default upgrade-v<N>-to-upstream-v<M>).")
	f.StringVar(&u.strategy, "strategy", string(kptfile.ResourceMerge), "Merge strategy: "+strategyChoices()+".")
	f.StringVar(&u.discover, "discover", "", "List upgrade candidates instead: upstream or downstream.")
	f.BoolVar(&u.allowConflicts, "allow-conflicts", false,
		"Create a draft even when the merge has conflicts, each recorded in its status.conflicts; resolve them with `kpoctl rpkg resolve` before proposing.")
	u.flags(f, "upgrade")
	return cmd
}

// validStrategy accepts the update strategies of a Kptfile, which the API carries unchanged.
func (u *upgradeOptions) validStrategy() error {
	if slices.Contains(kptfile.UpdateStrategies, kptfile.UpdateStrategy(u.strategy)) {
		return nil
	}
	return fmt.Errorf("unknown --strategy %q: use %s", u.strategy, strategyChoices())
}

// strategyChoices lists the update strategies for a message: "a, b, c or d".
func strategyChoices() string {
	names := make([]string, len(kptfile.UpdateStrategies))
	for i, s := range kptfile.UpdateStrategies {
		names[i] = string(s)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// runAll starts an upgrade draft for every downstream of the upstream package.
func (u *upgradeOptions) runAll(ctx context.Context, o *globalOptions) error {
	x, err := o.listRevisions(ctx)
	if err != nil {
		return err
	}
	up, err := x.get(u.allDownstreams)
	if err != nil {
		return err
	}
	pub := x.published(up.Spec.Repository, up.Spec.PackageName)
	var target *kpov1.PackageRevision
	switch {
	case u.revision != 0:
		if isPublished(up) && up.Status.Revision != u.revision {
			return fmt.Errorf("--revision %d contradicts %s, which is revision %d: name the package by any revision and pick the target with --revision, or drop --revision",
				u.revision, up.Name, up.Status.Revision)
		}
		for _, r := range pub {
			if r.Status.Revision == u.revision {
				target = r
			}
		}
	case isPublished(up):
		target = up
	case len(pub) > 0:
		target = pub[len(pub)-1]
	}
	if target == nil {
		return fmt.Errorf("package %s of repository %s has no published revision%s to upgrade to: list them with `kpoctl rpkg get --repository %s --name %s --lifecycle Published`",
			up.Spec.PackageName, up.Spec.Repository, revisionSuffix(u.revision), up.Spec.Repository, up.Spec.PackageName)
	}
	ds, err := x.downstreams(up, u.filter)
	if err != nil {
		return err
	}
	var items []*bulkItem
	for _, d := range ds {
		it := &bulkItem{subject: d.pr.Name}
		items = append(items, it)
		switch {
		case d.based.Name == target.Name:
			it.skip = "already based on " + target.Name
			continue
		case d.based.Status.Revision > target.Status.Revision:
			it.skip = fmt.Sprintf("based on %s, newer than %s", d.based.Name, target.Name)
			continue
		}
		t, source := lifecycle.UpgradeDraft(d.pr, d.based, target, u.t.workspace, kpov1.UpdateStrategy(u.strategy), u.allowConflicts)
		it.target = draftTarget{repository: t.Repository, packageName: t.PackageName, workspace: t.Workspace}
		it.action = fmt.Sprintf("upgrade of %s from %s to %s", d.pr.Name, d.based.Name, target.Name)
		it.source = source
	}
	if len(items) == 0 {
		_, err := fmt.Fprintf(o.streams.Out, "No published downstream of package %s of repository %s%s.\n", up.Spec.PackageName, up.Spec.Repository, u.filter.describe())
		return err
	}
	return o.runBulk(ctx, x, items, "upgrades")
}

func revisionSuffix(n int) string {
	if n == 0 {
		return ""
	}
	return " " + strconv.Itoa(n)
}

func (u *upgradeOptions) run(ctx context.Context, o *globalOptions, name string) error {
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	current := &kpov1.PackageRevision{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, current); err != nil {
		return apiError(kindPackageRevision, name, err)
	}
	// The upstream revision the manager found (status.upstreamRevision), else the one whose
	// commit the upstreamLock pins.
	oldUp := &kpov1.PackageRevision{}
	if up := current.Status.UpstreamRevision; up != "" {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: up}, oldUp); err != nil {
			return apiError(kindPackageRevision, up, err)
		}
	} else if oldUp, err = o.upstreamOf(ctx, current); err != nil {
		return err
	}
	revs, err := o.publishedRevisions(ctx, oldUp.Spec.Repository, oldUp.Spec.PackageName)
	if err != nil {
		return err
	}
	var newUp *kpov1.PackageRevision
	for i := range revs {
		r := &revs[i]
		if (u.revision == 0 && (newUp == nil || r.Status.Revision > newUp.Status.Revision)) || (u.revision != 0 && r.Status.Revision == u.revision) {
			newUp = r
		}
	}
	if newUp == nil {
		return fmt.Errorf("package %s of repository %s has no published revision %d: list them with `kpoctl rpkg get --repository %s --name %s --lifecycle Published`",
			oldUp.Spec.PackageName, oldUp.Spec.Repository, u.revision, oldUp.Spec.Repository, oldUp.Spec.PackageName)
	}
	if newUp.Name == oldUp.Name {
		return fmt.Errorf("packagerevision %s is already at upstream revision %s: nothing to upgrade", name, newUp.Name)
	}
	u.t.repository, u.t.packageName = current.Spec.Repository, current.Spec.PackageName
	if err := u.t.require(); err != nil {
		return err
	}
	_, source := lifecycle.UpgradeDraft(current, oldUp, newUp, u.t.workspace, kpov1.UpdateStrategy(u.strategy), u.allowConflicts)
	return o.createDraft(ctx, u.t, source)
}

// publishedRevisions lists the published revisions (revision > 0) of one package.
func (o *globalOptions) publishedRevisions(ctx context.Context, repo, pkg string) ([]kpov1.PackageRevision, error) {
	c, ns, err := o.client()
	if err != nil {
		return nil, err
	}
	list := &kpov1.PackageRevisionList{}
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{kpov1.RepositoryLabel: repo},
		client.MatchingFields{"spec.packageName": pkg}); err != nil {
		return nil, fmt.Errorf("listing package revisions: %w", err)
	}
	var out []kpov1.PackageRevision
	for _, r := range list.Items {
		if r.Status.Revision > 0 && (r.Status.Lifecycle == kpov1.LifecyclePublished || r.Status.Lifecycle == kpov1.LifecycleDeletionProposed) {
			out = append(out, r)
		}
	}
	return out, nil
}

// runDiscover lists the downstream revisions whose upstream has a newer published revision: the
// newest published revision of each package whose status.upstreamRevision is older than the
// newest published revision of that upstream package. It is computed from the revisions
// themselves, so it is right as soon as an approval returns (the manager's
// kpo.dev/upstream-behind label follows a moment later).
func (u *upgradeOptions) runDiscover(ctx context.Context, o *globalOptions) error {
	x, err := o.listRevisions(ctx)
	if err != nil {
		return err
	}
	t := &table{}
	if u.discover == "upstream" {
		t.header = []string{"PACKAGE REVISION", "UPSTREAM", "UPSTREAM REVISION", "UPGRADE TO", "LATEST REVISION"}
	} else {
		t.header = []string{"UPSTREAM LATEST", "LATEST REVISION", "DOWNSTREAM", "DOWNSTREAM UPSTREAM", "UPSTREAM REVISION"}
	}
	revision := func(name string) string {
		if pr := x.byName[name]; pr != nil {
			return strconv.Itoa(pr.Status.Revision)
		}
		return "?"
	}
	for i := range x.items {
		pr := &x.items[i]
		if pr.Labels[kpov1.LatestRevisionLabel] != "true" || !isPublished(pr) {
			continue
		}
		basedRev := x.byName[pr.Status.UpstreamRevision]
		if basedRev == nil {
			continue
		}
		newest := x.newestPublished(basedRev)
		if newest == nil || newest.Status.Revision <= basedRev.Status.Revision {
			continue
		}
		based, latest := basedRev.Name, newest.Name
		if u.discover == "upstream" {
			t.rows = append(t.rows, []string{pr.Name, based, revision(based), latest, revision(latest)})
		} else {
			t.rows = append(t.rows, []string{latest, revision(latest), pr.Name, based, revision(based)})
		}
	}
	if len(t.rows) == 0 {
		_, err := fmt.Fprintln(o.streams.Out, "All package revisions are up to date with their upstreams.")
		return err
	}
	if u.discover == "downstream" {
		slices.SortStableFunc(t.rows, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	}
	return t.write(o.streams.Out)
}

// newestPublished is the published revision of the package of `of` with the highest revision number.
func (x *revisionIndex) newestPublished(of *kpov1.PackageRevision) *kpov1.PackageRevision {
	var newest *kpov1.PackageRevision
	for i := range x.items {
		c := &x.items[i]
		if samePackage(c, of) && isPublished(c) && (newest == nil || c.Status.Revision > newest.Status.Revision) {
			newest = c
		}
	}
	return newest
}
