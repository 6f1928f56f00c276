package render

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	gitignore "github.com/monochromegane/go-gitignore"
	goyaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/yamlfast"
)

// pkgPathAnnotation records, on every resource while it is being rendered, the package it
// belongs to (slash-separated, relative to the root, "." for the root). Its path annotation
// is relative to that package. kpt uses the same key (with an absolute path as value).
const pkgPathAnnotation = "internal.config.kubernetes.io/package-path"

// krmIgnoreFile is the per-package ignore file (gitignore syntax) kyaml and kpt honour.
const krmIgnoreFile = ".krmignore"

// alwaysSkippedDirs are never part of a package: Git's own directory and the expected output
// of kpt's test fixtures.
var alwaysSkippedDirs = []string{".git", ".expected"}

// krmFileGlobs are the file names read as resources: kyaml's MatchAll plus the Kptfile
// (kpt's MatchAllKRM).
var krmFileGlobs = append([]string{kptfile.FileName}, kio.MatchAll...)

// pkgNode is one package of the tree being rendered.
type pkgNode struct {
	// dir is the package directory relative to the root, "." for the root.
	dir      string
	kf       *kptfile.Kptfile
	children []*pkgNode
	// files are this package's own files (not its subpackages'), relative to the root, in
	// the order kyaml's package reader walks them.
	files  []string
	ignore gitignore.IgnoreMatcher
	// resources is the package's current resources (breadth-first mode only).
	resources []*yaml.RNode
}

// rel returns p relative to the package directory.
func (pn *pkgNode) rel(p string) string {
	if pn.dir == "." {
		return p
	}
	return strings.TrimPrefix(p, pn.dir+"/")
}

// abs returns the root-relative path of the package-relative path p.
func (pn *pkgNode) abs(p string) string {
	if pn.dir == "." {
		return path.Clean(p)
	}
	return path.Join(pn.dir, p)
}

// loadPackages finds every package (directory with a Kptfile) under the root, decodes and
// validates their Kptfiles, and assigns each file to the innermost package holding it.
func loadPackages(files map[string][]byte) (*pkgNode, error) {
	if _, ok := files[kptfile.FileName]; !ok {
		return nil, fmt.Errorf("%w: no Kptfile found at the root of the package", ErrNotAPackage)
	}
	paths := slices.SortedFunc(maps.Keys(files), walkOrder)
	nodes := map[string]*pkgNode{}
	for _, p := range paths {
		if path.Base(p) != kptfile.FileName || skipped(p) {
			continue
		}
		dir := path.Dir(p)
		kf, err := kptfile.Decode(files[p])
		if err != nil {
			err = fmt.Errorf("%w %s: %w", ErrInvalidKptfile, p, err)
			if dir == "." {
				return nil, &unreadablePackageError{err}
			}
			return nil, &subpackageKptfileError{dir: dir, yamlErr: rawYAMLError(files[p]), err: err}
		}
		nodes[dir] = &pkgNode{dir: dir, kf: kf}
	}
	root := nodes["."]
	// Parents first, so each package finds its parent already linked; children end up in
	// lexical order of their paths, as kpt sorts them.
	for _, dir := range slices.Sorted(maps.Keys(nodes)) {
		if dir == "." {
			continue
		}
		parent := owningPackage(nodes, path.Dir(dir))
		parent.children = append(parent.children, nodes[dir])
	}
	for _, p := range paths {
		if skipped(p) {
			continue
		}
		pn := owningPackage(nodes, path.Dir(p))
		pn.files = append(pn.files, p)
	}
	for _, pn := range nodes {
		pn.ignore = gitignore.DummyIgnoreMatcher(false)
		if data, ok := files[pn.abs(krmIgnoreFile)]; ok {
			pn.ignore = gitignore.NewGitIgnoreFromReader("/", bytes.NewReader(data))
		}
	}
	for _, pn := range nodes {
		if err := pn.validatePipeline(files); err != nil {
			return nil, err
		}
	}
	return root, nil
}

// owningPackage returns the package of the innermost directory at or above dir that has one.
func owningPackage(nodes map[string]*pkgNode, dir string) *pkgNode {
	for {
		if pn, ok := nodes[dir]; ok {
			return pn
		}
		dir = path.Dir(dir)
	}
}

// skipped reports whether p lies in a directory that is never part of a package.
func skipped(p string) bool {
	for _, part := range strings.Split(path.Dir(p), "/") {
		if slices.Contains(alwaysSkippedDirs, part) {
			return true
		}
	}
	return false
}

// walkOrder orders paths the way a directory walk visits them: component by component, each
// directory's entries in lexical order.
func walkOrder(a, b string) int {
	return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
}

// isKRMFile reports whether the package reads the file at the package-relative path rel as
// resources: its name matches the KRM globs and .krmignore does not exclude it (or a
// directory holding it).
func (pn *pkgNode) isKRMFile(rel string) bool {
	dir := ""
	for _, part := range strings.Split(path.Dir(rel), "/") {
		if part == "." {
			break
		}
		dir += "/" + part
		if pn.ignore.Match(dir, true) {
			return false
		}
	}
	if pn.ignore.Match("/"+rel, false) {
		return false
	}
	for _, g := range krmFileGlobs {
		if ok, _ := path.Match(g, path.Base(rel)); ok {
			return true
		}
	}
	return false
}

// readResources parses the package's own KRM files as kyaml's LocalPackageReader does (kpt's
// reader settings: keep sequence indentation, wrap bare sequences), annotating each resource
// with its package-relative path, its index in the file, and its package.
func (pn *pkgNode) readResources(files map[string][]byte) ([]*yaml.RNode, error) {
	var out []*yaml.RNode
	for _, p := range pn.files {
		rel := pn.rel(p)
		if !pn.isKRMFile(rel) {
			continue
		}
		nodes, err := parseFile(files[p], rel)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidResource, p, err)
		}
		for _, n := range nodes {
			if err := yamlfast.SetAnnotation(n, pkgPathAnnotation, pn.dir); err != nil {
				return nil, err
			}
		}
		out = append(out, nodes...)
	}
	return out, nil
}

// parseFile reads the resources of one file as kyaml's package reader does with kpt's
// settings (keep sequence indentation, wrap bare sequences), annotated with path rel and
// their index.
func parseFile(data []byte, rel string) ([]*yaml.RNode, error) {
	return yamlfast.ReadNodes(data, rel)
}

// validatePipeline applies kpt's checks on function configs that refer to files: the file
// exists among the package's own resources, holds exactly one resource, and that resource
// is KRM.
func (pn *pkgNode) validatePipeline(files map[string][]byte) error {
	if pn.kf.Pipeline == nil {
		return nil
	}
	kfPath := pn.abs(kptfile.FileName)
	check := func(kind string, fns []kptfile.Function) error {
		for i, fn := range fns {
			if fn.ConfigPath == "" {
				continue
			}
			field := fmt.Sprintf("pipeline.%s[%d].configPath", kind, i)
			rel := path.Clean(fn.ConfigPath)
			p := pn.abs(rel)
			data, ok := files[p]
			if !ok {
				return &unreadablePackageError{fmt.Errorf("%w %s: %s %q: the function config file is missing from the package",
					ErrInvalidKptfile, kfPath, field, fn.ConfigPath)}
			}
			if !slices.Contains(pn.files, p) || !pn.isKRMFile(rel) {
				return &ConfigPathError{Field: "`" + field + "`", Value: fn.ConfigPath,
					Reason: fmt.Sprintf("functionConfig resource for %s %q is missing from path %q, this also occurs if %q is part of a subpackage",
						strings.TrimSuffix(kind, "s"), shortImageName(fn.Image), fn.ConfigPath, fn.ConfigPath),
					err: fmt.Errorf("%w %s: %s %q: the function config file is missing from the package (a file in a subpackage does not count)",
						ErrInvalidKptfile, kfPath, field, fn.ConfigPath)}
			}
			nodes, err := parseFile(data, rel)
			if err != nil {
				return &unreadablePackageError{fmt.Errorf("%w %s: %s %q: reading the function config: %w", ErrInvalidKptfile, kfPath, field, fn.ConfigPath, err)}
			}
			if len(nodes) != 1 {
				return &unreadablePackageError{fmt.Errorf("%w %s: %s %q: the function config file must hold exactly one resource, it holds %d",
					ErrInvalidKptfile, kfPath, field, fn.ConfigPath, len(nodes))}
			}
			if err := isKRM(nodes[0]); err != nil {
				return &unreadablePackageError{fmt.Errorf("%w %s: %s %q: %w", ErrInvalidKptfile, kfPath, field, fn.ConfigPath, err)}
			}
		}
		return nil
	}
	if err := check("mutators", pn.kf.Pipeline.Mutators); err != nil {
		return err
	}
	return check("validators", pn.kf.Pipeline.Validators)
}

// kustomizationFileNames are exempt from the KRM check, as in kpt.
var kustomizationFileNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// isKRM applies kpt's rule: a resource has apiVersion, kind and metadata.name, except
// kustomization files.
func isKRM(n *yaml.RNode) error {
	p, _ := yamlfast.FileAnnotations(n)
	if slices.Contains(kustomizationFileNames, path.Base(p)) {
		return nil
	}
	// (RNode.GetMeta, which kpt calls here, fails only for a resource without metadata,
	// which the checks below refuse anyway.)
	apiVersion, kind, name := yamlfast.TypeAndName(n)
	if strings.HasPrefix(apiVersion, "kustomize.config.k8s.io") || (apiVersion == "" && kind == "Kustomization") {
		return nil
	}
	switch {
	case apiVersion == "":
		return errors.New("resource must have `apiVersion`")
	case kind == "":
		return errors.New("resource must have `kind`")
	case name == "":
		return errors.New("resource must have `metadata.name`")
	}
	return nil
}

// areKRM checks every resource with isKRM and names the file of the first that fails.
func areKRM(nodes []*yaml.RNode) error {
	for _, n := range nodes {
		if err := isKRM(n); err != nil {
			p, _ := yamlfast.FileAnnotations(n)
			if pkg, _ := yamlfast.Annotation(n, pkgPathAnnotation); pkg != "" && pkg != "." {
				p = path.Join(pkg, p)
			}
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// ConfigPathError is a function's configPath that names a file the package does not own (it
// lies in a subpackage, or is not read as resources). Error is kpo's message; Field, Value
// and Reason are kpt's account of it, which the Kptfile status repeats.
type ConfigPathError struct {
	Field, Value, Reason string
	err                  error
}

func (e *ConfigPathError) Error() string { return e.err.Error() }
func (e *ConfigPathError) Unwrap() error { return e.err }

// unreadablePackageError is a package kpt refuses while reading it, before rendering: an
// invalid root Kptfile, or a function config file that is missing, unreadable or not one
// KRM resource. kpt writes no status then.
type unreadablePackageError struct{ err error }

func (e *unreadablePackageError) Error() string { return e.err.Error() }
func (e *unreadablePackageError) Unwrap() error { return e.err }

// subpackageKptfileError is a subpackage whose Kptfile cannot be read.
type subpackageKptfileError struct {
	dir     string
	yamlErr string
	err     error
}

func (e *subpackageKptfileError) Error() string { return e.err.Error() }
func (e *subpackageKptfileError) Unwrap() error { return e.err }

// rawYAMLError is the YAML parser's own message for data ("" when it parses), as kpt reports it.
func rawYAMLError(data []byte) string {
	var n goyaml.Node
	if err := goyaml.Unmarshal(data, &n); err != nil {
		return err.Error()
	}
	return ""
}

// shortImageName is an image's last path segment without tag or digest.
func shortImageName(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	image = image[strings.LastIndex(image, "/")+1:]
	if i := strings.Index(image, ":"); i >= 0 {
		image = image[:i]
	}
	return image
}
