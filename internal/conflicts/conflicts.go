// Package conflicts records the conflicts of an upgrade in Git and reads them back: which
// fields a three-way merge could not merge (Kpo-Conflict commit trailers on the commit that
// made the draft) and how each was resolved since (Kpo-Resolved trailers on later commits).
// Git is the only place they live, so a PackageRevision's status.conflicts is derived again by
// any resync, and a resolution is applied once even when the manager dies half way.
//
// The package is pure: commit messages and files in, records out.
package conflicts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/merge"
)

// Commit trailers, one line each.
const (
	// ConflictTrailer carries one conflict as JSON (a Record).
	ConflictTrailer = "Kpo-Conflict: "
	// ResolvedTrailer carries "<id>=<local|upstream|edited>".
	ResolvedTrailer = "Kpo-Resolved: "
	// CountTrailer marks a commit that merged upstream (an upgrade's first commit, a rebase)
	// with how many conflicts it recorded, zero included: conflicts recorded before it are
	// over.
	CountTrailer = "Kpo-Conflicts: "
)

const (
	// maxValue bounds a value recorded in Git: a conflict over a larger value is not recorded
	// (the upgrade is refused), so a choice always sets the complete value.
	maxValue = 4096
	// shownValue bounds a value shown in status.conflicts.
	shownValue = 256
)

// ErrTooLarge says an upgrade's conflicts cannot be recorded: too many, or a value too large.
var ErrTooLarge = errors.New("too large to record")

// ErrInvalidChoice says a resolve-conflicts annotation is not valid.
var ErrInvalidChoice = errors.New("invalid conflict resolution")

// Record is one conflict as Git keeps it.
type Record struct {
	ID         string   `json:"id"`
	File       string   `json:"file"`
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Name       string   `json:"name"`
	Path       []string `json:"path"`
	Field      string   `json:"field"`
	Local      string   `json:"local,omitempty"`
	Upstream   string   `json:"upstream,omitempty"`
}

// Ref is the field the record is about.
func (r Record) Ref() merge.FieldRef {
	return merge.FieldRef{File: r.File, APIVersion: r.APIVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Path: r.Path}
}

// Value is the value a choice sets.
func (r Record) Value(choice string) string {
	if choice == kpov1.ConflictLocal {
		return r.Local
	}
	return r.Upstream
}

// ID is a conflict's id: the first 10 hex digits of a SHA-256 over file, resource and field
// path. It depends on nothing but where the conflict is, so recording it again gives the same.
func ID(ref merge.FieldRef) string {
	h := sha256.New()
	for _, s := range append([]string{ref.File, ref.APIVersion, ref.Kind, ref.Namespace, ref.Name}, ref.Path...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:10]
}

// FromMerge turns a merge's conflicts into records, refusing (ErrTooLarge) more than
// kpov1.MaxRecordedConflicts, a value over 4 KiB, or a conflict without a field path.
func FromMerge(cs []merge.Conflict) ([]Record, error) {
	if len(cs) > kpov1.MaxRecordedConflicts {
		return nil, fmt.Errorf("%w: %d conflicts, at most %d are recorded", ErrTooLarge, len(cs), kpov1.MaxRecordedConflicts)
	}
	out := make([]Record, 0, len(cs))
	for _, c := range cs {
		if len(c.Local) > maxValue || len(c.Upstream) > maxValue {
			return nil, fmt.Errorf("%w: %s %s %s: a value over %d bytes", ErrTooLarge, c.File, c.Resource, c.Field, maxValue)
		}
		if len(c.Ref.Path) == 0 {
			return nil, fmt.Errorf("%w: %s %s: the whole resource conflicts", ErrTooLarge, c.File, c.Resource)
		}
		out = append(out, Record{ID: ID(c.Ref), File: c.Ref.File, APIVersion: c.Ref.APIVersion, Kind: c.Ref.Kind,
			Namespace: c.Ref.Namespace, Name: c.Ref.Name, Path: c.Ref.Path, Field: c.Field, Local: c.Local, Upstream: c.Upstream})
	}
	return out, nil
}

// Trailers renders records as commit trailer lines, after a CountTrailer line.
func Trailers(records []Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s%d\n", CountTrailer, len(records))
	for _, r := range records {
		data, _ := json.Marshal(r)
		b.WriteString(ConflictTrailer + string(data) + "\n")
	}
	return b.String()
}

// ResolvedTrailers renders resolutions as commit trailer lines, ordered by id.
func ResolvedTrailers(resolutions map[string]string) string {
	ids := make([]string, 0, len(resolutions))
	for id := range resolutions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(ResolvedTrailer + id + "=" + resolutions[id] + "\n")
	}
	return b.String()
}

// State is a draft's conflicts as its history holds them.
type State struct {
	// Records are the conflicts of the newest commit that recorded any.
	Records []Record
	// Resolutions maps the ids resolved since to how.
	Resolutions map[string]string
}

// FromHistory reads the conflicts from a revision's commit messages, newest first: the
// records of the newest commit that merged upstream (a CountTrailer) and the resolutions of the
// commits after it. A trailer that does not parse is skipped (it was not written by kpo).
func FromHistory(messages []string) State {
	st := State{Resolutions: map[string]string{}}
	for _, msg := range messages {
		var records []Record
		merged := false
		resolved := map[string]string{}
		for _, line := range strings.Split(msg, "\n") {
			line = strings.TrimRight(line, "\r")
			if strings.HasPrefix(line, CountTrailer) {
				merged = true
			}
			if v, ok := strings.CutPrefix(line, ConflictTrailer); ok {
				var r Record
				if json.Unmarshal([]byte(v), &r) == nil && r.ID != "" {
					records = append(records, r)
				}
			}
			if v, ok := strings.CutPrefix(line, ResolvedTrailer); ok {
				if id, how, ok := strings.Cut(strings.TrimSpace(v), "="); ok {
					resolved[id] = how
				}
			}
		}
		if merged {
			if len(records) == 0 {
				return State{}
			}
			st.Records = records
			for id := range st.Resolutions {
				if !slices.ContainsFunc(records, func(r Record) bool { return r.ID == id }) {
					delete(st.Resolutions, id)
				}
			}
			return st
		}
		for id, how := range resolved {
			if _, newer := st.Resolutions[id]; !newer {
				st.Resolutions[id] = how
			}
		}
	}
	return State{}
}

// Unresolved returns the records not resolved yet.
func (s State) Unresolved() []Record {
	var out []Record
	for _, r := range s.Records {
		if _, ok := s.Resolutions[r.ID]; !ok {
			out = append(out, r)
		}
	}
	return out
}

// Status is what status.conflicts shows: every record, values truncated, with its resolution.
func (s State) Status() []kpov1.MergeConflict {
	if len(s.Records) == 0 {
		return nil
	}
	out := make([]kpov1.MergeConflict, 0, len(s.Records))
	for _, r := range s.Records {
		out = append(out, kpov1.MergeConflict{ID: r.ID, File: truncate(r.File, 512), APIVersion: truncate(r.APIVersion, 253),
			Kind: truncate(r.Kind, 253), Namespace: truncate(r.Namespace, 253), Name: truncate(r.Name, 253),
			Field: truncate(r.Field, 1024), Local: truncate(r.Local, shownValue), Upstream: truncate(r.Upstream, shownValue),
			Resolution: s.Resolutions[r.ID]})
	}
	return out
}

// truncate shortens s to at most n bytes, ending in "..." when cut, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// EditedBy returns the unresolved records whose field an edit from before to after changed:
// an edit resolves a conflict when, and only when, it changes the conflicting field's value.
func (s State) EditedBy(before, after map[string][]byte) map[string]string {
	out := map[string]string{}
	for _, r := range s.Unresolved() {
		was, errWas := merge.GetField(before, r.Ref())
		is, errIs := merge.GetField(after, r.Ref())
		if (errWas == nil) != (errIs == nil) || was != is {
			out[r.ID] = kpov1.ConflictEdited
		}
	}
	return out
}

// maxAnnotation bounds the resolve-conflicts annotation read.
const maxAnnotation = 16 << 10

// ParseChoices validates a resolve-conflicts annotation against the state: a JSON object
// from conflict id to "local" or "upstream", every id one of the recorded conflicts. It returns
// the choices for the conflicts still unresolved; ids resolved already are skipped, so an
// annotation applied before a crash is applied once.
func (s State) ParseChoices(annotation string) (map[string]string, error) {
	if len(annotation) > maxAnnotation {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrInvalidChoice, kpov1.ResolveConflictsAnnotation, len(annotation), maxAnnotation)
	}
	var choices map[string]string
	if err := json.Unmarshal([]byte(annotation), &choices); err != nil || choices == nil {
		return nil, fmt.Errorf(`%w: %s must be a JSON object from conflict id to "local" or "upstream", e.g. {"%s":"upstream"}`,
			ErrInvalidChoice, kpov1.ResolveConflictsAnnotation, s.exampleID())
	}
	ids := make([]string, 0, len(choices))
	for id := range choices {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := map[string]string{}
	for _, id := range ids {
		how := choices[id]
		if how != kpov1.ConflictLocal && how != kpov1.ConflictUpstream {
			return nil, fmt.Errorf(`%w: conflict %q: choice %q is neither "local" nor "upstream"`, ErrInvalidChoice, truncate(id, 32), truncate(how, 32))
		}
		if !slices.ContainsFunc(s.Records, func(r Record) bool { return r.ID == id }) {
			return nil, fmt.Errorf("%w: %q is not a conflict of this draft: its conflicts are listed in status.conflicts", ErrInvalidChoice, truncate(id, 32))
		}
		if _, done := s.Resolutions[id]; !done {
			out[id] = how
		}
	}
	return out, nil
}

func (s State) exampleID() string {
	if len(s.Records) > 0 {
		return s.Records[0].ID
	}
	return "3f2a9c01de"
}

// Summary names how many conflicts are unresolved and the first few.
func Summary(unresolved []Record) string {
	const shown = 3
	parts := make([]string, 0, shown+1)
	for i, r := range unresolved {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(unresolved)-shown))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s %s %s %s)", r.ID, r.File, r.Kind, r.Name, r.Field))
	}
	return fmt.Sprintf("%d conflict(s) unresolved: %s", len(unresolved), strings.Join(parts, ", "))
}
