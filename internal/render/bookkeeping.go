package render

import (
	"fmt"
	"sort"
	"strconv"

	"sigs.k8s.io/kustomize/kyaml/errors"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/yamlfast"
)

// kpt runs each function inside a kio.Pipeline, whose bookkeeping around the function keeps
// the internal (internal.config.kubernetes.io/…) and legacy (config.kubernetes.io/…) forms
// of the path, index and id annotations in step: when a function changes one form, the
// other follows. trackAnnotations and reconcileAnnotations do exactly what the pipeline does
// before and after its filter (kio.PreprocessResourcesForInternalAnnotationMigration and
// kio.ReconcileInternalAnnotations), without the pipeline's per-call overhead.

// fileAnnotationKeys are the annotations the pipeline tracks, internal forms first.
var fileAnnotationKeys = [6]string{
	kioutil.PathAnnotation, kioutil.IndexAnnotation, kioutil.IdAnnotation,
	kioutil.LegacyPathAnnotation, kioutil.LegacyIndexAnnotation, kioutil.LegacyIdAnnotation,
}

const (
	annoPath = iota
	annoIndex
	annoID
	annoLegacyPath
	annoLegacyIndex
	annoLegacyID
)

// fileAnnotations are a resource's tracked annotations as they were before a function ran.
type fileAnnotations struct {
	value [6]string
	found [6]bool
}

func readFileAnnotations(n *yaml.RNode) fileAnnotations {
	var a fileAnnotations
	yamlfast.MetaAnnotations(n, fileAnnotationKeys[:], a.value[:], a.found[:])
	return a
}

// trackAnnotations tags every node with its position and records its tracked annotations.
func trackAnnotations(nodes []*yaml.RNode) ([]fileAnnotations, error) {
	before := make([]fileAnnotations, len(nodes))
	for i, n := range nodes {
		if err := yamlfast.SetAnnotation(n, kioutil.InternalAnnotationsMigrationResourceIDAnnotation, strconv.Itoa(i)); err != nil {
			return nil, err
		}
		before[i] = readFileAnnotations(n)
		if err := yamlfast.CopyLegacyAnnotations(n); err != nil {
			return nil, err
		}
		if err := checkMismatchedAnnotations(n); err != nil {
			return nil, err
		}
	}
	return before, nil
}

func checkMismatchedAnnotations(n *yaml.RNode) error {
	a := readFileAnnotations(n)
	for _, c := range []struct {
		internal, legacy int
		what             string
	}{{annoPath, annoLegacyPath, "path"}, {annoIndex, annoLegacyIndex, "index"}, {annoID, annoLegacyID, "id"}} {
		if v, l := a.value[c.internal], a.value[c.legacy]; v != "" && l != "" && v != l {
			return fmt.Errorf("resource input to function has mismatched legacy and internal %s annotations", c.what)
		}
	}
	return nil
}

// reconcileAnnotations brings the function's output in line with the annotation forms of
// its input, and removes the position tags.
func reconcileAnnotations(output []*yaml.RNode, before []fileAnnotations) error {
	useInternal, useLegacy, err := annotationsFormat(before)
	if err != nil {
		return err
	}
	for _, n := range output {
		// if only one form is set, set the other
		for _, pair := range [...][2]string{
			{kioutil.PathAnnotation, kioutil.LegacyPathAnnotation},
			{kioutil.IndexAnnotation, kioutil.LegacyIndexAnnotation},
			{kioutil.IdAnnotation, kioutil.LegacyIdAnnotation},
		} {
			value, _ := yamlfast.MetaAnnotation(n, pair[0])
			legacy, _ := yamlfast.MetaAnnotation(n, pair[1])
			switch {
			case value == "" && legacy == "":
			case value == "":
				err = yamlfast.SetAnnotation(n, pair[0], legacy)
			case legacy == "":
				err = yamlfast.SetAnnotation(n, pair[1], value)
			}
			if err != nil {
				return err
			}
		}
		if err := followChangedForm(n, before); err != nil {
			return err
		}
		if !useInternal {
			if err := yamlfast.ClearAnnotations(n, kioutil.IdAnnotation, kioutil.PathAnnotation, kioutil.IndexAnnotation); err != nil {
				return err
			}
		}
		if !useLegacy {
			if err := yamlfast.ClearAnnotations(n, kioutil.LegacyIdAnnotation, kioutil.LegacyPathAnnotation, kioutil.LegacyIndexAnnotation); err != nil {
				return err
			}
		}
		if err := checkMismatchedAnnotations(n); err != nil {
			return err
		}
		if err := yamlfast.ClearAnnotation(n, kioutil.InternalAnnotationsMigrationResourceIDAnnotation); err != nil {
			return err
		}
	}
	return nil
}

// annotationsFormat tells whether the input used the internal form, the legacy form, or
// both (kio's determineAnnotationsFormat).
func annotationsFormat(before []fileAnnotations) (useInternal, useLegacy bool, err error) {
	if len(before) == 0 {
		return true, true, nil
	}
	var internal, legacy *bool
	for _, a := range before {
		foundInternal := a.found[annoPath] || a.found[annoIndex] || a.found[annoID]
		foundLegacy := a.found[annoLegacyPath] || a.found[annoLegacyIndex] || a.found[annoLegacyID]
		if !foundInternal && !foundLegacy {
			continue
		}
		if internal == nil {
			internal = &foundInternal
		}
		if foundInternal != *internal {
			return false, false, fmt.Errorf("the annotation formatting in the input resources is not consistent")
		}
		if legacy == nil {
			legacy = &foundLegacy
		}
		if foundLegacy != *legacy {
			return false, false, fmt.Errorf("the annotation formatting in the input resources is not consistent")
		}
	}
	if internal != nil {
		useInternal = *internal
	}
	if legacy != nil {
		useLegacy = *legacy
	}
	return useInternal, useLegacy, nil
}

// followChangedForm copies a path or index the function changed in one form to the other
// (kio's checkAnnotationsAltered).
func followChangedForm(n *yaml.RNode, before []fileAnnotations) error {
	now := readFileAnnotations(n)
	rid, _ := yamlfast.MetaAnnotation(n, kioutil.InternalAnnotationsMigrationResourceIDAnnotation)
	i, ok := resourceIndex(rid, len(before))
	if !ok {
		return nil
	}
	orig := before[i]
	for _, c := range []struct {
		internal, legacy int
		what             string
	}{{annoPath, annoLegacyPath, "path"}, {annoIndex, annoLegacyIndex, "index"}} {
		original := orig.value[c.internal]
		if !orig.found[c.internal] {
			original = orig.value[c.legacy]
		}
		if original == "" {
			continue
		}
		internal, legacy := now.value[c.internal], now.value[c.legacy]
		var err error
		switch {
		case original != internal && original != legacy && internal != legacy:
			return fmt.Errorf("resource input to function has mismatched legacy and internal %s annotations", c.what)
		case original != internal:
			err = yamlfast.SetAnnotation(n, fileAnnotationKeys[c.legacy], internal)
		case original != legacy:
			err = yamlfast.SetAnnotation(n, fileAnnotationKeys[c.internal], legacy)
		}
		if err != nil {
			return errors.Wrap(err)
		}
	}
	return nil
}

// resourceIndex reads a migration resource ID: the index, in canonical decimal form, of a
// resource among n. It reports false for any other value, which names no resource.
func resourceIndex(rid string, n int) (int, bool) {
	i, err := strconv.Atoi(rid)
	if err != nil || i < 0 || i >= n || strconv.Itoa(i) != rid {
		return 0, false
	}
	return i, true
}

// defaultPathAnnotation is kioutil.DefaultPathAnnotation("", nodes): resources without a
// path get <namespace>/<kind>_<name>.yaml.
func defaultPathAnnotation(nodes []*yaml.RNode) error {
	for _, n := range nodes {
		if err := yamlfast.CopyLegacyAnnotations(n); err != nil {
			return err
		}
		if yamlfast.MissingMeta(n) {
			return yaml.ErrMissingMetadata
		}
		if _, found := yamlfast.MetaAnnotation(n, kioutil.PathAnnotation); found {
			continue
		}
		m, err := n.GetMeta()
		if err != nil {
			return err
		}
		p := kioutil.CreatePathAnnotationValue("", m)
		if err := yamlfast.SetAnnotation(n, kioutil.PathAnnotation, p); err != nil {
			return err
		}
		if err := yamlfast.SetAnnotation(n, kioutil.LegacyPathAnnotation, p); err != nil {
			return err
		}
	}
	return nil
}

// defaultPathAndIndexAnnotation is kioutil.DefaultPathAndIndexAnnotation("", nodes): also
// resources without an index get the next free index of their file.
func defaultPathAndIndexAnnotation(nodes []*yaml.RNode) error {
	counts := map[string]int{}
	for _, n := range nodes {
		if err := yamlfast.CopyLegacyAnnotations(n); err != nil {
			return err
		}
		if yamlfast.MissingMeta(n) {
			return yaml.ErrMissingMetadata
		}
		if p, found := yamlfast.MetaAnnotation(n, kioutil.PathAnnotation); found {
			if i, found := yamlfast.MetaAnnotation(n, kioutil.IndexAnnotation); found {
				index, _ := strconv.Atoi(i)
				if index > counts[p] {
					counts[p] = index
				}
			}
			continue
		}
		m, err := n.GetMeta()
		if err != nil {
			return err
		}
		p := kioutil.CreatePathAnnotationValue("", m)
		if err := yamlfast.SetAnnotation(n, kioutil.PathAnnotation, p); err != nil {
			return err
		}
		if err := yamlfast.SetAnnotation(n, kioutil.LegacyPathAnnotation, p); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if yamlfast.MissingMeta(n) {
			return yaml.ErrMissingMetadata
		}
		if _, found := yamlfast.MetaAnnotation(n, kioutil.IndexAnnotation); found {
			continue
		}
		p, _ := yamlfast.MetaAnnotation(n, kioutil.PathAnnotation)
		c := counts[p]
		counts[p] = c + 1
		if err := yamlfast.SetAnnotation(n, kioutil.IndexAnnotation, strconv.Itoa(c)); err != nil {
			return err
		}
		if err := yamlfast.SetAnnotation(n, kioutil.LegacyIndexAnnotation, strconv.Itoa(c)); err != nil {
			return err
		}
	}
	return nil
}

// sortNodes is kioutil.SortNodes on nodes whose legacy annotations are already copied: by
// path, then index (resources without an index first), stable.
func sortNodes(nodes []*yaml.RNode) error {
	type keyed struct {
		n           *yaml.RNode
		path, index string
	}
	ks := make([]keyed, len(nodes))
	for i, n := range nodes {
		ks[i].n = n
		ks[i].path, _ = yamlfast.MetaAnnotation(n, kioutil.PathAnnotation)
		ks[i].index, _ = yamlfast.MetaAnnotation(n, kioutil.IndexAnnotation)
	}
	var err error
	sort.SliceStable(ks, func(i, j int) bool {
		if err != nil {
			return false
		}
		if ks[i].path != ks[j].path {
			return ks[i].path < ks[j].path
		}
		iValue, jValue := ks[i].index, ks[j].index
		if iValue == jValue {
			return false
		}
		if iValue == "" {
			return true
		}
		if jValue == "" {
			return false
		}
		var iIndex, jIndex int
		iIndex, err = strconv.Atoi(iValue)
		if err != nil {
			err = fmt.Errorf("unable to parse config.kubernetes.io/index %s :%v", iValue, err)
			return false
		}
		jIndex, err = strconv.Atoi(jValue)
		if err != nil {
			err = fmt.Errorf("unable to parse config.kubernetes.io/index %s :%v", jValue, err)
			return false
		}
		return iIndex < jIndex
	})
	for i := range ks {
		nodes[i] = ks[i].n
	}
	return errors.Wrap(err)
}
