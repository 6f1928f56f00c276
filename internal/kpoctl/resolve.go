package kpoctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/lifecycle"
)

type resolveOptions struct {
	conflicts []string
	take      string
	all       string
}

func newRpkgResolveCommand(o *globalOptions) *cobra.Command {
	r := &resolveOptions{}
	cmd := &cobra.Command{
		Use:   "resolve PACKAGE_REVISION (--conflict ID... --take local|upstream | --all local|upstream)",
		Short: "Resolve conflicts of an upgrade draft by choosing the local or the upstream value",
		Long: `Resolve conflicts of a draft created by an upgrade with conflicts (kpoctl rpkg upgrade
--allow-conflicts): for each conflict named with --conflict (its id in status.conflicts, listed
by kpoctl rpkg get NAME -o yaml), or for every unresolved one with --all, the manager sets the
field to the chosen side's value and commits it to the draft branch with you as its author. A
conflict is also resolved by editing its field (kpoctl rpkg push). The draft can be proposed once
every conflict is resolved. The command sets the annotation kpo.dev/resolve-conflicts and, with
--wait (the default), waits until the manager applied it.`,
		Example: `  # Keep the local value of one conflict and take upstream's for another
  kpoctl rpkg resolve deployments.my-app.upgrade --conflict 3f2a9c01de --take local
  kpoctl rpkg resolve deployments.my-app.upgrade --conflict b71c0e55a2 --take upstream

  # Take upstream's value for every conflict left
  kpoctl rpkg resolve deployments.my-app.upgrade --all upstream`,
		Args: exactArgs(1, "PACKAGE_REVISION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := r.validate(); err != nil {
				return err
			}
			return r.run(cmd.Context(), o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&r.conflicts, "conflict", nil, "Id of a conflict to resolve (repeatable, or comma-separated).")
	f.StringVar(&r.take, "take", "", "The side to take for the --conflict ids: local or upstream.")
	f.StringVar(&r.all, "all", "", "Resolve every unresolved conflict, taking this side: local or upstream.")
	return cmd
}

func validSide(s string) bool { return s == kpov1.ConflictLocal || s == kpov1.ConflictUpstream }

func (r *resolveOptions) validate() error {
	switch {
	case r.all != "" && (len(r.conflicts) > 0 || r.take != ""):
		return errors.New("--all resolves every conflict: drop --conflict and --take")
	case r.all != "" && !validSide(r.all):
		return fmt.Errorf("unknown --all %q: use local or upstream", r.all)
	case r.all != "":
		return nil
	case len(r.conflicts) == 0:
		return errors.New("name the conflicts with --conflict ID and a side with --take, or pass --all local|upstream")
	case !validSide(r.take):
		return fmt.Errorf("--take must be local or upstream, got %q", r.take)
	}
	return nil
}

// choices checks the requested ids against status.conflicts and returns the choices to set.
func (r *resolveOptions) choices(pr *kpov1.PackageRevision) (map[string]string, error) {
	out := map[string]string{}
	if r.all != "" {
		for _, c := range pr.Status.Conflicts {
			if c.Resolution == "" {
				out[c.ID] = r.all
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("packagerevision %s has no unresolved conflicts", pr.Name)
		}
		return out, nil
	}
	for _, id := range r.conflicts {
		i := slices.IndexFunc(pr.Status.Conflicts, func(c kpov1.MergeConflict) bool { return c.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("packagerevision %s has no conflict %q: its conflicts are listed in status.conflicts (`kpoctl rpkg get %s -o yaml`)", pr.Name, id, pr.Name)
		}
		out[id] = r.take
	}
	return out, nil
}

func (r *resolveOptions) run(ctx context.Context, o *globalOptions, name string) error {
	c, _, pr, err := o.packageRevision(ctx, name)
	if err != nil {
		return err
	}
	if pr.Status.Lifecycle != kpov1.LifecycleDraft {
		return fmt.Errorf("packagerevision %s is %s: only the conflicts of a Draft can be resolved", name, pr.Status.Lifecycle)
	}
	choices, err := r.choices(pr)
	if err != nil {
		return err
	}
	if err := lifecycle.Resolve(ctx, c, pr, choices); err != nil {
		return apiError(kindPackageRevision, name, err)
	}
	if o.wait {
		err := o.waitFor(ctx, fmt.Sprintf("the manager to resolve the conflicts of packagerevision %s", name), func(ctx context.Context) error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(pr), pr); err != nil {
				return err
			}
			if _, pending := pr.Annotations[kpov1.ResolveConflictsAnnotation]; !pending {
				return nil
			}
			if rc := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition); rc != nil && rc.Reason == kpov1.InvalidConflictResolutionReason {
				return errNotYet(conditionText(rc))
			}
			return errNotYet("annotation " + kpov1.ResolveConflictsAnnotation + " not applied yet")
		})
		if err != nil {
			return err
		}
	}
	return r.report(o, pr, choices)
}

// report prints the conflicts resolved, and what is left.
func (r *resolveOptions) report(o *globalOptions, pr *kpov1.PackageRevision, choices map[string]string) error {
	ids := make([]string, 0, len(choices))
	for id := range choices {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s: conflict %s resolved (%s)\n", pr.Name, id, choices[id])
	}
	if o.wait {
		left := 0
		for _, c := range pr.Status.Conflicts {
			if c.Resolution == "" {
				left++
			}
		}
		switch {
		case left == 0 && pr.Spec.Lifecycle == kpov1.LifecycleDraft:
			fmt.Fprintf(&b, "%s: every conflict is resolved: propose it with `kpoctl rpkg propose %s`\n", pr.Name, pr.Name)
		case left == 0:
			fmt.Fprintf(&b, "%s: every conflict is resolved: the proposal goes ahead\n", pr.Name)
		default:
			fmt.Fprintf(&b, "%s: %d conflict(s) left\n", pr.Name, left)
		}
	}
	_, err := fmt.Fprint(o.streams.Out, b.String())
	return err
}
