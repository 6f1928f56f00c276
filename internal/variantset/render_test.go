package variantset

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

func ptr(s string) *string { return &s }

func setWith(tmpl *kpov1.PackageVariantTemplate) *kpov1.PackageVariantSetSpec {
	return &kpov1.PackageVariantSetSpec{
		Upstream: kpov1.UpstreamPackage{Repo: "blueprints", Package: "base", Revision: "v1"},
		Targets:  []kpov1.Target{{Repositories: []kpov1.RepositoryTarget{{Name: "edge-1"}}, Template: tmpl}},
	}
}

var inputs = Inputs{
	Upstream: Object{Name: "blueprints.base.v1", Namespace: "ns", Labels: map[string]string{"tier": "web"}},
	Repositories: map[string]Object{
		"edge-1": {Name: "edge-1", Namespace: "ns", Labels: map[string]string{"region": "east"}},
	},
}

func TestRender_templates(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tmpl   *kpov1.PackageVariantTemplate
		target Target
		check  func(g Gomega, s kpov1.PackageVariantSpec)
	}{{
		name:   "no template: Porch's defaults",
		target: Target{RepoDefault: "edge-1", PackageDefault: "base"},
		check: func(g Gomega, s kpov1.PackageVariantSpec) {
			g.Expect(s.Downstream).To(Equal(kpov1.DownstreamPackage{Repo: "edge-1", Package: "base"}))
			g.Expect(s.Upstream.Revision).To(Equal("v1"))
			g.Expect(s.AdoptionPolicy).To(Equal(kpov1.AdoptionPolicyAdoptNone))
			g.Expect(s.DeletionPolicy).To(Equal(kpov1.DeletionPolicyDelete))
		},
	}, {
		name: "expressions see the defaults, the upstream, the repository and the target",
		tmpl: &kpov1.PackageVariantTemplate{
			Downstream: &kpov1.DownstreamTemplate{PackageExpr: `packageDefault + "-" + target.repo`},
			Labels:     map[string]string{"fixed": "yes"},
			LabelExprs: []kpov1.MapExpr{
				{Key: ptr("region"), ValueExpr: ptr(`repository.labels["region"]`)},
				{KeyExpr: ptr(`"tier." + upstream.labels["tier"]`), Value: ptr("x")},
				{Key: ptr("target"), ValueExpr: ptr(`target.repo + "." + target.package`)},
			},
			AnnotationExprs: []kpov1.MapExpr{{Key: ptr("example.com/upstream"), ValueExpr: ptr("upstream.name")}},
			PackageContext: &kpov1.PackageContextTemplate{
				DataExprs:      []kpov1.MapExpr{{Key: ptr("site"), ValueExpr: ptr("repoDefault")}},
				RemoveKeyExprs: []string{`"old-" + repoDefault`},
			},
			Pipeline: &kpov1.PipelineTemplate{Mutators: []kpov1.FunctionTemplate{{
				Function:       kpov1.Function{Image: "set-labels", ConfigMap: map[string]string{"a": "b"}},
				ConfigMapExprs: []kpov1.MapExpr{{Key: ptr("site"), ValueExpr: ptr("repoDefault")}},
			}}},
			Injectors:      []kpov1.InjectionSelectorTemplate{{NameExpr: ptr(`repoDefault + "-settings"`)}},
			DeletionPolicy: kpov1.DeletionPolicyOrphan,
		},
		target: Target{RepoDefault: "edge-1", PackageDefault: "base"},
		check: func(g Gomega, s kpov1.PackageVariantSpec) {
			g.Expect(s.Downstream).To(Equal(kpov1.DownstreamPackage{Repo: "edge-1", Package: "base-edge-1"}))
			g.Expect(s.Labels).To(Equal(map[string]string{"fixed": "yes", "region": "east", "tier.web": "x", "target": "edge-1.base"}))
			g.Expect(s.Annotations).To(Equal(map[string]string{"example.com/upstream": "blueprints.base.v1"}))
			g.Expect(s.PackageContext.Data).To(Equal(map[string]string{"site": "edge-1"}))
			g.Expect(s.PackageContext.RemoveKeys).To(Equal([]string{"old-edge-1"}))
			g.Expect(s.Pipeline.Mutators[0].ConfigMap).To(Equal(map[string]string{"a": "b", "site": "edge-1"}))
			g.Expect(s.Injectors[0].Name).To(Equal("edge-1-settings"))
			g.Expect(s.DeletionPolicy).To(Equal(kpov1.DeletionPolicyOrphan))
		},
	}, {
		name:   "an object target: the object is the target",
		tmpl:   &kpov1.PackageVariantTemplate{Downstream: &kpov1.DownstreamTemplate{RepoExpr: `target.labels["repo"]`, PackageExpr: `target.kind + "-" + target.name`}},
		target: Target{RepoDefault: "cluster-a", PackageDefault: "base", Object: &Object{APIVersion: "v1", Kind: "ConfigMap", Name: "cluster-a", Labels: map[string]string{"repo": "edge-1"}}},
		check: func(g Gomega, s kpov1.PackageVariantSpec) {
			g.Expect(s.Downstream).To(Equal(kpov1.DownstreamPackage{Repo: "edge-1", Package: "ConfigMap-cluster-a"}))
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			e, err := NewEvaluator()
			g.Expect(err).NotTo(HaveOccurred())
			spec := setWith(tc.tmpl)
			g.Expect(e.Validate(spec)).To(Succeed())
			s, err := e.Render(spec, tc.target, inputs)
			g.Expect(err).NotTo(HaveOccurred())
			tc.check(g, s)
		})
	}
}

func TestRender_invalidTemplates(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tmpl      *kpov1.PackageVariantTemplate
		validates bool
		want      []string
	}{
		{name: "syntax error", tmpl: &kpov1.PackageVariantTemplate{Downstream: &kpov1.DownstreamTemplate{PackageExpr: `packageDefault +`}},
			want: []string{"spec.targets[0].template.downstream.packageExpr", `"packageDefault +"`}},
		{name: "unknown variable", tmpl: &kpov1.PackageVariantTemplate{LabelExprs: []kpov1.MapExpr{{Key: ptr("a"), ValueExpr: ptr("cluster.name")}}},
			want: []string{"spec.targets[0].template.labelExprs[0].valueExpr", "undeclared reference"}},
		{name: "not a string", tmpl: &kpov1.PackageVariantTemplate{Injectors: []kpov1.InjectionSelectorTemplate{{NameExpr: ptr("1 + 2")}}},
			want: []string{"injectors[0].nameExpr", "not a string"}},
		{name: "missing key at evaluation", validates: true,
			tmpl: &kpov1.PackageVariantTemplate{LabelExprs: []kpov1.MapExpr{{Key: ptr("a"), ValueExpr: ptr(`repository.labels["zone"]`)}}},
			want: []string{"labelExprs[0].valueExpr", "zone"}},
		{name: "label value Kubernetes refuses", validates: true,
			tmpl: &kpov1.PackageVariantTemplate{LabelExprs: []kpov1.MapExpr{{Key: ptr("a"), ValueExpr: ptr(`"has space"`)}}},
			want: []string{"spec.targets[0].template.labels", "has space"}},
		{name: "package path refused", validates: true,
			tmpl: &kpov1.PackageVariantTemplate{Downstream: &kpov1.DownstreamTemplate{PackageExpr: `"../up"`}},
			want: []string{"downstream.package", "not a package path"}},
		{name: "runaway expression is cut by the cost limit", validates: true,
			tmpl: &kpov1.PackageVariantTemplate{LabelExprs: []kpov1.MapExpr{{Key: ptr("a"),
				ValueExpr: ptr(`[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, [1,2,3,4,5,6,7,8,9,10].map(c, [1,2,3,4,5,6,7,8,9,10].map(d, [1,2,3,4,5,6,7,8,9,10].map(e, a+b+c+d+e))))).size() > 0 ? "x" : "y"`)}}},
			want: []string{"cost limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			e, err := NewEvaluator()
			g.Expect(err).NotTo(HaveOccurred())
			spec := setWith(tc.tmpl)
			err = e.Validate(spec)
			if !tc.validates {
				g.Expect(IsTemplateError(err)).To(BeTrue(), "%v", err)
			} else {
				g.Expect(err).NotTo(HaveOccurred())
				_, err = e.Render(spec, Target{RepoDefault: "edge-1", PackageDefault: "base"}, inputs)
				g.Expect(IsTemplateError(err)).To(BeTrue(), "%v", err)
			}
			for _, w := range tc.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}
}

func TestVariantName(t *testing.T) {
	g := NewWithT(t)
	g.Expect(VariantName("fleet", "edge-1", "base")).To(Equal("fleet-edge-1-base"))
	g.Expect(VariantName("fleet", "Edge_1", "apps/web.v2")).To(Equal("fleet-edge-1-apps-web-v2"))
	long := VariantName("fleet", strings.Repeat("r", 40), strings.Repeat("p", 40))
	g.Expect(len(long)).To(BeNumerically("<=", 63))
	g.Expect(long).To(Equal(VariantName("fleet", strings.Repeat("r", 40), strings.Repeat("p", 40))), "deterministic")
	g.Expect(long).NotTo(Equal(VariantName("fleet", strings.Repeat("r", 40), strings.Repeat("p", 41))))
}
