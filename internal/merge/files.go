package merge

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"kpo.dev/kpo/internal/kptfile"
)

// checkPaths refuses paths that are not clean, relative, slash-separated paths inside the
// package.
func checkPaths(files map[string][]byte) error {
	for p := range files {
		switch {
		case p == "" || strings.HasPrefix(p, "/"):
			return fmt.Errorf("file path %q is not relative to the package root", p)
		case path.Clean(p) != p || strings.Contains(p, "\\"):
			return fmt.Errorf("file path %q is not a clean slash-separated path", p)
		case p == ".." || strings.HasPrefix(p, "../"):
			return fmt.Errorf("file path %q leaves the package", p)
		}
	}
	return nil
}

// isKRMFile reports whether kpt treats the file as KRM: a Kptfile or a YAML file. Everything
// else is copied byte for byte.
func isKRMFile(p string) bool {
	return path.Base(p) == kptfile.FileName || isYAMLFile(p)
}

func isYAMLFile(p string) bool {
	base := path.Base(p)
	return strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")
}

// packageDirs lists the directories of a tree that hold a Kptfile, "" being the root; the
// root is always listed.
func packageDirs(files map[string][]byte) []string {
	dirs := []string{""}
	for p := range files {
		if path.Base(p) == kptfile.FileName && p != kptfile.FileName {
			dirs = append(dirs, path.Dir(p))
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// hasPackage reports whether dir is a package in files (the root always is).
func hasPackage(files map[string][]byte, dir string) bool {
	if dir == "" {
		return true
	}
	_, ok := files[dir+"/"+kptfile.FileName]
	return ok
}

// under reports whether p is dir itself or inside it ("" contains everything).
func under(p, dir string) bool {
	return dir == "" || p == dir || strings.HasPrefix(p, dir+"/")
}

// rel returns p relative to dir, which must contain it.
func rel(p, dir string) string {
	if dir == "" {
		return p
	}
	return strings.TrimPrefix(p, dir+"/")
}

// join is path.Join for a package-relative dir that may be the root.
func join(dir, p string) string {
	if dir == "" {
		return p
	}
	return dir + "/" + p
}

// ownFiles returns the files of the package at dir, relative to dir, leaving out nested
// packages (directories with their own Kptfile).
func ownFiles(files map[string][]byte, dir string) map[string][]byte {
	nested := nestedPackages(files, dir)
	own := map[string][]byte{}
	for p, b := range files {
		if !under(p, dir) || p == dir {
			continue
		}
		if slices.ContainsFunc(nested, func(n string) bool { return under(p, n) }) {
			continue
		}
		own[rel(p, dir)] = b
	}
	return own
}

// nestedPackages lists the packages strictly inside dir.
func nestedPackages(files map[string][]byte, dir string) []string {
	var nested []string
	for _, d := range packageDirs(files) {
		if d != dir && d != "" && under(d, dir) {
			nested = append(nested, d)
		}
	}
	return nested
}

// replaceOwnFiles replaces the files of the package at dir (not those of nested packages)
// with own, whose paths are relative to dir.
func replaceOwnFiles(files map[string][]byte, dir string, own map[string][]byte) {
	for p := range ownFiles(files, dir) {
		delete(files, join(dir, p))
	}
	for p, b := range own {
		files[join(dir, p)] = b
	}
}

// removeTree deletes dir and everything inside it.
func removeTree(files map[string][]byte, dir string) {
	for p := range files {
		if under(p, dir) {
			delete(files, p)
		}
	}
}

// sameTree reports whether a and b hold the same files under dir, byte for byte.
func sameTree(a, b map[string][]byte, dir string) bool {
	n := 0
	for p, ab := range a {
		if !under(p, dir) {
			continue
		}
		n++
		bb, ok := b[p]
		if !ok || string(ab) != string(bb) {
			return false
		}
	}
	for p := range b {
		if under(p, dir) {
			n--
		}
	}
	return n == 0
}

var errAddedBothSides = errors.New("added both upstream and locally")
