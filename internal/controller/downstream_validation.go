package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/merge"
)

// Proposed-change validation: while a revision of an upstream package is Proposed, the
// PackageRevision reconciler tries, in memory, the upgrade of every downstream that a
// PackageVariant ties to the package — the three-way merge of draft_upgrade.go, the render of
// the merged package and the downstream repository's guardrails — and records the outcome in
// the proposal's status.downstreamValidation. Nothing is written to Git. The outcome is kept
// for a key of the proposal's commit and every downstream's commit, upstream and guardrails,
// so only a change of one of them computes it again; revisions that are not Proposed, or that
// no PackageVariant follows, cost one list of the namespace's PackageVariants from the cache.

const (
	// maxDownstreamResults bounds status.downstreamValidation.results; the summary counts all.
	maxDownstreamResults = 50
	// maxDownstreamMessage bounds the message of one downstream result.
	maxDownstreamMessage = 512
	// maxDownstreamsValidated bounds the upgrades tried for one proposal; the others are
	// reported as not checked.
	maxDownstreamsValidated = 100
)

// downstreamTarget is one downstream a PackageVariant ties to a proposal's package: the
// variant's newest published revision, and its Repository.
type downstreamTarget struct {
	variant string
	pr      *kpov1.PackageRevision
	repo    *kpov1.Repository
}

// downstreamsUpdate is what reconcileDownstreamValidation decided for
// status.downstreamValidation: a new outcome, or none (removed).
type downstreamsUpdate struct {
	result *kpov1.DownstreamValidation
}

// reconcileDownstreamValidation computes status.downstreamValidation of a Proposed revision
// that PackageVariants follow, when its key changed; it removes it from any other revision.
func (r *PackageRevisionReconciler) reconcileDownstreamValidation(ctx context.Context, s *revisionScope) error {
	pr := s.pr
	clear := func() error {
		if pr.Status.DownstreamValidation != nil {
			s.downstreams = &downstreamsUpdate{}
		}
		return nil
	}
	if pr.Status.Lifecycle != kpov1.LifecycleProposed || pr.Spec.Lifecycle != kpov1.LifecycleProposed {
		return clear()
	}
	targets, err := r.downstreamTargets(ctx, pr)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return clear()
	}
	key := downstreamKey(pr.Status.Commit, targets)
	if dv := pr.Status.DownstreamValidation; dv != nil && dv.Key == key {
		return nil
	}
	proposal, err := r.committedFiles(ctx, s)
	if err != nil || proposal == nil {
		return err
	}
	results := make([]kpov1.DownstreamResult, 0, len(targets))
	for i, t := range targets {
		if i == maxDownstreamsValidated {
			results = append(results, kpov1.DownstreamResult{PackageRevision: t.pr.Name, PackageVariant: t.variant,
				Result: kpov1.DownstreamError, Message: fmt.Sprintf("not checked: only the first %d downstreams are", maxDownstreamsValidated)})
			continue
		}
		res := r.validateDownstream(ctx, s.repo, proposal, t)
		res.Message = truncate(res.Message, maxDownstreamMessage)
		results = append(results, res)
	}
	dv := downstreamValidation(key, results)
	s.downstreams = &downstreamsUpdate{result: &dv}
	return nil
}

// downstreamTargets lists the downstreams of the PackageVariants whose upstream is pr's
// package: for each, its newest published revision (variants with none yet are left out).
func (r *PackageRevisionReconciler) downstreamTargets(ctx context.Context, pr *kpov1.PackageRevision) ([]downstreamTarget, error) {
	variants := &kpov1.PackageVariantList{}
	if err := r.List(ctx, variants, client.InNamespace(pr.Namespace)); err != nil {
		return nil, fmt.Errorf("listing package variants: %w", err)
	}
	var targets []downstreamTarget
	for i := range variants.Items {
		pv := &variants.Items[i]
		if pv.Spec.Upstream.Repo != pr.Spec.Repository || pv.Spec.Upstream.Package != pr.Spec.PackageName || !pv.DeletionTimestamp.IsZero() {
			continue
		}
		revs, err := packageRevisions(ctx, r.Client, pr.Namespace, pv.Spec.Downstream.Repo, pv.Spec.Downstream.Package)
		if err != nil {
			return nil, err
		}
		newest := newestPublished(revs, pv.Name)
		if newest == nil {
			continue
		}
		repo := &kpov1.Repository{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: pr.Namespace, Name: pv.Spec.Downstream.Repo}, repo); err != nil {
			continue // its revisions go with it
		}
		targets = append(targets, downstreamTarget{variant: pv.Name, pr: newest, repo: repo})
	}
	slices.SortFunc(targets, func(a, b downstreamTarget) int { return strings.Compare(a.pr.Name, b.pr.Name) })
	return targets, nil
}

// newestPublished returns the newest published revision of revs that variant owns, or nil.
func newestPublished(revs []kpov1.PackageRevision, variant string) *kpov1.PackageRevision {
	var newest *kpov1.PackageRevision
	for i := range revs {
		pr := &revs[i]
		if pr.Labels[kpov1.PackageVariantLabel] != variant || pr.Status.Lifecycle != kpov1.LifecyclePublished || pr.Status.Revision < 1 {
			continue
		}
		if newest == nil || pr.Status.Revision > newest.Status.Revision {
			newest = pr
		}
	}
	return newest
}

// downstreamKey identifies what a validation depends on: the proposal's commit, and every
// downstream's revision, commit, upstream revision and guardrails.
func downstreamKey(commit string, targets []downstreamTarget) string {
	h := sha256.New()
	fmt.Fprintln(h, commit)
	for _, t := range targets {
		fmt.Fprintln(h, t.variant, t.pr.Name, t.pr.Status.Commit, t.pr.Status.UpstreamRevision, guardrailsDigest(t.repo.Spec.Guardrails))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// validateDownstream tries the upgrade of one downstream to the proposal in memory: merge
// (old upstream: the revision the downstream is based on), render, and the downstream
// repository's guardrails.
func (r *PackageRevisionReconciler) validateDownstream(ctx context.Context, upRepo *kpov1.Repository, proposal map[string][]byte, t downstreamTarget) kpov1.DownstreamResult {
	res := kpov1.DownstreamResult{PackageRevision: t.pr.Name, PackageVariant: t.variant}
	fail := func(result string, err error) kpov1.DownstreamResult {
		res.Result, res.Message = result, err.Error()
		return res
	}
	if t.pr.Status.UpstreamRevision == "" {
		return fail(kpov1.DownstreamError, fmt.Errorf("%s is not based on a registered upstream revision (status.upstreamRevision is empty)", t.pr.Name))
	}
	origin := &kpov1.PackageRevision{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: t.pr.Namespace, Name: t.pr.Status.UpstreamRevision}, origin); err != nil {
		return fail(kpov1.DownstreamError, fmt.Errorf("reading upstream revision %s: %w", t.pr.Status.UpstreamRevision, err))
	}
	if origin.Spec.Repository != upRepo.Name {
		return fail(kpov1.DownstreamError, fmt.Errorf("%s is based on %s, which is not a revision of repository %s", t.pr.Name, origin.Name, upRepo.Name))
	}
	originFiles, err := r.git.publishedFiles(ctx, upRepo, origin)
	if err != nil {
		return fail(kpov1.DownstreamError, err)
	}
	local, err := r.git.publishedFiles(ctx, t.repo, t.pr)
	if err != nil {
		return fail(kpov1.DownstreamError, err)
	}
	merged, err := merge.Update(merge.Input{Origin: originFiles, Upstream: proposal, Local: local, Strategy: kptfile.ResourceMerge})
	switch {
	case errors.Is(err, merge.ErrConflicts):
		return fail(kpov1.DownstreamConflict, errors.New(describeConflicts(merged.Conflicts)))
	case err != nil:
		return fail(kpov1.DownstreamError, fmt.Errorf("merging: %w", err))
	}
	rendered := renderFiles(ctx, r.render, merged.Files)
	if rendered.err != nil {
		return fail(kpov1.DownstreamRenderFailed, errors.Unwrap(rendered.err))
	}
	if fns := t.repo.Spec.Guardrails; len(fns) > 0 {
		if g := evaluateGuardrails(ctx, r.render, rendered.files, fns, ""); g.Reason != kpov1.PassedReason {
			return fail(kpov1.DownstreamGuardrailFailed, fmt.Errorf("repository %s: %s", t.repo.Name, g.Message))
		}
	}
	res.Result = kpov1.DownstreamClean
	return res
}

// downstreamValidation builds the recorded outcome: the summary counts every result, the
// results list shows the failing ones first, bounded.
func downstreamValidation(key string, results []kpov1.DownstreamResult) kpov1.DownstreamValidation {
	slices.SortStableFunc(results, func(a, b kpov1.DownstreamResult) int {
		if ca, cb := a.Result == kpov1.DownstreamClean, b.Result == kpov1.DownstreamClean; ca != cb {
			if ca {
				return 1
			}
			return -1
		}
		return strings.Compare(a.PackageRevision, b.PackageRevision)
	})
	dv := kpov1.DownstreamValidation{Key: key, Summary: downstreamSummary(results), Results: results}
	if len(dv.Results) > maxDownstreamResults {
		dv.Results = dv.Results[:maxDownstreamResults]
	}
	return dv
}

// downstreamSummary counts results by outcome: "2 upgrade cleanly, 1 conflicts, 1 fails render".
func downstreamSummary(results []kpov1.DownstreamResult) string {
	count := map[string]int{}
	for _, r := range results {
		count[r.Result]++
	}
	verb := func(n int, one, many string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	parts := []string{verb(count[kpov1.DownstreamClean], "upgrades cleanly", "upgrade cleanly")}
	for _, o := range []struct{ result, one, many string }{
		{kpov1.DownstreamConflict, "conflicts", "conflict"},
		{kpov1.DownstreamRenderFailed, "fails render", "fail render"},
		{kpov1.DownstreamGuardrailFailed, "fails guardrails", "fail guardrails"},
		{kpov1.DownstreamError, "could not be checked", "could not be checked"},
	} {
		if n := count[o.result]; n > 0 {
			parts = append(parts, verb(n, o.one, o.many))
		}
	}
	return strings.Join(parts, ", ")
}

// truncate bounds s to n bytes (on a rune boundary), marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// proposalsFollowedBy maps a PackageVariant, or a revision a PackageVariant owns, to the
// Proposed revisions of the variant's upstream package, whose downstream validation depends on
// them.
func (r *PackageRevisionReconciler) proposalsFollowedBy(ctx context.Context, obj client.Object) []reconcile.Request {
	pv, ok := obj.(*kpov1.PackageVariant)
	if !ok {
		name := obj.GetLabels()[kpov1.PackageVariantLabel]
		if name == "" {
			return nil
		}
		pv = &kpov1.PackageVariant{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}, pv); err != nil {
			return nil
		}
	}
	list := &kpov1.PackageRevisionList{}
	if err := r.List(ctx, list, client.InNamespace(pv.Namespace), client.MatchingLabels{
		kpov1.RepositoryLabel: pv.Spec.Upstream.Repo, kpov1.PackageLabel: discovery.PackageLabelValue(pv.Spec.Upstream.Package),
	}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if p := &list.Items[i]; p.Status.Lifecycle == kpov1.LifecycleProposed && p.Spec.PackageName == pv.Spec.Upstream.Package {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
		}
	}
	return reqs
}
