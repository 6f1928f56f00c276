package kpoctl

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

func newRpkgRebaseCommand(o *globalOptions) *cobra.Command {
	var revision int
	cmd := &cobra.Command{
		Use:   "rebase PACKAGE_REVISION [--revision N]",
		Short: "Rebase a draft onto a newer revision of its upstream",
		Long: `Rebase a draft onto another published revision of its upstream package (by default the
latest; --revision N for revision N): the manager merges the change from the draft's upstream
revision to that one into the draft, as an upgrade does, and commits it to the draft branch.
Fields both the draft and upstream changed are recorded as conflicts (status.conflicts), holding
upstream's value until resolved with kpoctl rpkg resolve or an edit. The command sets the
annotation kpo.dev/rebase-onto and, with --wait (the default), waits until the manager carried
it out.`,
		Example: `  # Rebase a draft onto the latest revision of its upstream
  kpoctl rpkg rebase deployments.my-app.second

  # ... onto upstream revision 3
  kpoctl rpkg rebase deployments.my-app.second --revision 3`,
		Args: exactArgs(1, "PACKAGE_REVISION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.rebase(cmd.Context(), args[0], revision)
		},
	}
	cmd.Flags().IntVar(&revision, "revision", 0, "Upstream revision number to rebase onto (default: the latest).")
	return cmd
}

// rebaseRefusals are the reasons the manager refuses a rebase with.
var rebaseRefusals = []string{kpov1.InvalidRebaseReason, kpov1.UnresolvedConflictsReason, kpov1.MergeConflictReason,
	kpov1.LocalChangesReason, kpov1.SourceNotFoundReason, kpov1.SourceNotPublishedReason, kpov1.InvalidContentReason}

func (o *globalOptions) rebase(ctx context.Context, name string, revision int) error {
	c, ns, pr, err := o.packageRevision(ctx, name)
	if err != nil {
		return err
	}
	if pr.Status.Lifecycle != kpov1.LifecycleDraft {
		return fmt.Errorf("packagerevision %s is %s: only a Draft can be rebased (start one with `kpoctl rpkg upgrade`)", name, pr.Status.Lifecycle)
	}
	// The upstream revision the manager found (status.upstreamRevision), else the one whose
	// commit the upstreamLock pins.
	up := &kpov1.PackageRevision{}
	if base := pr.Status.UpstreamRevision; base != "" {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: base}, up); err != nil {
			return apiError(kindPackageRevision, base, err)
		}
	} else if up, err = o.upstreamOf(ctx, pr); err != nil {
		return err
	}
	base := up.Name
	revs, err := o.publishedRevisions(ctx, up.Spec.Repository, up.Spec.PackageName)
	if err != nil {
		return err
	}
	var target *kpov1.PackageRevision
	for i := range revs {
		r := &revs[i]
		if (revision == 0 && (target == nil || r.Status.Revision > target.Status.Revision)) || (revision != 0 && r.Status.Revision == revision) {
			target = r
		}
	}
	switch {
	case target == nil:
		return fmt.Errorf("package %s of repository %s has no published revision %d: list them with `kpoctl rpkg get --repository %s --name %s --lifecycle Published`",
			up.Spec.PackageName, up.Spec.Repository, revision, up.Spec.Repository, up.Spec.PackageName)
	case target.Name == base:
		return fmt.Errorf("packagerevision %s is already based on %s: nothing to rebase", name, base)
	}
	patch := client.MergeFromWithOptions(pr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if pr.Annotations == nil {
		pr.Annotations = map[string]string{}
	}
	pr.Annotations[kpov1.RebaseOntoAnnotation] = target.Name
	if err := c.Patch(ctx, pr, patch); err != nil {
		return apiError(kindPackageRevision, name, err)
	}
	if !o.wait {
		_, err := fmt.Fprintf(o.streams.Out, "%s: rebase onto %s requested\n", name, target.Name)
		return err
	}
	err = o.waitFor(ctx, fmt.Sprintf("packagerevision %s to be rebased onto %s", name, target.Name), func(ctx context.Context) error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(pr), pr); err != nil {
			return err
		}
		rc := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		if _, pending := pr.Annotations[kpov1.RebaseOntoAnnotation]; pending {
			if rc != nil && rc.Status == metav1.ConditionFalse && slices.Contains(rebaseRefusals, rc.Reason) {
				return &conditionError{Kind: kindPackageRevision, Name: name, Condition: *rc,
					Hint: fmt.Sprintf("Not rebased: remove the request with `kubectl annotate packagerevision %s %s-`.", name, kpov1.RebaseOntoAnnotation)}
			}
			return errNotYet("annotation " + kpov1.RebaseOntoAnnotation + " not carried out yet")
		}
		return nil
	})
	if err != nil {
		return err
	}
	left := 0
	for _, c := range pr.Status.Conflicts {
		if c.Resolution == "" {
			left++
		}
	}
	msg := fmt.Sprintf("%s rebased onto %s\n", name, target.Name)
	if left > 0 {
		msg += fmt.Sprintf("%s: %d conflict(s) to resolve: see status.conflicts, then `kpoctl rpkg resolve %s`\n", name, left, name)
	}
	_, err = fmt.Fprint(o.streams.Out, msg)
	return err
}
