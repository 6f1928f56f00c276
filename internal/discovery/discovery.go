// Package discovery turns the refs of a Git repository in Porch's layout into the set of
// package revisions they hold. It is pure: Git is read through the Source interface.
package discovery

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/git"
)

// Source is the part of a Git repository discovery reads.
type Source interface {
	Refs() ([]git.Ref, error)
	// Ref and RefsWithPrefix read one ref, or the refs below a prefix, without listing the
	// others: discovery of one package reads only that package's refs.
	Ref(name string) (string, bool)
	RefsWithPrefix(prefix string) []git.Ref
	CommitInfo(hash string) (git.Commit, error)
	ListPackages(commit, directory string) ([]string, error)
	IsPackage(commit, dir string) (bool, error)
}

// Revision is one package revision found in Git.
type Revision struct {
	// Package is the path below the repository directory.
	Package string
	// Path is the package's path from the repository root.
	Path      string
	Workspace string
	Lifecycle kpov1.Lifecycle
	// Revision is N of tag <package>/vN, -1 for the package on the registered branch, 0 for
	// drafts and proposals.
	Revision int
	// Ref holds the revision; Commit is where it points.
	Ref    string
	Commit string
	// PublishedAt and PublishedBy come from the publishing commit, for published revisions.
	PublishedAt time.Time
	PublishedBy string
}

// Options say which part of the repository is registered.
type Options struct {
	// Branch is the registered branch; its packages are revisions with workspace Branch.
	Branch string
	// Directory below which packages live ("", "/" or "a/b").
	Directory string
	// Package, when set, limits discovery to the revisions of this one package (a path below
	// Directory), so a change to one package costs the same in a repository of 10 or 1,000.
	Package string
}

// Discover lists every package revision below opts.Directory: published tags (DeletionProposed
// when a deletionProposed branch names them), draft and proposed branches, and the packages on
// the registered branch. The result is sorted by package, then revision, then workspace.
func Discover(src Source, opts Options) ([]Revision, error) {
	dir := NormalizeDirectory(opts.Directory)
	refs, err := candidateRefs(src, opts.Branch, dir, opts.Package)
	if err != nil {
		return nil, fmt.Errorf("listing refs: %w", err)
	}

	byKey := map[string]*Revision{}
	deletionProposed := map[string]bool{}
	var branchHead string
	for _, ref := range refs {
		if ref.Name == git.BranchRef(opts.Branch) {
			branchHead = ref.Hash
			continue
		}
		pr, ok := git.ParsePackageRef(ref.Name)
		if !ok || pr.Kind == git.RefBranch {
			continue
		}
		pkg, ok := PackageInDirectory(pr.Package, dir)
		if !ok || (opts.Package != "" && pkg != opts.Package) {
			continue
		}
		switch pr.Kind {
		case git.RefDeletionProposed:
			deletionProposed[pkg+"/v"+strconv.Itoa(pr.Revision)] = true
		case git.RefPublished:
			rev, err := publishedRevision(src, pkg, pr, ref.Hash)
			if err != nil {
				return nil, err
			}
			add(byKey, rev)
		case git.RefDraft, git.RefProposed:
			lifecycle := kpov1.LifecycleDraft
			if pr.Kind == git.RefProposed {
				lifecycle = kpov1.LifecycleProposed
			}
			add(byKey, Revision{
				Package: pkg, Path: pr.Package, Workspace: pr.Workspace, Lifecycle: lifecycle,
				Ref: ref.Name, Commit: ref.Hash,
			})
		}
	}
	for _, rev := range byKey {
		if rev.Lifecycle == kpov1.LifecyclePublished && deletionProposed[rev.Package+"/v"+strconv.Itoa(rev.Revision)] {
			rev.Lifecycle = kpov1.LifecycleDeletionProposed
		}
	}

	if branchHead != "" {
		pkgs, err := branchPackages(src, branchHead, dir, opts.Package)
		if err != nil {
			return nil, fmt.Errorf("listing packages on branch %s: %w", opts.Branch, err)
		}
		for _, pkg := range pkgs {
			add(byKey, Revision{
				Package: pkg, Path: joinPath(dir, pkg), Workspace: opts.Branch,
				Lifecycle: kpov1.LifecyclePublished, Revision: -1,
				Ref: git.BranchRef(opts.Branch), Commit: branchHead,
			})
		}
	}

	out := make([]Revision, 0, len(byKey))
	for _, rev := range byKey {
		out = append(out, *rev)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		return a.Workspace < b.Workspace
	})
	return out, nil
}

// candidateRefs returns the refs Discover looks at: all of them, or, for one package, the
// registered branch and the refs below the package's prefixes, so that re-reading one package
// costs the same in a repository of ten packages or of thousands.
func candidateRefs(src Source, branch, dir, pkg string) ([]git.Ref, error) {
	if pkg == "" {
		return src.Refs()
	}
	var refs []git.Ref
	if head, ok := src.Ref(git.BranchRef(branch)); ok {
		refs = append(refs, git.Ref{Name: git.BranchRef(branch), Hash: head})
	}
	for _, prefix := range git.PackageRefPrefixes(joinPath(dir, pkg)) {
		refs = append(refs, src.RefsWithPrefix(prefix)...)
	}
	return refs, nil
}

// branchPackages lists the packages on the registered branch, or checks only pkg when set.
func branchPackages(src Source, head, dir, pkg string) ([]string, error) {
	if pkg == "" {
		return src.ListPackages(head, dir)
	}
	ok, err := src.IsPackage(head, joinPath(dir, pkg))
	if err != nil || !ok {
		return nil, err
	}
	return []string{pkg}, nil
}

// publishedRevision reads the workspace and publication facts of tag <pkg>/vN from the kpt
// line of its commit; a tag without one keeps "vN" as its workspace, as Porch does.
func publishedRevision(src Source, pkg string, pr git.PackageRef, hash string) (Revision, error) {
	c, err := src.CommitInfo(hash)
	if err != nil {
		return Revision{}, fmt.Errorf("reading commit of %s: %w", pr.Name, err)
	}
	ws := "v" + strconv.Itoa(pr.Revision)
	if kc, ok := git.ParseKptCommit(c.Message); ok && kc.WorkspaceName != "" {
		ws = kc.WorkspaceName
	}
	by := approvedBy(c.Message)
	if by == "" {
		by = c.AuthorEmail
	}
	return Revision{
		Package: pkg, Path: pr.Package, Workspace: ws, Lifecycle: kpov1.LifecyclePublished,
		Revision: pr.Revision, Ref: pr.Name, Commit: c.Hash,
		PublishedAt: c.Time, PublishedBy: by,
	}, nil
}

// ApprovedByTrailer is the commit trailer in which kpo records the verified approver.
const ApprovedByTrailer = "Approved-by: "

func approvedBy(message string) string {
	for _, line := range strings.Split(message, "\n") {
		if v, ok := strings.CutPrefix(line, ApprovedByTrailer); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// add keeps one revision per package and workspace. A published revision wins over a branch
// of the same workspace (a draft branch left behind after publication), and a proposal over
// a draft.
func add(m map[string]*Revision, rev Revision) {
	key := rev.Package + "\x00" + rev.Workspace
	if old, ok := m[key]; ok && rank(old.Lifecycle) >= rank(rev.Lifecycle) {
		return
	}
	m[key] = &rev
}

func rank(l kpov1.Lifecycle) int {
	switch l {
	case kpov1.LifecyclePublished, kpov1.LifecycleDeletionProposed:
		return 2
	case kpov1.LifecycleProposed:
		return 1
	}
	return 0
}

// NormalizeDirectory turns a Repository's spec.git.directory into a path without leading or
// trailing slashes; "" is the repository root.
func NormalizeDirectory(dir string) string {
	return strings.Trim(dir, "/")
}

// PackageInDirectory returns the path of pkg (from the repository root) relative to dir (a
// normalized directory, "" for the root); ok is false when pkg is not below dir.
func PackageInDirectory(pkg, dir string) (string, bool) {
	if dir == "" {
		return pkg, pkg != ""
	}
	rel, ok := strings.CutPrefix(pkg, dir+"/")
	return rel, ok && rel != ""
}

// PackagePath is the path from the repository root of package pkg in directory dir.
func PackagePath(directory, pkg string) string {
	return joinPath(NormalizeDirectory(directory), pkg)
}

func joinPath(dir, pkg string) string {
	if dir == "" {
		return pkg
	}
	return dir + "/" + pkg
}

// LatestRevisions maps each package to the name of its newest published revision (highest
// N among lifecycle Published; revisions on the branch, -1, never count).
func LatestRevisions(revs []Revision, name func(Revision) string) map[string]string {
	best := map[string]Revision{}
	for _, r := range revs {
		if r.Lifecycle != kpov1.LifecyclePublished || r.Revision < 1 {
			continue
		}
		if b, ok := best[r.Package]; !ok || r.Revision > b.Revision {
			best[r.Package] = r
		}
	}
	out := make(map[string]string, len(best))
	for pkg, r := range best {
		out[pkg] = name(r)
	}
	return out
}
