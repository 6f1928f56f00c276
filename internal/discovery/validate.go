package discovery

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// Problem is a package revision found in Git that cannot become a PackageRevision.
type Problem struct {
	Revision Revision
	// Message says what is wrong and how to fix it in Git; it names neither the package nor
	// the ref (String adds them).
	Message string
}

// String names the package and its ref, then says what is wrong.
func (p Problem) String() string {
	return fmt.Sprintf("package %s (ref %s): %s", quoteShort(p.Revision.Package), quoteShort(p.Revision.Ref), p.Message)
}

// Validate splits revs into the revisions that can be PackageRevisions of the Repository
// named repository and those that cannot: a package path longer than spec.packageName
// holds, a workspace name that is empty or longer than spec.workspaceName holds, an object
// name or label value that is not valid, or a PackageRevision name another revision of revs
// already has (the first in revs keeps it). Order is kept.
func Validate(repository string, revs []Revision) ([]Revision, []Problem) {
	valid := make([]Revision, 0, len(revs))
	var problems []Problem
	taken := map[string]Revision{}
	for _, rev := range revs {
		msg := check(repository, rev)
		name := RevisionName(repository, rev.Package, rev.Workspace)
		if other, ok := taken[name]; ok && msg == "" {
			msg = fmt.Sprintf("its PackageRevision name %q is already that of package %s, workspace %s (ref %s): rename one of the two packages (or branches) in Git",
				name, quoteShort(other.Package), quoteShort(other.Workspace), quoteShort(other.Ref))
		}
		if msg != "" {
			problems = append(problems, Problem{Revision: rev, Message: msg})
			continue
		}
		taken[name] = rev
		valid = append(valid, rev)
	}
	return valid, problems
}

// check returns what makes rev impossible to represent, or "".
func check(repository string, rev Revision) string {
	var msgs []string
	if n := len(rev.Package); n > kpov1.MaxPackageNameLength {
		msgs = append(msgs, fmt.Sprintf("the package path is %d characters long, more than the %d a PackageRevision's spec.packageName holds: move the package to a shorter path in Git",
			n, kpov1.MaxPackageNameLength))
	}
	switch n := len(rev.Workspace); {
	case n == 0:
		msgs = append(msgs, "the workspace name is empty: name the branch <kind>/<package>/<workspace>")
	case n > kpov1.MaxWorkspaceNameLength:
		msgs = append(msgs, fmt.Sprintf("the workspace name %s is %d characters long, more than the %d a PackageRevision's spec.workspaceName holds: rename the branch in Git",
			quoteShort(rev.Workspace), n, kpov1.MaxWorkspaceNameLength))
	}
	if errs := validation.IsDNS1123Subdomain(RevisionName(repository, rev.Package, rev.Workspace)); len(errs) > 0 {
		msgs = append(msgs, "its PackageRevision name is not valid ("+strings.Join(errs, "; ")+"): rename the package in Git")
	}
	if errs := validation.IsValidLabelValue(PackageLabelValue(rev.Package)); len(errs) > 0 {
		msgs = append(msgs, "its kpo.dev/package label value is not valid ("+strings.Join(errs, "; ")+"): rename the package in Git")
	}
	return strings.Join(msgs, "; ")
}

// maxQuoted is the longest name a message quotes in full; longer ones are shortened, so
// that a message naming several packages stays readable and within a condition's limits.
const maxQuoted = 120

// quoteShort quotes s, shortened to its start and length when it is very long.
func quoteShort(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d characters)", strings.ToValidUTF8(s[:maxQuoted-20], ""), len(s))
}
