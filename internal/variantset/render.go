package variantset

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// Object is what an expression sees of a Kubernetes object.
type Object struct {
	APIVersion  string
	Kind        string
	Name        string
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string
}

func (o Object) value() map[string]any {
	return map[string]any{
		"apiVersion": o.APIVersion, "kind": o.Kind, "name": o.Name, "namespace": o.Namespace,
		"labels": nonNil(o.Labels), "annotations": nonNil(o.Annotations),
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Target is one selected target of a set: an entry of spec.targets and what it selected.
type Target struct {
	// Index of the entry in spec.targets.
	Index int
	// RepoDefault and PackageDefault are Porch's defaults: the repository (repository
	// targets) or object (object targets) name, and the package name the target gives or the
	// upstream package's name.
	RepoDefault, PackageDefault string
	// Object is the selected object of an objectSelector target; nil for repository targets.
	Object *Object
}

// Inputs are what every target of a set shares.
type Inputs struct {
	// Upstream is the upstream PackageRevision.
	Upstream Object
	// Repositories are the Repositories of the set's namespace, by name.
	Repositories map[string]Object
}

// downstreamPackage is the pattern of PackageVariant's spec.downstream.package.
var downstreamPackage = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]*(/[A-Za-z0-9][-A-Za-z0-9_.]*)*$`)

// Validate compiles every expression of spec, so an invalid one is reported even when no
// target selects anything yet.
func (e *Evaluator) Validate(spec *kpov1.PackageVariantSetSpec) error {
	for i := range spec.Targets {
		t := spec.Targets[i].Template
		if t == nil {
			continue
		}
		var err error
		walkExprs(t, fmt.Sprintf("spec.targets[%d].template", i), func(field, expr string) {
			if err == nil {
				_, err = e.compile(field, expr)
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// walkExprs calls fn with every expression of t and its field path.
func walkExprs(t *kpov1.PackageVariantTemplate, path string, fn func(field, expr string)) {
	str := func(field string, s string) {
		if s != "" {
			fn(field, s)
		}
	}
	ptr := func(field string, s *string) {
		if s != nil {
			fn(field, *s)
		}
	}
	maps := func(field string, exprs []kpov1.MapExpr) {
		for i, m := range exprs {
			ptr(fmt.Sprintf("%s[%d].keyExpr", field, i), m.KeyExpr)
			ptr(fmt.Sprintf("%s[%d].valueExpr", field, i), m.ValueExpr)
		}
	}
	if d := t.Downstream; d != nil {
		str(path+".downstream.repoExpr", d.RepoExpr)
		str(path+".downstream.packageExpr", d.PackageExpr)
	}
	maps(path+".labelExprs", t.LabelExprs)
	maps(path+".annotationExprs", t.AnnotationExprs)
	if c := t.PackageContext; c != nil {
		maps(path+".packageContext.dataExprs", c.DataExprs)
		for i, k := range c.RemoveKeyExprs {
			str(fmt.Sprintf("%s.packageContext.removeKeyExprs[%d]", path, i), k)
		}
	}
	if p := t.Pipeline; p != nil {
		for i, f := range p.Mutators {
			maps(fmt.Sprintf("%s.pipeline.mutators[%d].configMapExprs", path, i), f.ConfigMapExprs)
		}
		for i, f := range p.Validators {
			maps(fmt.Sprintf("%s.pipeline.validators[%d].configMapExprs", path, i), f.ConfigMapExprs)
		}
	}
	for i, inj := range t.Injectors {
		ptr(fmt.Sprintf("%s.injectors[%d].nameExpr", path, i), inj.NameExpr)
	}
}

// renderer evaluates one target's template.
type renderer struct {
	e    *Evaluator
	path string
	vars map[string]any
	err  error
}

// value is lit, or expr evaluated when set; the first failure is kept.
func (r *renderer) value(field, lit, expr string) string {
	if r.err != nil || expr == "" {
		return lit
	}
	v, err := r.e.eval(r.path+"."+field, expr, r.vars)
	r.err = err
	return v
}

// mapOf merges literal entries and expression entries into one map.
func (r *renderer) mapOf(field string, lit map[string]string, exprs []kpov1.MapExpr) map[string]string {
	if len(lit) == 0 && len(exprs) == 0 {
		return nil
	}
	out := make(map[string]string, len(lit)+len(exprs))
	for k, v := range lit {
		out[k] = v
	}
	for i, m := range exprs {
		k := r.value(fmt.Sprintf("%s[%d].keyExpr", field, i), deref(m.Key), deref(m.KeyExpr))
		v := r.value(fmt.Sprintf("%s[%d].valueExpr", field, i), deref(m.Value), deref(m.ValueExpr))
		out[k] = v
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Render builds the spec of the PackageVariant of target t: its upstream is the set's (the
// caller pins the revision of a rollout), the rest comes from the template, with Porch's
// defaults for what it leaves out.
func (e *Evaluator) Render(spec *kpov1.PackageVariantSetSpec, t Target, in Inputs) (kpov1.PackageVariantSpec, error) {
	tmpl := spec.Targets[t.Index].Template
	if tmpl == nil {
		tmpl = &kpov1.PackageVariantTemplate{}
	}
	target := map[string]any{"repo": t.RepoDefault, "package": t.PackageDefault}
	if t.Object != nil {
		target = t.Object.value()
	}
	r := &renderer{e: e, path: fmt.Sprintf("spec.targets[%d].template", t.Index), vars: map[string]any{
		varRepoDefault: t.RepoDefault, varPackageDefault: t.PackageDefault,
		varUpstream: in.Upstream.value(), varTarget: target, varRepository: map[string]any{},
	}}
	out := kpov1.PackageVariantSpec{Upstream: spec.Upstream,
		Downstream:     kpov1.DownstreamPackage{Repo: t.RepoDefault, Package: t.PackageDefault},
		AdoptionPolicy: kpov1.AdoptionPolicyAdoptNone, DeletionPolicy: kpov1.DeletionPolicyDelete}
	if d := tmpl.Downstream; d != nil {
		out.Downstream.Repo = r.value("downstream.repoExpr", orDefault(d.Repo, t.RepoDefault), d.RepoExpr)
		out.Downstream.Package = r.value("downstream.packageExpr", orDefault(d.Package, t.PackageDefault), d.PackageExpr)
	}
	if r.err != nil {
		return out, r.err
	}
	if err := checkDownstream(r.path, out.Downstream); err != nil {
		return out, err
	}
	// The downstream Repository is known only now: expressions of the other fields see it.
	repo, ok := in.Repositories[out.Downstream.Repo]
	if !ok {
		repo = Object{Name: out.Downstream.Repo}
	}
	r.vars[varRepository] = repo.value()

	if tmpl.AdoptionPolicy != "" {
		out.AdoptionPolicy = tmpl.AdoptionPolicy
	}
	if tmpl.DeletionPolicy != "" {
		out.DeletionPolicy = tmpl.DeletionPolicy
	}
	out.Labels = r.mapOf("labelExprs", tmpl.Labels, tmpl.LabelExprs)
	out.Annotations = r.mapOf("annotationExprs", tmpl.Annotations, tmpl.AnnotationExprs)
	if c := tmpl.PackageContext; c != nil {
		pc := &kpov1.PackageContext{Data: r.mapOf("packageContext.dataExprs", c.Data, c.DataExprs)}
		pc.RemoveKeys = append(pc.RemoveKeys, c.RemoveKeys...)
		for i, k := range c.RemoveKeyExprs {
			pc.RemoveKeys = append(pc.RemoveKeys, r.value(fmt.Sprintf("packageContext.removeKeyExprs[%d]", i), "", k))
		}
		out.PackageContext = pc
	}
	if p := tmpl.Pipeline; p != nil {
		out.Pipeline = &kpov1.Pipeline{
			Mutators:   r.functions("pipeline.mutators", p.Mutators),
			Validators: r.functions("pipeline.validators", p.Validators),
		}
	}
	for i, inj := range tmpl.Injectors {
		out.Injectors = append(out.Injectors, kpov1.InjectionSelector{Group: inj.Group, Version: inj.Version, Kind: inj.Kind,
			Name: r.value(fmt.Sprintf("injectors[%d].nameExpr", i), deref(inj.Name), deref(inj.NameExpr))})
	}
	if r.err != nil {
		return out, r.err
	}
	return out, checkMetadata(r.path, out)
}

func (r *renderer) functions(field string, fns []kpov1.FunctionTemplate) []kpov1.Function {
	var out []kpov1.Function
	for i, f := range fns {
		fn := *f.Function.DeepCopy()
		fn.ConfigMap = r.mapOf(fmt.Sprintf("%s[%d].configMapExprs", field, i), fn.ConfigMap, f.ConfigMapExprs)
		out = append(out, fn)
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkDownstream refuses a downstream the PackageVariant's schema would refuse, saying where
// it came from.
func checkDownstream(path string, d kpov1.DownstreamPackage) error {
	if d.Repo == "" {
		return &TemplateError{Field: path + ".downstream.repo", Err: fmt.Errorf("the downstream repository is empty")}
	}
	if len(d.Package) > 200 || !downstreamPackage.MatchString(d.Package) {
		return &TemplateError{Field: path + ".downstream.package", Err: fmt.Errorf(
			"%q is not a package path: segments of letters, digits, '-', '_' and '.' separated by '/', at most 200 characters", d.Package)}
	}
	return nil
}

// checkMetadata refuses labels Kubernetes would refuse on a PackageRevision.
func checkMetadata(path string, s kpov1.PackageVariantSpec) error {
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return &TemplateError{Field: path + ".labels", Err: fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))}
		}
		if errs := validation.IsValidLabelValue(s.Labels[k]); len(errs) > 0 {
			return &TemplateError{Field: path + ".labels", Err: fmt.Errorf("label %s value %q: %s", k, s.Labels[k], strings.Join(errs, "; "))}
		}
	}
	for k := range s.Annotations {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return &TemplateError{Field: path + ".annotations", Err: fmt.Errorf("annotation key %q: %s", k, strings.Join(errs, "; "))}
		}
	}
	return nil
}

// maxName is the longest name a PackageVariant of a set gets: it is also the value of the
// kpo.dev/package-variant label of its revisions.
const maxName = validation.DNS1123LabelMaxLength

var notName = regexp.MustCompile(`[^a-z0-9-]+`)

// VariantName is the name of the set's PackageVariant for a downstream package:
// <set>-<repo>-<package>, lowercased, with every run of other characters than letters, digits
// and '-' turned into '-'; past 63 characters, cut and ended with a hash of the three parts, so
// the same downstream always gets the same name.
func VariantName(set, repo, pkg string) string {
	name := strings.Trim(notName.ReplaceAllString(strings.ToLower(set+"-"+repo+"-"+pkg), "-"), "-")
	if len(name) <= maxName {
		return name
	}
	sum := sha256.Sum256([]byte(set + "\x00" + repo + "\x00" + pkg))
	return strings.TrimRight(name[:maxName-11], "-") + "-" + hex.EncodeToString(sum[:])[:10]
}
