package render

import (
	"bytes"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/yamlfast"
)

// write turns the rendered resources back into files, as kpt's package writer does: each
// resource goes to its path (now relative to the root) in index order, reader annotations
// are stripped, and every KRM file is re-serialised (comments and sequence indentation
// kept). Files that held resources and hold none any more are deleted when prune is set
// (kpt prunes only after a successful render). Every other file is kept byte for byte.
func (r *renderer) write(resources []*yaml.RNode, prune bool) (map[string][]byte, error) {
	if err := rootRelativePaths(resources); err != nil {
		return nil, err
	}
	byFile := map[string][]*yaml.RNode{}
	for _, n := range resources {
		p, _ := yamlfast.FileAnnotations(n)
		clean := path.Clean(p)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, fmt.Errorf("%w: resource %s/%s has path %q outside the package", ErrInvalidResource, n.GetKind(), n.GetName(), p)
		}
		byFile[clean] = append(byFile[clean], n)
	}

	out := maps.Clone(r.files)
	for _, p := range slices.Sorted(maps.Keys(byFile)) {
		if isDir(out, p) {
			return nil, fmt.Errorf("%w: resource path %q is a directory", ErrInvalidResource, p)
		}
		nodes := byFile[p]
		if err := sortNodes(nodes); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := yamlfast.WriteNodes(&buf, nodes, kioutil.PathAnnotation, kioutil.LegacyPathAnnotation, pkgPathAnnotation); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		out[p] = buf.Bytes()
	}
	if prune {
		r.eachPackage(func(pn *pkgNode) {
			for _, p := range pn.files {
				if _, kept := byFile[p]; kept || !pn.isKRMFile(pn.rel(p)) {
					continue
				}
				if nodes, err := parseFile(r.files[p], pn.rel(p)); err == nil && len(nodes) > 0 {
					delete(out, p)
				}
			}
		})
	}
	return out, nil
}

// isDir reports whether some file lies below p.
func isDir(files map[string][]byte, p string) bool {
	for f := range files {
		if strings.HasPrefix(f, p+"/") {
			return true
		}
	}
	return false
}

// eachPackage calls f for every package, parents before children.
func (r *renderer) eachPackage(f func(pn *pkgNode)) {
	var walk func(pn *pkgNode)
	walk = func(pn *pkgNode) {
		f(pn)
		for _, c := range pn.children {
			walk(c)
		}
	}
	walk(r.root)
}

// rootRelativePaths makes every resource's path annotations relative to the root package
// (they are relative to the resource's package while rendering) and gives resources without
// a path or index theirs. It is idempotent.
func rootRelativePaths(resources []*yaml.RNode) error {
	for _, n := range resources {
		pkg, _ := yamlfast.Annotation(n, pkgPathAnnotation)
		p, _ := yamlfast.FileAnnotations(n)
		if p == "" {
			continue
		}
		p = strings.TrimPrefix(path.Clean(p), "/")
		if pkg != "" && pkg != "." {
			p = path.Join(pkg, p)
		}
		if err := yamlfast.SetAnnotation(n, kioutil.PathAnnotation, p); err != nil {
			return err
		}
		if err := yamlfast.SetAnnotation(n, kioutil.LegacyPathAnnotation, p); err != nil {
			return err
		}
		if err := yamlfast.ClearAnnotation(n, pkgPathAnnotation); err != nil {
			return err
		}
	}
	return defaultPathAndIndexAnnotation(resources)
}
