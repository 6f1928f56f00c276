package merge

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"kpo.dev/kpo/internal/kptfile"
)

// Strategy is how upstream changes are brought into the local package.
type Strategy = kptfile.UpdateStrategy

// Input is one update: the package's files at three points, and where the result's upstream
// moves to. File maps are keyed by slash-separated paths relative to the package root and hold
// exact bytes.
type Input struct {
	// Origin is the package at the upstream revision the local package was last updated to.
	Origin map[string][]byte
	// Upstream is the package at the new upstream revision.
	Upstream map[string][]byte
	// Local is the downstream package as it is now.
	Local map[string][]byte
	// Strategy is the update strategy; empty means resource-merge.
	Strategy Strategy
	// NewUpstream, when set, replaces upstream in the result's root Kptfile.
	NewUpstream *kptfile.Upstream
	// NewLock, when set, replaces upstreamLock in the result's root Kptfile.
	NewLock *kptfile.UpstreamLock
}

// Conflict is a change that could not be merged: both sides changed the same field, or one
// deleted what the other changed. The merge still produced a result (upstream's side, as kpt
// does); the conflict says what the local package lost.
type Conflict struct {
	// File is the file's path relative to the package root.
	File string
	// Resource identifies the resource: "<apiVersion> <kind> [<namespace>/]<name>".
	Resource string
	// Field is the field path, e.g. spec.template.spec.containers[name=app].image.
	Field string
	// Message says what each side did and which value the result has.
	Message string
	// Ref locates the field, for reading and setting it (GetField, SetField).
	Ref FieldRef
	// Local and Upstream are the field's value on each side, in YAML flow style; "" when that
	// side deleted it (an absent field and a null one are alike to the merge).
	Local, Upstream string
}

// String renders the conflict on one line.
func (c Conflict) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", c.File, c.Resource, c.Field, c.Message)
}

// Result is the updated local package.
type Result struct {
	// Files is the updated package, keyed like Input.Local.
	Files map[string][]byte
	// Conflicts lists what could not be merged, ordered by file, resource and field.
	Conflicts []Conflict
}

var (
	// ErrLocalChanges is returned by the fast-forward strategy when the local package differs
	// from origin; the error names the changed files and Result.Files is Input.Local.
	ErrLocalChanges = errors.New("local package files have been modified")
	// ErrConflicts is returned, wrapped with a summary, when Result.Conflicts is not empty. The
	// Result is complete and returned with it.
	ErrConflicts = errors.New("the update has conflicts")
	// ErrInvalidInput is wrapped by errors about the input itself: an unknown strategy, a
	// missing or invalid Kptfile, a path that leaves the package, unparseable YAML, duplicate
	// resources, or a package added both upstream and locally.
	ErrInvalidInput = errors.New("invalid update input")
)

// Update applies in.Strategy and returns the updated local package.
func Update(in Input) (Result, error) {
	return update(in, true)
}

// update is Update; withComments false leaves out kpt's merge-comment steps, which is what
// kpt's updaters do when called on their own (its keep-tagged-null fixture is such a call).
func update(in Input, withComments bool) (Result, error) {
	cache := newParseCache()
	comments := func(files map[string][]byte) (map[string][]byte, error) { return addMergeCommentsCached(files, cache) }
	if !withComments {
		comments = func(files map[string][]byte) (map[string][]byte, error) {
			out := maps.Clone(files)
			if out == nil {
				out = map[string][]byte{}
			}
			return out, nil
		}
	}
	strategy := in.Strategy
	if strategy == "" {
		strategy = kptfile.ResourceMerge
	}
	if !slices.Contains(kptfile.UpdateStrategies, strategy) {
		return Result{}, fmt.Errorf("%w: unrecognized update strategy %q: use one of %s", ErrInvalidInput, strategy, strategyList())
	}
	for name, files := range map[string]map[string][]byte{"origin": in.Origin, "upstream": in.Upstream, "local": in.Local} {
		if err := checkPaths(files); err != nil {
			return Result{}, fmt.Errorf("%w: %s: %w", ErrInvalidInput, name, err)
		}
	}
	if _, ok := in.Local[kptfile.FileName]; !ok {
		return Result{}, fmt.Errorf("%w: the local package has no root Kptfile", ErrInvalidInput)
	}

	// Like kpt, bring merge comments into all three trees first, so resources renamed
	// locally still match and the comparisons below see like with like.
	origin, err := comments(in.Origin)
	if err != nil {
		return Result{}, err
	}
	upstream, err := comments(in.Upstream)
	if err != nil {
		return Result{}, err
	}
	local, err := comments(in.Local)
	if err != nil {
		return Result{}, err
	}
	u := &updater{origin: origin, upstream: upstream, local: local, in: in, cache: cache}

	switch strategy {
	case kptfile.FastForward:
		if changed := u.localChanges(); len(changed) > 0 {
			return Result{Files: maps.Clone(in.Local)}, fmt.Errorf("%w: %s; use a different update strategy", ErrLocalChanges, strings.Join(changed, ", "))
		}
		err = u.replace(true)
	case kptfile.ForceDeleteReplace:
		err = u.replace(false)
	case kptfile.CopyMerge:
		err = u.copyMerge()
	default:
		err = u.resourceMerge()
	}
	if err != nil {
		return Result{}, err
	}
	// kpt ends by adding merge comments to the result; every resource of it already comes
	// from a tree that got them above, so that pass would change nothing here.
	res := Result{Files: u.local, Conflicts: u.conflicts}
	if len(res.Conflicts) > 0 {
		slices.SortStableFunc(res.Conflicts, func(a, b Conflict) int {
			return strings.Compare(a.File+"\x00"+a.Resource+"\x00"+a.Field, b.File+"\x00"+b.Resource+"\x00"+b.Field)
		})
		return res, fmt.Errorf("%w: %d field(s) changed both locally and upstream, upstream's value taken: %s",
			ErrConflicts, len(res.Conflicts), summarize(res.Conflicts))
	}
	return res, nil
}

// updater carries the three trees (merge comments added) through one update; local is
// rewritten in place.
type updater struct {
	origin, upstream, local map[string][]byte
	in                      Input
	cache                   *parseCache
	conflicts               []Conflict
}

func strategyList() string {
	names := make([]string, len(kptfile.UpdateStrategies))
	for i, s := range kptfile.UpdateStrategies {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func summarize(cs []Conflict) string {
	const max = 5
	var parts []string
	for i, c := range cs {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-max))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", c.File, c.Resource, c.Field))
	}
	return strings.Join(parts, "; ")
}
