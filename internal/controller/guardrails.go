package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// Guardrails are a Repository's validators (spec.guardrails) that every draft of it must pass
// before it is proposed. They are evaluated with the manager's Renderer — the same evaluators,
// allowlist and sandbox as rendering — over a copy of the package whose root Kptfile's
// pipeline is replaced by the guardrails (validators only) and whose subpackages' Kptfiles are
// left out, so the package's own pipeline never runs again and every resource, subpackages'
// included, is seen once, as committed.

// maxGuardrailsMessage bounds status.guardrails.message (and so its condition's).
const maxGuardrailsMessage = 2048

// guardrailsDigest identifies a set of guardrails: results recorded for one digest are not
// valid for another.
func guardrailsDigest(fns []kpov1.Function) string {
	data, _ := json.Marshal(fns) // a slice of plain structs always marshals
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// guardrailName is how a guardrail is named to users: its name, or its image.
func guardrailName(f kpov1.Function) string {
	if f.Name != "" {
		return f.Name
	}
	return f.Image
}

// guardrailPackage returns files with the root Kptfile's pipeline replaced by fns as
// validators and the Kptfiles of subpackages left out (their resources become the root's).
func guardrailPackage(files map[string][]byte, fns []kpov1.Function) (map[string][]byte, error) {
	kf, err := kptfile.Decode(files[kptfile.FileName])
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", render.ErrInvalidKptfile, kptfile.FileName, err)
	}
	pl := &kptfile.Pipeline{}
	for _, f := range fns {
		pl.Validators = append(pl.Validators, kptfile.Function{Image: f.Image, ConfigMap: f.ConfigMap,
			Name: guardrailName(f), Selectors: kptSelectors(f.Selectors), Exclusions: kptSelectors(f.Exclusions)})
	}
	kf.Pipeline = pl
	root, err := kptfile.Encode(kf)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(files))
	for p, data := range files {
		if p != kptfile.FileName && path.Base(p) == kptfile.FileName {
			continue
		}
		out[p] = data
	}
	out[kptfile.FileName] = root
	return out, nil
}

// evaluateGuardrails runs fns over the committed files of commit and returns the outcome to
// record: Passed, GuardrailFailed (a guardrail reported errors) or GuardrailError (one could
// not run, or the package cannot be read).
func evaluateGuardrails(ctx context.Context, r Renderer, files map[string][]byte, fns []kpov1.Function, commit string) kpov1.GuardrailsResult {
	res := kpov1.GuardrailsResult{Commit: commit, Digest: guardrailsDigest(fns), Reason: kpov1.PassedReason,
		Message: fmt.Sprintf("%d guardrails passed", len(fns))}
	if r == nil {
		res.Reason, res.Message = kpov1.GuardrailErrorReason, "the manager runs no functions, so no guardrail can be evaluated"
		return res
	}
	pkg, err := guardrailPackage(files, fns)
	if err != nil {
		res.Reason, res.Message = kpov1.GuardrailErrorReason, fmt.Sprintf("the package cannot be checked: %v", err)
		return res
	}
	_, results, err := r(ctx, pkg)
	res.Results = renderResults(results)
	res.Failed, res.Reason, res.Message = guardrailsVerdict(fns, results, err)
	res.Message = truncate(res.Message, maxGuardrailsMessage)
	return res
}

// guardrailsVerdict maps a guardrail run to the failing guardrail's name, the reason and a
// message that says how to fix it.
func guardrailsVerdict(fns []kpov1.Function, results []render.Result, err error) (failed, reason, message string) {
	if err == nil {
		return "", kpov1.PassedReason, fmt.Sprintf("%d guardrails passed", len(fns))
	}
	var last *render.Result
	for i := range results {
		if results[i].ExitCode != 0 {
			last = &results[i]
		}
	}
	if last != nil {
		failed = last.Function.Name
	}
	var fe *render.FunctionError
	switch {
	case renderFailureReason(err) != kpov1.FunctionFailedReason || (last != nil && last.ExecutionError != "") || !errors.As(err, &fe):
		return failed, kpov1.GuardrailErrorReason, fmt.Sprintf(
			"guardrail %q could not be evaluated: %v; it is tried again every %s, or fix the Repository's spec.guardrails", failed, err, guardrailRetry)
	}
	return failed, kpov1.GuardrailFailedReason, fmt.Sprintf("guardrail %q failed: %v; fix the package's content", failed, err)
}

// guardrailsUpdate is what reconcileGuardrails decided for status.guardrails: a new result, or
// none (the Repository has no guardrails: status.guardrails and its condition are removed).
type guardrailsUpdate struct {
	result *kpov1.GuardrailsResult
}

// reconcileGuardrails evaluates the Repository's guardrails on a Draft's committed content,
// once per draft commit and guardrails digest: a result recorded for both is kept. Content
// with an edit not committed yet waits for its commit. Revisions that are not Drafts keep
// what was recorded (published revisions are never checked again).
func (r *PackageRevisionReconciler) reconcileGuardrails(ctx context.Context, s *revisionScope) error {
	pr, repo := s.pr, s.repo
	if pr.Status.Lifecycle != kpov1.LifecycleDraft || pr.Status.Commit == "" {
		return nil
	}
	fns := repo.Spec.Guardrails
	if len(fns) == 0 {
		if pr.Status.Guardrails != nil {
			s.guardrails = &guardrailsUpdate{}
		}
		return nil
	}
	if g := pr.Status.Guardrails; g != nil && g.Commit == pr.Status.Commit && g.Digest == guardrailsDigest(fns) &&
		g.Reason != kpov1.GuardrailErrorReason {
		return nil
	}
	files, err := r.committedFiles(ctx, s)
	if err != nil || files == nil {
		return err
	}
	res := evaluateGuardrails(ctx, r.render, files, fns, pr.Status.Commit)
	s.guardrails = &guardrailsUpdate{result: &res}
	if res.Reason == kpov1.GuardrailErrorReason {
		// Not evaluated, which may pass (a function pod that did not start, an API server that
		// did not answer): evaluated again at the next reconcile, at the latest after
		// guardrailRetry. The same outcome writes nothing, so no reconcile follows from it.
		s.requeueWithin(guardrailRetry)
	}
	return nil
}

// guardrailRetry bounds the wait before guardrails that could not be evaluated are tried again.
const guardrailRetry = 5 * time.Minute

// committedFiles returns the files of the revision's commit: from its content ConfigMap when
// that holds exactly the commit, else from Git. nil while the ConfigMap holds an edit that is
// not committed yet.
func (r *PackageRevisionReconciler) committedFiles(ctx context.Context, s *revisionScope) (map[string][]byte, error) {
	if s.cm != nil {
		if contentPending(s.pr, s.cm) != "" {
			return nil, nil
		}
		return content.FromConfigMap(s.cm.Data, s.cm.BinaryData)
	}
	defer r.git.lock(s.repo)()
	src, err := r.git.open(ctx, s.repo)
	if err != nil {
		return nil, err
	}
	return readPackage(src, s.pr.Status.Commit, discovery.PackagePath(s.repo.Spec.Git.Directory, s.pr.Spec.PackageName), s.pr.Name)
}

// checkGuardrails lets a draft at commit head be proposed only when the Repository's
// guardrails passed on that commit: a failure is terminal (the draft stays Draft, spec.lifecycle
// Proposed waits, and a fixed edit or a change of the guardrails lets it through); a result for
// another commit or other guardrails waits for the evaluation.
func checkGuardrails(repo *kpov1.Repository, pr *kpov1.PackageRevision, recorded *kpov1.GuardrailsResult, head string) error {
	fns := repo.Spec.Guardrails
	if len(fns) == 0 {
		return nil
	}
	if recorded == nil || recorded.Commit != head || recorded.Digest != guardrailsDigest(fns) {
		return &stepError{Reason: kpov1.ProgressingReason, RetryAfter: time.Second,
			Err: fmt.Errorf("evaluating the guardrails of repository %s on commit %s before proposing", repo.Name, shortHash(head))}
	}
	if recorded.Reason == kpov1.PassedReason {
		return nil
	}
	return terminal(recorded.Reason, fmt.Errorf("%s cannot be proposed: repository %s: %s (it stays Draft; spec.lifecycle Proposed is carried out once the guardrails pass)",
		pr.Name, repo.Name, recorded.Message))
}

// guardedBy maps a Repository to its Draft PackageRevisions, whose guardrails its spec sets,
// and to the proposals whose downstream validation checks downstreams of it against them.
func (r *PackageRevisionReconciler) guardedBy(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &kpov1.PackageRevisionList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace()),
		client.MatchingLabels{kpov1.RepositoryLabel: obj.GetName()}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if pr := &list.Items[i]; pr.Status.Lifecycle == kpov1.LifecycleDraft && pr.Spec.Repository == obj.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(pr)})
		}
	}
	variants := &kpov1.PackageVariantList{}
	if err := r.List(ctx, variants, client.InNamespace(obj.GetNamespace())); err != nil {
		return reqs
	}
	for i := range variants.Items {
		if pv := &variants.Items[i]; pv.Spec.Downstream.Repo == obj.GetName() {
			reqs = append(reqs, r.proposalsFollowedBy(ctx, pv)...)
		}
	}
	return reqs
}
