package merge

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"kpo.dev/kpo/internal/kptfile"
)

// resourceMerge applies kpt's per-package table to the root and every nested package, parents
// before children, and merges the packages present everywhere.
func (u *updater) resourceMerge() error {
	var dirs []string
	for _, t := range []map[string][]byte{u.origin, u.upstream, u.local} {
		dirs = append(dirs, packageDirs(t)...)
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return cmp.Or(cmp.Compare(depth(a), depth(b)), strings.Compare(a, b))
	})
	dirs = slices.Compact(dirs)

	var leftAlone []string // packages kept as local has them, nested packages included
	for _, dir := range dirs {
		if slices.ContainsFunc(leftAlone, func(l string) bool { return under(dir, l) }) {
			continue
		}
		inOrigin, inUpstream, inLocal := hasPackage(u.origin, dir), hasPackage(u.upstream, dir), hasPackage(u.local, dir)
		switch {
		case !inOrigin && inLocal && inUpstream:
			return fmt.Errorf("%w: package %q was %v", ErrInvalidInput, dir, errAddedBothSides)
		case !inOrigin && inUpstream:
			// added upstream: copy its own files; nested packages come in their turn
			replaceOwnFiles(u.local, dir, ownFiles(u.upstream, dir))
		case !inOrigin, !inLocal:
			// added locally, deleted locally, or deleted on both sides: nothing to do
		case !inUpstream:
			// deleted upstream: delete it unless it was changed locally
			if sameTree(u.origin, u.local, dir) {
				removeTree(u.local, dir)
			} else {
				leftAlone = append(leftAlone, dir)
			}
		default:
			independent, err := u.updatedIndependently(dir)
			if err != nil {
				return err
			}
			if independent {
				leftAlone = append(leftAlone, dir)
				continue
			}
			if err := u.mergePackage(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func depth(dir string) int {
	if dir == "" {
		return 0
	}
	return strings.Count(dir, "/") + 1
}

// updatedIndependently reports whether a nested package's Kptfile points at another upstream
// than origin's copy does: the user updated it on its own, and kpt then leaves it alone.
func (u *updater) updatedIndependently(dir string) (bool, error) {
	if dir == "" {
		return false, nil
	}
	p := join(dir, kptfile.FileName)
	local, err := decodeKptfile("local", p, u.local[p], true)
	if err != nil {
		return false, err
	}
	origin, err := decodeKptfile("origin", p, u.origin[p], true)
	if err != nil {
		return false, err
	}
	return !reflect.DeepEqual(upstreamGit(local), upstreamGit(origin)), nil
}

func upstreamGit(k *kptfile.Kptfile) *kptfile.Git {
	if k.Upstream == nil {
		return nil
	}
	return k.Upstream.Git
}

// mergePackage merges one package present in all three trees: its Kptfile, its resources and
// its non-KRM files. Nested packages are not touched.
func (u *updater) mergePackage(dir string) error {
	if err := u.mergeKptfile(dir, dir == ""); err != nil {
		return err
	}
	origin, updated, local := ownFiles(u.origin, dir), ownFiles(u.upstream, dir), ownFiles(u.local, dir)
	merged, conflicts, err := mergeResources(u.cache, dir, origin, updated, local)
	if err != nil {
		return err
	}
	replaceNonKRMFiles(merged, origin, updated)
	replaceOwnFiles(u.local, dir, merged)
	u.conflicts = append(u.conflicts, conflicts...)
	return nil
}

// replaceNonKRMFiles is kpt's rule for the files of a package that are not KRM: local ones
// that were added or changed locally stay; the others follow upstream (updated, added,
// deleted). local is changed in place.
func replaceNonKRMFiles(local, origin, updated map[string][]byte) {
	modified := map[string]bool{}
	for p, b := range local {
		if isKRMFile(p) {
			continue
		}
		ob, ok := origin[p]
		switch {
		case !ok || string(ob) != string(b):
			modified[p] = true
		case !hasNonKRM(updated, p):
			delete(local, p)
		}
	}
	for p, b := range updated {
		if !isKRMFile(p) && !modified[p] {
			local[p] = b
		}
	}
}

func hasNonKRM(files map[string][]byte, p string) bool {
	_, ok := files[p]
	return ok
}

// replace is force-delete-replace (and fast-forward's second half): every file comes from
// upstream except the root Kptfile, which is merged. A nested package that exists only locally
// and has its own upstream is an independent package and stays.
func (u *updater) replace(clearStatus bool) error {
	if err := u.mergeKptfile("", true); err != nil {
		return err
	}
	rootKptfile := u.local[kptfile.FileName]
	next := map[string][]byte{}
	for _, dir := range packageDirs(u.local) {
		if dir == "" || hasPackage(u.upstream, dir) || hasPackage(u.origin, dir) {
			continue
		}
		p := join(dir, kptfile.FileName)
		k, err := decodeKptfile("local", p, u.local[p], true)
		if err != nil {
			return err
		}
		if k.Upstream != nil {
			for f, b := range u.local {
				if under(f, dir) {
					next[f] = b
				}
			}
		}
	}
	maps.Copy(next, u.upstream)
	next[kptfile.FileName] = rootKptfile
	u.local = next
	if clearStatus {
		k, err := decodeKptfile("local", kptfile.FileName, rootKptfile, true)
		if err != nil {
			return err
		}
		clearRenderStatus(k)
		out, err := kptfile.Encode(k)
		if err != nil {
			return err
		}
		u.local[kptfile.FileName] = out
	}
	return nil
}

// copyMerge is kpt's copy-merge: the root Kptfile is merged, every other upstream file is
// copied over local, and files that upstream deleted are removed; local-only files stay.
func (u *updater) copyMerge() error {
	if err := u.mergeKptfile("", true); err != nil {
		return err
	}
	for p, b := range u.upstream {
		if p != kptfile.FileName {
			u.local[p] = b
		}
	}
	for p := range u.local {
		_, inUpstream := u.upstream[p]
		_, inOrigin := u.origin[p]
		if p != kptfile.FileName && !inUpstream && inOrigin {
			delete(u.local, p)
		}
	}
	return nil
}

// localChanges lists the files in which local differs from origin, for fast-forward. The root
// Kptfile counts only when it differs in more than upstream, upstreamLock and render status
// (or, when origin has no Kptfile, when it is more than a name).
func (u *updater) localChanges() []string {
	var changed []string
	for _, p := range slices.Sorted(maps.Keys(u.local)) {
		if p == kptfile.FileName {
			if u.rootKptfileChanged() {
				changed = append(changed, p)
			}
			continue
		}
		if ob, ok := u.origin[p]; !ok || string(ob) != string(u.local[p]) {
			changed = append(changed, p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(u.origin)) {
		if _, ok := u.local[p]; !ok {
			changed = append(changed, p+" (deleted)")
		}
	}
	return changed
}

func (u *updater) rootKptfileChanged() bool {
	local, err := kptfile.Decode(u.local[kptfile.FileName])
	if err != nil {
		return true
	}
	local.Upstream, local.UpstreamLock = nil, nil
	clearRenderStatus(local)
	want := &kptfile.Kptfile{APIVersion: kptfile.APIVersion, Kind: kptfile.Kind, Metadata: kptfile.ObjectMeta{Name: local.Metadata.Name}}
	if ob, ok := u.origin[kptfile.FileName]; ok {
		if want, err = kptfile.Decode(ob); err != nil {
			return true
		}
		want.Metadata.Name = local.Metadata.Name
		want.Upstream, want.UpstreamLock = nil, nil
		clearRenderStatus(want)
	}
	a, errA := kptfile.Encode(local)
	b, errB := kptfile.Encode(want)
	return errA != nil || errB != nil || string(a) != string(b)
}
