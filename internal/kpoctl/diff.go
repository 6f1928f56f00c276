package kpoctl

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
)

func newRpkgDiffCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "diff PACKAGE_REVISION [OTHER]",
		Short: "Show the changes between two package revisions, or against the upstream revision",
		Long: `Print a unified diff of the files of two package revisions (from the first to the second).
With one revision, compare it with the upstream revision it was cloned from: the package revision
whose commit is the one the Kptfile's upstreamLock pins. Exits 0 whether or not they differ.`,
		Example: `  # What changed between two published versions
  kpoctl rpkg diff deployments.my-app.v1 deployments.my-app.v2

  # Local changes of a downstream package against its upstream
  kpoctl rpkg diff deployments.my-app.first`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%s expects one or two package revisions, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			pr, _, files, err := o.readContent(ctx, args[0])
			if err != nil {
				return err
			}
			from, fromFiles, to, toFiles := args[0], files, "", map[string][]byte(nil)
			if len(args) == 2 {
				to = args[1]
				if _, _, toFiles, err = o.readContent(ctx, to); err != nil {
					return err
				}
			} else {
				up, err := o.upstreamOf(ctx, pr)
				if err != nil {
					return err
				}
				// Upstream first: the diff shows the downstream's changes.
				to, toFiles = from, fromFiles
				from = up.Name
				if _, _, fromFiles, err = o.readContent(ctx, from); err != nil {
					return err
				}
			}
			return content.WriteUnifiedDiff(o.streams.Out, from, fromFiles, to, toFiles)
		},
	}
}

// upstreamOf returns the package revision a downstream revision was cloned from: the one whose
// commit its upstreamLock pins, preferring a published revision (a tag) over the package on
// its branch.
func (o *globalOptions) upstreamOf(ctx context.Context, pr *kpov1.PackageRevision) (*kpov1.PackageRevision, error) {
	lock := pr.Status.UpstreamLock
	if lock == nil || lock.Git == nil || lock.Git.Commit == "" {
		return nil, fmt.Errorf("packagerevision %s has no upstream (its Kptfile has no upstreamLock): name the revision to compare with, `kpoctl rpkg diff %s OTHER`", pr.Name, pr.Name)
	}
	c, ns, err := o.client()
	if err != nil {
		return nil, err
	}
	list := &kpov1.PackageRevisionList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing package revisions: %w", err)
	}
	var best *kpov1.PackageRevision
	for i := range list.Items {
		cand := &list.Items[i]
		if cand.Status.Commit != lock.Git.Commit || cand.Name == pr.Name {
			continue
		}
		if dir := strings.Trim(lock.Git.Directory, "/"); dir != "" && !strings.HasSuffix(dir, cand.Spec.PackageName) {
			continue
		}
		if best == nil || (best.Status.Revision <= 0 && cand.Status.Revision > 0) {
			best = cand
		}
	}
	if best == nil {
		return nil, fmt.Errorf("the upstream of packagerevision %s (%s, directory %q, commit %s) is not a package revision of a registered repository in namespace %s: register its repository with `kpoctl repo reg`, or name the revision to compare with",
			pr.Name, lock.Git.Repo, lock.Git.Directory, shortCommit(lock.Git.Commit), ns)
	}
	return best, nil
}

func shortCommit(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
