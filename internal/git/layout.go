package git

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Ref name prefixes of the Porch layout.
const (
	headsPrefix            = "refs/heads/"
	tagsPrefix             = "refs/tags/"
	draftsPrefix           = headsPrefix + "drafts/"
	proposedPrefix         = headsPrefix + "proposed/"
	deletionProposedPrefix = headsPrefix + "deletionProposed/"
)

// RefKind is what a ref means in the Porch layout.
type RefKind int

const (
	// RefBranch is any branch that is not part of the package layout (e.g. main).
	RefBranch RefKind = iota
	// RefDraft is refs/heads/drafts/<package>/<workspace>.
	RefDraft
	// RefProposed is refs/heads/proposed/<package>/<workspace>.
	RefProposed
	// RefDeletionProposed is refs/heads/deletionProposed/<package>/v<N>.
	RefDeletionProposed
	// RefPublished is the tag refs/tags/<package>/v<N>.
	RefPublished
)

// String returns the kind's name.
func (k RefKind) String() string {
	switch k {
	case RefDraft:
		return "Draft"
	case RefProposed:
		return "Proposed"
	case RefDeletionProposed:
		return "DeletionProposed"
	case RefPublished:
		return "Published"
	}
	return "Branch"
}

// PackageRef is a ref parsed by ParsePackageRef.
type PackageRef struct {
	Kind RefKind
	// Package is the package path from the repository root; empty for RefBranch.
	Package string
	// Workspace is set for drafts and proposed revisions.
	Workspace string
	// Revision is set for published and deletion-proposed revisions (≥ 1).
	Revision int
	// Name is the full ref name.
	Name string
}

// ParsePackageRef parses a full ref name of the Porch layout. Any other branch is a
// RefBranch; a tag that is not <package>/v<N> and any other ref give false.
func ParsePackageRef(fullRefName string) (PackageRef, bool) {
	ref := PackageRef{Name: fullRefName}
	withWorkspace := func(rest string, kind RefKind) bool {
		pkg, ws, ok := splitLast(rest)
		if !ok {
			return false
		}
		ref.Kind, ref.Package, ref.Workspace = kind, pkg, ws
		return true
	}
	withRevision := func(rest string, kind RefKind) bool {
		pkg, v, ok := splitLast(rest)
		if !ok {
			return false
		}
		n, ok := parseVersion(v)
		if !ok {
			return false
		}
		ref.Kind, ref.Package, ref.Revision = kind, pkg, n
		return true
	}
	switch {
	case strings.HasPrefix(fullRefName, draftsPrefix):
		if withWorkspace(strings.TrimPrefix(fullRefName, draftsPrefix), RefDraft) {
			return ref, true
		}
	case strings.HasPrefix(fullRefName, proposedPrefix):
		if withWorkspace(strings.TrimPrefix(fullRefName, proposedPrefix), RefProposed) {
			return ref, true
		}
	case strings.HasPrefix(fullRefName, deletionProposedPrefix):
		if withRevision(strings.TrimPrefix(fullRefName, deletionProposedPrefix), RefDeletionProposed) {
			return ref, true
		}
	case strings.HasPrefix(fullRefName, tagsPrefix):
		if withRevision(strings.TrimPrefix(fullRefName, tagsPrefix), RefPublished) {
			return ref, true
		}
		return PackageRef{}, false
	default:
		if !strings.HasPrefix(fullRefName, headsPrefix) || len(fullRefName) == len(headsPrefix) {
			return PackageRef{}, false
		}
	}
	// A malformed layout branch (e.g. drafts/only-one-element) is still a branch.
	return PackageRef{Kind: RefBranch, Name: fullRefName}, true
}

// splitLast splits "a/b/c" into "a/b" and "c"; both parts must be non-empty and the
// package path must have no empty elements.
func splitLast(s string) (string, string, bool) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	pkg := s[:i]
	for _, el := range strings.Split(pkg, "/") {
		if el == "" {
			return "", "", false
		}
	}
	return pkg, s[i+1:], true
}

// parseVersion parses "v<N>" with N a positive integer without sign or leading zeros.
func parseVersion(v string) (int, bool) {
	digits, ok := strings.CutPrefix(v, "v")
	if !ok || digits == "" || digits[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || strconv.Itoa(n) != digits {
		return 0, false
	}
	return n, true
}

// DraftRef returns refs/heads/drafts/<pkg>/<ws>.
func DraftRef(pkg, ws string) string { return draftsPrefix + pkg + "/" + ws }

// ProposedRef returns refs/heads/proposed/<pkg>/<ws>.
func ProposedRef(pkg, ws string) string { return proposedPrefix + pkg + "/" + ws }

// DeletionProposedRef returns refs/heads/deletionProposed/<pkg>/v<rev>.
func DeletionProposedRef(pkg string, rev int) string {
	return deletionProposedPrefix + pkg + "/v" + strconv.Itoa(rev)
}

// TagRef returns refs/tags/<pkg>/v<rev>, the tag of a published revision.
func TagRef(pkg string, rev int) string { return tagsPrefix + pkg + "/v" + strconv.Itoa(rev) }

// TagPrefix returns refs/tags/<pkg>/, the prefix of the tags of pkg's published revisions
// (and of the tags of packages nested below pkg, which ParsePackageRef tells apart).
func TagPrefix(pkg string) string { return tagsPrefix + pkg + "/" }

// PackageRefPrefixes returns the prefixes of every ref of the layout that can belong to package
// pkg: its drafts, proposals, deletion proposals and tags. Refs of packages nested below pkg
// share them; ParsePackageRef tells them apart.
func PackageRefPrefixes(pkg string) []string {
	return []string{draftsPrefix + pkg + "/", proposedPrefix + pkg + "/", deletionProposedPrefix + pkg + "/", TagPrefix(pkg)}
}

// BranchRef returns refs/heads/<name>.
func BranchRef(name string) string { return headsPrefix + name }

// kptCommitPrefix starts the metadata line of a commit made by kpt, Porch or kpo.
const kptCommitPrefix = "kpt:"

// KptCommit is the metadata line of a package commit.
type KptCommit struct {
	Package       string
	WorkspaceName string
	// Revision is the published revision number; 0 for a draft or proposed revision.
	Revision int
	// Task is the task that made the commit, kept as JSON.
	Task json.RawMessage
}

type kptCommitJSON struct {
	Package       string          `json:"package"`
	WorkspaceName string          `json:"workspaceName"`
	Revision      json.RawMessage `json:"revision,omitempty"`
	Task          json.RawMessage `json:"task,omitempty"`
}

// ParseKptCommit finds the first line of message starting with "kpt:" (after leading and
// trailing white space, as Porch reads it) whose rest is a JSON object and parses it.
// revision may be a string ("3" as Porch and kpo write it, or "v3") or, as older kpo
// versions wrote it, a number; unknown fields are ignored.
func ParseKptCommit(message string) (KptCommit, bool) {
	for _, line := range strings.Split(message, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), kptCommitPrefix)
		if !ok {
			continue
		}
		var raw kptCommitJSON
		if err := json.Unmarshal([]byte(strings.TrimSpace(rest)), &raw); err != nil {
			continue
		}
		rev, ok := parseRevision(raw.Revision)
		if !ok {
			continue
		}
		k := KptCommit{Package: raw.Package, WorkspaceName: raw.WorkspaceName, Revision: rev}
		if len(raw.Task) > 0 && !bytes.Equal(raw.Task, []byte("null")) {
			k.Task = raw.Task
		}
		return k, true
	}
	return KptCommit{}, false
}

// parseRevision accepts a missing value or null (0), a number, or a string "N"/"vN". A
// negative value (Porch's -1 for a revision that has none) is 0: not published.
func parseRevision(raw json.RawMessage) (int, bool) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, true
	}
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return max(n, 0), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, false
	}
	s = strings.TrimPrefix(s, "v")
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, false
	}
	return max(n, 0), true
}

// Line formats the metadata line:
//
//	kpt:{"package":…,"workspaceName":…,"revision":"N","task":…}
//
// revision is a JSON string, "0" for a revision that is not published, because Porch
// declares every field of the line as a string (its gitAnnotation) and refuses a commit
// whose line does not unmarshal; a negative Revision is written as "0". task is omitted
// when empty.
func (k KptCommit) Line() string {
	out := struct {
		Package       string          `json:"package"`
		WorkspaceName string          `json:"workspaceName"`
		Revision      string          `json:"revision"`
		Task          json.RawMessage `json:"task,omitempty"`
	}{k.Package, k.WorkspaceName, strconv.Itoa(max(k.Revision, 0)), k.Task}
	b, err := json.Marshal(out)
	if err != nil {
		// Only an invalid Task can fail; drop it rather than write a broken line.
		out.Task = nil
		b, _ = json.Marshal(out)
	}
	return kptCommitPrefix + string(b)
}
