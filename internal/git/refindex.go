package git

import (
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// refIndex is the clone's branches and tags in memory, sorted by name, so that reading one
// ref or the refs below a prefix costs the same in a repository of ten refs or of thirty
// thousand: go-git's file system storage reads every loose ref file (and packed-refs) to list
// them, and several files to find one.
//
// The index is loaded from disk once per process, when the clone is opened or rebuilt, and
// then changed together with the disk by the clone's only writers (fetch, push, rebuild),
// which hold the entry's lock exclusively; readers hold it shared. No other process writes
// the cache directory.
type refIndex struct {
	refs []Ref // sorted by Name
}

// loadRefIndex reads the branches and tags of repo's storage.
func (e *entry) loadRefIndex() error {
	refs, err := e.diskRefs()
	if err != nil {
		return err
	}
	e.index = &refIndex{refs: refs}
	return nil
}

// find returns the position of name, and whether it is there.
func (x *refIndex) find(name string) (int, bool) {
	i := sort.Search(len(x.refs), func(i int) bool { return x.refs[i].Name >= name })
	return i, i < len(x.refs) && x.refs[i].Name == name
}

// get returns the hash of ref name.
func (x *refIndex) get(name string) (string, bool) {
	if i, ok := x.find(name); ok {
		return x.refs[i].Hash, true
	}
	return "", false
}

// set records that ref name points to hash.
func (x *refIndex) set(name, hash string) {
	i, ok := x.find(name)
	if ok {
		x.refs[i].Hash = hash
		return
	}
	x.refs = append(x.refs, Ref{})
	copy(x.refs[i+1:], x.refs[i:])
	x.refs[i] = Ref{Name: name, Hash: hash}
}

// remove records that ref name no longer exists.
func (x *refIndex) remove(name string) {
	if i, ok := x.find(name); ok {
		x.refs = append(x.refs[:i], x.refs[i+1:]...)
	}
}

// withPrefix returns a copy of the refs whose name starts with prefix, sorted.
func (x *refIndex) withPrefix(prefix string) []Ref {
	i, _ := x.find(prefix)
	j := i
	for j < len(x.refs) && strings.HasPrefix(x.refs[j].Name, prefix) {
		j++
	}
	return append([]Ref(nil), x.refs[i:j]...)
}

// all returns a copy of every ref, sorted.
func (x *refIndex) all() []Ref {
	return append([]Ref(nil), x.refs...)
}

// mirrored tells whether the index (and a fetch) covers ref name: a branch or a tag.
func mirrored(name plumbing.ReferenceName) bool {
	return name.IsBranch() || name.IsTag()
}

// setRef writes ref name = hash to disk atomically and then to the index.
func (e *entry) setRef(name plumbing.ReferenceName, hash plumbing.Hash) error {
	if err := e.repo.Storer.SetReference(plumbing.NewHashReference(name, hash)); err != nil {
		return err
	}
	if mirrored(name) {
		e.index.set(name.String(), hash.String())
	}
	return nil
}

// removeRef deletes ref name from disk and then from the index.
func (e *entry) removeRef(name plumbing.ReferenceName) error {
	if err := e.repo.Storer.RemoveReference(name); err != nil {
		return err
	}
	e.index.remove(name.String())
	return nil
}

// Ref returns the hash a branch or tag (full ref name) points to in the clone, and whether
// it exists.
func (r *Repo) Ref(name string) (string, bool) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	return r.e.index.get(name)
}

// RefsWithPrefix returns the branches and tags of the clone whose full name starts with
// prefix (e.g. "refs/tags/pkg/"), sorted by name. Its cost grows with the number of refs it
// returns, not with the number the repository holds.
func (r *Repo) RefsWithPrefix(prefix string) []Ref {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	return r.e.index.withPrefix(prefix)
}
