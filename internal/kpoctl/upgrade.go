package kpoctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

type upgradeOptions struct {
	t        draftTarget
	revision int
	strategy string
	discover string
}

func newRpkgUpgradeCommand(o *globalOptions) *cobra.Command {
	u := &upgradeOptions{}
	cmd := &cobra.Command{
		Use:   "upgrade [PACKAGE_REVISION]",
		Short: "Start a draft that moves a downstream package to a newer upstream revision",
		Long: `Start a new draft of a downstream package that merges a newer revision of its upstream, as
kpt pkg update does (three-way: the old upstream, the new upstream and the current revision).
With --discover=upstream, list the revisions whose upstream has a newer published revision; with
--discover=downstream, list the downstream revisions behind each latest upstream revision.`,
		Example: `  # Which packages can be upgraded?
  kpoctl rpkg upgrade --discover=upstream

  # Move deployments.my-app.v1 to the latest revision of its upstream
  kpoctl rpkg upgrade deployments.my-app.v1 --workspace upgrade-1 --strategy resource-merge

  # ... or to upstream revision 2
  kpoctl rpkg upgrade deployments.my-app.v1 --revision 2 --workspace upgrade-2`,
		Args: maxArgs(1, "PACKAGE_REVISION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			switch u.discover {
			case "upstream", "downstream":
				if len(args) > 0 {
					return errors.New("--discover lists candidates for every package: drop the PACKAGE_REVISION argument")
				}
				return u.runDiscover(ctx, o)
			case "":
			default:
				return fmt.Errorf("unknown --discover=%s: use upstream or downstream", u.discover)
			}
			if len(args) != 1 {
				return errors.New("name the package revision to upgrade, or pass --discover=upstream")
			}
			return u.run(ctx, o, args[0])
		},
	}
	f := cmd.Flags()
	f.IntVar(&u.revision, "revision", 0, "Upstream revision number to upgrade to (default: the latest).")
	f.StringVar(&u.t.workspace, "workspace", "", "Workspace name of the new draft (required).")
	f.StringVar(&u.strategy, "strategy", string(kpov1.ResourceMerge), "Merge strategy: resource-merge, fast-forward, force-delete-replace or copy-merge.")
	f.StringVar(&u.discover, "discover", "", "List upgrade candidates instead: upstream or downstream.")
	return cmd
}

func (u *upgradeOptions) run(ctx context.Context, o *globalOptions, name string) error {
	switch kpov1.UpdateStrategy(u.strategy) {
	case kpov1.ResourceMerge, kpov1.FastForward, kpov1.ForceDeleteReplace, kpov1.CopyMerge:
	default:
		return fmt.Errorf("unknown --strategy %q: use resource-merge, fast-forward, force-delete-replace or copy-merge", u.strategy)
	}
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	current := &kpov1.PackageRevision{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, current); err != nil {
		return apiError(kindPackageRevision, name, err)
	}
	oldUp, err := o.upstreamOf(ctx, current)
	if err != nil {
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
	return o.createDraft(ctx, u.t, kpov1.PackageDraftSource{Upgrade: &kpov1.UpgradeSource{
		OldUpstream: kpov1.LocalReference{Name: oldUp.Name},
		NewUpstream: kpov1.LocalReference{Name: newUp.Name},
		Current:     kpov1.LocalReference{Name: current.Name},
		Strategy:    kpov1.UpdateStrategy(u.strategy),
	}})
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

// runDiscover lists the downstream revisions whose upstream has a newer published revision.
func (u *upgradeOptions) runDiscover(ctx context.Context, o *globalOptions) error {
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	list := &kpov1.PackageRevisionList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("listing package revisions: %w", err)
	}
	t := &table{}
	if u.discover == "upstream" {
		t.header = []string{"PACKAGE REVISION", "UPSTREAM", "UPSTREAM REVISION", "UPGRADE TO", "LATEST REVISION"}
	} else {
		t.header = []string{"UPSTREAM LATEST", "LATEST REVISION", "DOWNSTREAM", "DOWNSTREAM UPSTREAM", "UPSTREAM REVISION"}
	}
	for i := range list.Items {
		pr := &list.Items[i]
		if pr.Status.UpstreamLock == nil || pr.Status.Revision < 0 {
			continue
		}
		oldUp, err := o.upstreamOf(ctx, pr)
		if err != nil || oldUp.Status.Revision <= 0 {
			continue
		}
		revs, err := o.publishedRevisions(ctx, oldUp.Spec.Repository, oldUp.Spec.PackageName)
		if err != nil {
			return err
		}
		var latest *kpov1.PackageRevision
		for j := range revs {
			if latest == nil || revs[j].Status.Revision > latest.Status.Revision {
				latest = &revs[j]
			}
		}
		if latest == nil || latest.Status.Revision <= oldUp.Status.Revision {
			continue
		}
		if u.discover == "upstream" {
			t.rows = append(t.rows, []string{pr.Name, oldUp.Name, strconv.Itoa(oldUp.Status.Revision), latest.Name, strconv.Itoa(latest.Status.Revision)})
		} else {
			t.rows = append(t.rows, []string{latest.Name, strconv.Itoa(latest.Status.Revision), pr.Name, oldUp.Name, strconv.Itoa(oldUp.Status.Revision)})
		}
	}
	if len(t.rows) == 0 {
		_, err := fmt.Fprintln(o.streams.Out, "All package revisions are up to date with their upstreams.")
		return err
	}
	return t.write(o.streams.Out)
}
