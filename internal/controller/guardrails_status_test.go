package controller

import (
	"context"
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

var testGuardrail = kpov1.Function{Name: "require-team", Image: "gcr.io/kpt-fn/starlark:v0.4.3", ConfigMap: map[string]string{"source": "pass"}}

func TestGuardrailPackage_runsOnlyTheGuardrailsOverEveryResource(t *testing.T) {
	g := NewWithT(t)
	files := map[string][]byte{
		"Kptfile":         []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\npipeline:\n  mutators:\n  - image: set-labels\n"),
		"app.yaml":        []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"),
		"sub/Kptfile":     []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: sub\npipeline:\n  mutators:\n  - image: set-namespace\n"),
		"sub/deploy.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"),
	}
	out, err := guardrailPackage(files, []kpov1.Function{testGuardrail})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).NotTo(HaveKey("sub/Kptfile"), "the subpackage's pipeline does not run again")
	g.Expect(out).To(HaveKey("sub/deploy.yaml"))
	kf, err := kptfile.Decode(out["Kptfile"])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(kf.Pipeline.Mutators).To(BeEmpty())
	g.Expect(kf.Pipeline.Validators).To(HaveLen(1))
	g.Expect(kf.Pipeline.Validators[0].Name).To(Equal("require-team"))
	g.Expect(string(files["Kptfile"])).To(ContainSubstring("mutators"), "the input is not changed")

	_, err = guardrailPackage(map[string][]byte{"Kptfile": []byte("kind: [")}, nil)
	g.Expect(errors.Is(err, render.ErrInvalidKptfile)).To(BeTrue())
}

func TestGuardrailsVerdict_tellsAFailingGuardrailFromOneThatCannotRun(t *testing.T) {
	fns := []kpov1.Function{testGuardrail}
	failed := []render.Result{{Image: testGuardrail.Image, ExitCode: 1, Function: kptfile.Function{Name: "require-team"},
		Results: framework.Results{{Severity: framework.Error, Message: "no team"}}}}
	notRun := []render.Result{{Image: "docker.io/x/y:v1", ExitCode: 1, Function: kptfile.Function{Name: "scan"}, ExecutionError: "not allowed"}}
	for _, tt := range []struct {
		name           string
		results        []render.Result
		err            error
		failed, reason string
		message        string
	}{
		{"passed", nil, nil, "", kpov1.PassedReason, "1 guardrails passed"},
		{"function reported errors", failed, &render.FunctionError{Image: testGuardrail.Image, Results: failed[0].Results},
			"require-team", kpov1.GuardrailFailedReason, `guardrail "require-team" failed`},
		{"image not allowed", notRun, &render.FunctionError{Err: job.ErrImageNotAllowed},
			"scan", kpov1.GuardrailErrorReason, "fix the Repository's spec.guardrails"},
		{"timeout", nil, render.ErrTimeout, "", kpov1.GuardrailErrorReason, "could not be evaluated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			failed, reason, message := guardrailsVerdict(fns, tt.results, tt.err)
			g.Expect(failed).To(Equal(tt.failed))
			g.Expect(reason).To(Equal(tt.reason))
			g.Expect(message).To(ContainSubstring(tt.message))
		})
	}
}

func TestEvaluateGuardrails_withoutARenderer_isAnErrorNotAPass(t *testing.T) {
	g := NewWithT(t)
	res := evaluateGuardrails(context.Background(), nil, nil, []kpov1.Function{testGuardrail}, "c1")
	g.Expect(res.Reason).To(Equal(kpov1.GuardrailErrorReason))
	g.Expect(res.Commit).To(Equal("c1"))
	g.Expect(res.Digest).To(Equal(guardrailsDigest([]kpov1.Function{testGuardrail})))
}

func TestCheckGuardrails_letsOnlyAPassOnTheProposedCommitThrough(t *testing.T) {
	fns := []kpov1.Function{testGuardrail}
	repo := &kpov1.Repository{Spec: kpov1.RepositorySpec{Guardrails: fns}}
	repo.Name = "catalog"
	pr := &kpov1.PackageRevision{}
	pr.Name = "catalog.web.w"
	result := func(commit, digest, reason string) *kpov1.GuardrailsResult {
		return &kpov1.GuardrailsResult{Commit: commit, Digest: digest, Reason: reason, Message: "guardrail \"require-team\" failed: no team"}
	}
	digest := guardrailsDigest(fns)
	for _, tt := range []struct {
		name     string
		repo     *kpov1.Repository
		recorded *kpov1.GuardrailsResult
		reason   string // "" for nil error
		terminal bool
	}{
		{"no guardrails", &kpov1.Repository{}, nil, "", false},
		{"passed on the commit", repo, result("c1", digest, kpov1.PassedReason), "", false},
		{"not evaluated yet", repo, nil, kpov1.ProgressingReason, false},
		{"evaluated on another commit", repo, result("c0", digest, kpov1.PassedReason), kpov1.ProgressingReason, false},
		{"evaluated for other guardrails", repo, result("c1", "old", kpov1.PassedReason), kpov1.ProgressingReason, false},
		{"failed", repo, result("c1", digest, kpov1.GuardrailFailedReason), kpov1.GuardrailFailedReason, true},
		{"could not run", repo, result("c1", digest, kpov1.GuardrailErrorReason), kpov1.GuardrailErrorReason, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := checkGuardrails(tt.repo, pr, tt.recorded, "c1")
			if tt.reason == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			var se *stepError
			g.Expect(errors.As(err, &se)).To(BeTrue())
			g.Expect(se.Reason).To(Equal(tt.reason))
			g.Expect(se.Terminal).To(Equal(tt.terminal))
			if tt.terminal {
				g.Expect(err.Error()).To(ContainSubstring("require-team"))
				g.Expect(err.Error()).To(ContainSubstring("stays Draft"))
			}
		})
	}
}

func TestSetGuardrailsCondition_mirrorsTheRecordedResult(t *testing.T) {
	g := NewWithT(t)
	pr := &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	pr.Status.Guardrails = &kpov1.GuardrailsResult{Commit: "0123456789abcdef", Reason: kpov1.GuardrailFailedReason, Message: `guardrail "x" failed`}
	setGuardrailsCondition(pr)
	c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.GuardrailsPassedCondition)
	g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(c.Reason).To(Equal(kpov1.GuardrailFailedReason))
	g.Expect(c.Message).To(Equal(`commit 0123456789ab: guardrail "x" failed`))
	g.Expect(c.ObservedGeneration).To(Equal(int64(3)))

	pr.Status.Guardrails.Reason = kpov1.PassedReason
	setGuardrailsCondition(pr)
	g.Expect(meta.IsStatusConditionTrue(pr.Status.Conditions, kpov1.GuardrailsPassedCondition)).To(BeTrue())

	pr.Status.Guardrails = nil
	setGuardrailsCondition(pr)
	g.Expect(meta.FindStatusCondition(pr.Status.Conditions, kpov1.GuardrailsPassedCondition)).To(BeNil())
}

func TestDownstreamValidation_summaryCountsAll_resultsFailingFirstAndBounded(t *testing.T) {
	var results []kpov1.DownstreamResult
	for i := range 60 {
		results = append(results, kpov1.DownstreamResult{PackageRevision: "d" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Result: kpov1.DownstreamClean})
	}
	results = append(results,
		kpov1.DownstreamResult{PackageRevision: "z1", Result: kpov1.DownstreamConflict},
		kpov1.DownstreamResult{PackageRevision: "z2", Result: kpov1.DownstreamRenderFailed},
		kpov1.DownstreamResult{PackageRevision: "z3", Result: kpov1.DownstreamRenderFailed},
		kpov1.DownstreamResult{PackageRevision: "z4", Result: kpov1.DownstreamGuardrailFailed},
		kpov1.DownstreamResult{PackageRevision: "z5", Result: kpov1.DownstreamError})
	g := NewWithT(t)
	dv := downstreamValidation("k", results)
	g.Expect(dv.Summary).To(Equal("60 upgrade cleanly, 1 conflicts, 2 fail render, 1 fails guardrails, 1 could not be checked"))
	g.Expect(dv.Results).To(HaveLen(maxDownstreamResults))
	g.Expect(dv.Results[0].PackageRevision).To(Equal("z1"), "failing ones first")
	g.Expect(dv.Results[4].Result).To(Equal(kpov1.DownstreamError))

	pr := &kpov1.PackageRevision{}
	pr.Status.DownstreamValidation = &dv
	setDownstreamsCondition(pr)
	c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.DownstreamsValidatedCondition)
	g.Expect(c.Reason).To(Equal(kpov1.DownstreamsFailingReason))
	g.Expect(c.Message).To(Equal(dv.Summary))

	clean := downstreamValidation("k", []kpov1.DownstreamResult{{PackageRevision: "a", Result: kpov1.DownstreamClean}})
	g.Expect(clean.Summary).To(Equal("1 upgrades cleanly"))
	pr.Status.DownstreamValidation = &clean
	setDownstreamsCondition(pr)
	g.Expect(meta.IsStatusConditionTrue(pr.Status.Conditions, kpov1.DownstreamsValidatedCondition)).To(BeTrue())
	pr.Status.DownstreamValidation = nil
	setDownstreamsCondition(pr)
	g.Expect(pr.Status.Conditions).To(BeEmpty())
}

func TestNewestPublished_isTheVariantsHighestPublishedRevision(t *testing.T) {
	g := NewWithT(t)
	rev := func(name, variant string, l kpov1.Lifecycle, n int) kpov1.PackageRevision {
		pr := kpov1.PackageRevision{}
		pr.Name, pr.Labels = name, map[string]string{kpov1.PackageVariantLabel: variant}
		pr.Status.Lifecycle, pr.Status.Revision = l, n
		return pr
	}
	revs := []kpov1.PackageRevision{
		rev("v1", "app", kpov1.LifecyclePublished, 1),
		rev("v3", "app", kpov1.LifecyclePublished, 3),
		rev("v2", "app", kpov1.LifecyclePublished, 2),
		rev("draft", "app", kpov1.LifecycleDraft, 0),
		rev("other", "other", kpov1.LifecyclePublished, 9),
		rev("main", "app", kpov1.LifecyclePublished, -1),
	}
	g.Expect(newestPublished(revs, "app").Name).To(Equal("v3"))
	g.Expect(newestPublished(revs, "none")).To(BeNil())
}

func TestTruncate_keepsRunesWhole(t *testing.T) {
	g := NewWithT(t)
	g.Expect(truncate("short", 10)).To(Equal("short"))
	out := truncate(strings.Repeat("é", 10), 8)
	g.Expect(len(out)).To(BeNumerically("<=", 8))
	g.Expect(strings.ToValidUTF8(out, "?")).To(Equal(out))
}

func TestRefusedTransition_includesGuardrails(t *testing.T) {
	g := NewWithT(t)
	pr := &kpov1.PackageRevision{}
	pr.Status.Conditions = []metav1.Condition{{Type: kpov1.ReadyCondition, Status: metav1.ConditionFalse, Reason: kpov1.GuardrailFailedReason, Message: "m"}}
	g.Expect(refusedTransition(pr)).NotTo(BeNil())
}

// Guardrails that could not be evaluated are evaluated again (at the next reconcile, which comes
// within guardrailRetry); an outcome the guardrails gave (passed or failed) is kept for its
// commit.
func TestReconcileGuardrails_errorIsEvaluatedAgain_anOutcomeIsKept(t *testing.T) {
	g := NewWithT(t)
	files := map[string][]byte{
		"Kptfile":  []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n"),
		"app.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"),
	}
	data, binary, err := content.ToConfigMap(files)
	g.Expect(err).NotTo(HaveOccurred())
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "repo.app.ws", Annotations: map[string]string{
			kpov1.ContentCommitAnnotation: "c0ffee", kpov1.ContentDigestAnnotation: content.Digest(files)}},
		Data: data, BinaryData: binary,
	}
	repo := &kpov1.Repository{Spec: kpov1.RepositorySpec{Guardrails: []kpov1.Function{testGuardrail}}}
	pr := &kpov1.PackageRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "repo.app.ws"},
		Status:     kpov1.PackageRevisionStatus{Lifecycle: kpov1.LifecycleDraft, Commit: "c0ffee"},
	}
	var outcomes []error // what the guardrails' runs give, in order
	calls := 0
	r := &PackageRevisionReconciler{render: func(context.Context, map[string][]byte) (map[string][]byte, []render.Result, error) {
		err := outcomes[calls]
		calls++
		return nil, nil, err
	}}
	reconcile := func() *revisionScope {
		s := &revisionScope{pr: pr, repo: repo, cm: cm}
		g.Expect(r.reconcileGuardrails(context.Background(), s)).To(Succeed())
		if s.guardrails != nil {
			pr.Status.Guardrails = s.guardrails.result // as the status patch records it
		}
		return s
	}

	outcomes = []error{errors.New("function pod did not start"), nil}
	s := reconcile()
	g.Expect(pr.Status.Guardrails.Reason).To(Equal(kpov1.GuardrailErrorReason))
	g.Expect(pr.Status.Guardrails.Message).To(ContainSubstring("tried again every 5m0s"))
	g.Expect(s.requeueAfter).To(Equal(guardrailRetry), "an error comes back")
	s = reconcile()
	g.Expect(calls).To(Equal(2), "the same commit and guardrails are evaluated again after an error")
	g.Expect(pr.Status.Guardrails.Reason).To(Equal(kpov1.PassedReason))
	g.Expect(s.requeueAfter).To(BeZero())
	s = reconcile()
	g.Expect(calls).To(Equal(2), "a pass is kept for its commit")
	g.Expect(s.guardrails).To(BeNil())

	pr.Status.Commit, cm.Annotations[kpov1.ContentCommitAnnotation] = "c0ffee2", "c0ffee2"
	outcomes = append(outcomes, &render.FunctionError{Image: testGuardrail.Image, ExitCode: 1, Err: errors.New("team label missing")})
	reconcile()
	g.Expect(pr.Status.Guardrails.Reason).To(Equal(kpov1.GuardrailFailedReason))
	reconcile()
	g.Expect(calls).To(Equal(3), "a failure is kept for its commit: only an edit or other guardrails change it")
}
