package controller

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/kptfile"
)

func TestSetVariantStatus_readyAndStalledFollowTheOutcome(t *testing.T) {
	targets := []kpov1.DownstreamTarget{{Name: "deployments.app.packagevariant-1", RenderStatus: kpov1.RenderSucceededReason}}
	for _, tt := range []struct {
		name             string
		waiting, message string
		err              error
		ready, stalled   metav1.ConditionStatus
		reason           string
		observed         int64
	}{
		{"up to date", "", "", nil, metav1.ConditionTrue, metav1.ConditionFalse, kpov1.UpToDateReason, 3},
		{"waiting for its draft", kpov1.WaitingForDraftReason, "waiting for PackageDraft x", nil, metav1.ConditionFalse, metav1.ConditionFalse, kpov1.WaitingForDraftReason, 3},
		{"invalid spec stalls", "", "", terminal(kpov1.InvalidSpecReason, errors.New("spec.labels[kpo.dev/draft] is set by the kpo manager")),
			metav1.ConditionFalse, metav1.ConditionTrue, kpov1.InvalidSpecReason, 3},
		{"missing upstream is retried, not stalled", "", "", &stepError{Reason: kpov1.UpstreamNotFoundReason, RetryAfter: time.Minute, Err: errors.New("no v9")},
			metav1.ConditionFalse, metav1.ConditionFalse, kpov1.UpstreamNotFoundReason, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			pv := &kpov1.PackageVariant{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			pv.Status.ObservedGeneration = 2
			setVariantStatus(pv, 3, targets, tt.waiting, tt.message, tt.err)
			ready := meta.FindStatusCondition(pv.Status.Conditions, kpov1.ReadyCondition)
			stalled := meta.FindStatusCondition(pv.Status.Conditions, kpov1.StalledCondition)
			g.Expect(ready.Status).To(Equal(tt.ready))
			g.Expect(ready.Reason).To(Equal(tt.reason))
			g.Expect(ready.ObservedGeneration).To(Equal(int64(3)))
			g.Expect(stalled.Status).To(Equal(tt.stalled))
			if tt.err != nil {
				g.Expect(ready.Message).To(Equal(tt.err.Error()))
			}
			g.Expect(pv.Status.ObservedGeneration).To(Equal(tt.observed))
			g.Expect(pv.Status.DownstreamTargets).To(Equal(targets))
		})
	}
}

func TestVariantTargets_areDraftsAndProposalsElseTheNewestPublished(t *testing.T) {
	g := NewWithT(t)
	rev := func(name string, l kpov1.Lifecycle, n int) kpov1.PackageRevision {
		pr := kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Name: name}}
		pr.Status.Lifecycle, pr.Status.Revision = l, n
		return pr
	}
	published := []kpov1.PackageRevision{rev("p.a.v1", kpov1.LifecyclePublished, 1), rev("p.a.v2", kpov1.LifecyclePublished, 2)}
	g.Expect(variantTargets(published)).To(Equal([]kpov1.DownstreamTarget{{Name: "p.a.v2"}}))
	withDraft := append(published, rev("p.a.d", kpov1.LifecycleDraft, 0))
	withDraft[2].Status.Conditions = []metav1.Condition{{Type: kpov1.RenderedCondition, Status: metav1.ConditionFalse, Reason: kpov1.FunctionFailedReason}}
	g.Expect(variantTargets(withDraft)).To(Equal([]kpov1.DownstreamTarget{{Name: "p.a.d", RenderStatus: kpov1.FunctionFailedReason}}))
	g.Expect(variantTargets(nil)).To(BeEmpty())
}

func TestValidateVariantSpec_refusesManagerOwnedKeysAndReservedContext(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec kpov1.PackageVariantSpec
		want []string
	}{
		{"fine", kpov1.PackageVariantSpec{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"example.com/x": "y"},
			PackageContext: &kpov1.PackageContext{Data: map[string]string{"region": "east"}, RemoveKeys: []string{"zone"}}}, nil},
		{"manager label", kpov1.PackageVariantSpec{Labels: map[string]string{kpov1.LatestRevisionLabel: "true"}}, []string{"spec.labels[kpo.dev/latest-revision]"}},
		{"manager annotation", kpov1.PackageVariantSpec{Annotations: map[string]string{kpov1.ApprovedByAnnotation: "x"}}, []string{"spec.annotations[kpo.dev/approved-by]"}},
		{"subdomain of kpo.dev", kpov1.PackageVariantSpec{Labels: map[string]string{"x.kpo.dev/y": "z"}}, []string{"x.kpo.dev/y"}},
		{"reserved context", kpov1.PackageVariantSpec{PackageContext: &kpov1.PackageContext{Data: map[string]string{"name": "x"}, RemoveKeys: []string{"package-path"}}},
			[]string{"spec.packageContext.data[name]", "removeKeys holds package-path"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := validateVariantSpec(&tt.spec)
			if tt.want == nil {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(HaveOccurred())
			for _, w := range tt.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}
}

const variantTestKptfile = "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\npipeline:\n  mutators:\n" +
	"  - image: ghcr.io/kptdev/krm-functions-catalog/set-namespace:latest\n    configMap:\n      namespace: x\n" +
	"  - image: old\n    name: PackageVariant.v.gone.0\n"

func TestCustomize_appliesContextPipelineAndInjection_andIsIdempotent(t *testing.T) {
	g := NewWithT(t)
	files := map[string][]byte{
		"Kptfile":              []byte(variantTestKptfile),
		"package-context.yaml": kptfile.PackageContext("app"),
		"settings.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  annotations:\n    kpt.dev/config-injection: required\ndata:\n  a: b\n" +
			"---\napiVersion: example.com/v1\nkind: Endpoints\nmetadata:\n  name: eps\n  annotations:\n    kpt.dev/config-injection: optional\nspec:\n  url: none\n"),
		"README.md": []byte("# app\n"),
	}
	pv := &kpov1.PackageVariant{ObjectMeta: metav1.ObjectMeta{Name: "v"}, Spec: kpov1.PackageVariantSpec{
		PackageContext: &kpov1.PackageContext{Data: map[string]string{"region": "east"}, RemoveKeys: []string{"absent"}},
		Pipeline: &kpov1.Pipeline{Mutators: []kpov1.Function{{Name: "lbl", Image: "set-labels", Selectors: []kpov1.Selector{{Kind: "Deployment"}}}},
			Validators: []kpov1.Function{{Image: "kubeconform"}}},
		Injectors: []kpov1.InjectionSelector{{Name: "east"}},
	}}
	lookup := func(gvk schema.GroupVersionKind, name string) (*unstructured.Unstructured, error) {
		if gvk.Kind != "ConfigMap" || name != "east" {
			return nil, errors.New(gvk.Kind + " " + name + " not found")
		}
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "east"}, "data": map[string]any{"a": "injected"}}}, nil
	}
	c, err := customize(files, pv, lookup)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(files["package-context.yaml"])).NotTo(ContainSubstring("region"), "the input is not changed")
	g.Expect(string(c.Files["package-context.yaml"])).To(And(ContainSubstring("region: east"), ContainSubstring("name: app")))
	kf, err := kptfile.Decode(c.Files["Kptfile"])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(kf.Pipeline.Mutators).To(HaveLen(2))
	g.Expect(kf.Pipeline.Mutators[0].Name).To(Equal("PackageVariant.v.lbl.0"), "prepended")
	g.Expect(kf.Pipeline.Mutators[0].Selectors).To(Equal([]kptfile.Selector{{Kind: "Deployment"}}))
	g.Expect(kf.Pipeline.Mutators[1].Image).To(ContainSubstring("set-namespace"), "the package's own function stays; the old variant function is gone")
	g.Expect(kf.Pipeline.Validators[0].Name).To(Equal("PackageVariant.v..0"))
	g.Expect(string(c.Files["settings.yaml"])).To(And(ContainSubstring("a: injected"), ContainSubstring("kpt.dev/injected-resource-name: east"), ContainSubstring("url: none")))
	g.Expect(c.RequiredGates).To(Equal([]string{"config.injection.ConfigMap.settings"}))
	g.Expect(kf.Info.ReadinessGates).To(Equal([]kptfile.ReadinessGate{{ConditionType: "config.injection.ConfigMap.settings"}}))
	g.Expect(kf.Status.Conditions).To(HaveLen(2))
	g.Expect(kf.Status.Conditions[0].Status).To(Equal(kptfile.ConditionTrue))
	g.Expect(kf.Status.Conditions[1].Type).To(Equal("config.injection.Endpoints.eps"))
	g.Expect(kf.Status.Conditions[1].Status).To(Equal(kptfile.ConditionFalse))
	g.Expect(kf.Status.Conditions[1].Message).To(ContainSubstring("Endpoints east not found"))

	again, err := customize(c.Files, pv, lookup)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.Files).To(Equal(c.Files), "applying the customisations again changes nothing")
}

func TestCustomize_refusesWhatThePackageCannotTake(t *testing.T) {
	base := func() map[string][]byte {
		return map[string][]byte{"Kptfile": []byte(variantTestKptfile)}
	}
	for _, tt := range []struct {
		name  string
		files map[string][]byte
		spec  kpov1.PackageVariantSpec
		want  string
	}{
		{"context without package-context.yaml", base(), kpov1.PackageVariantSpec{PackageContext: &kpov1.PackageContext{Data: map[string]string{"a": "b"}}}, "has no package-context.yaml"},
		{"invalid injection annotation", func() map[string][]byte {
			f := base()
			f["x.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n    kpt.dev/config-injection: maybe\n")
			return f
		}(), kpov1.PackageVariantSpec{}, `"maybe", which must be required or optional`},
		{"ambiguous injection points", func() map[string][]byte {
			f := base()
			cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n    kpt.dev/config-injection: optional\n"
			f["a.yaml"], f["b.yaml"] = []byte(cm), []byte(cm)
			return f
		}(), kpov1.PackageVariantSpec{}, "ambiguous"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := customize(tt.files, &kpov1.PackageVariant{Spec: tt.spec}, func(schema.GroupVersionKind, string) (*unstructured.Unstructured, error) {
				return nil, errors.New("none")
			})
			NewWithT(t).Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}
