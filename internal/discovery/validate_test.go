package discovery

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestValidate_keepsRepresentableRevisions_andSaysWhatIsWrongWithTheOthers(t *testing.T) {
	long := strings.Repeat("p", 201)
	longWorkspace := strings.Repeat("w", 64)
	tests := []struct {
		name  string
		revs  []Revision
		valid []string   // workspaces of the valid revisions, in order
		want  [][]string // substrings of each problem, in order
	}{
		{
			name:  "valid revisions pass",
			revs:  []Revision{{Package: "apps/web", Workspace: "main", Ref: "refs/heads/main"}, {Package: "apps/web", Workspace: "ws", Ref: "refs/heads/drafts/apps/web/ws"}},
			valid: []string{"main", "ws"},
		},
		{
			name: "a path of exactly 200 characters passes, 201 does not",
			revs: []Revision{
				{Package: strings.Repeat("p", 200), Workspace: "ok", Ref: "refs/heads/main"},
				{Package: long, Workspace: "main", Ref: "refs/heads/main"},
			},
			valid: []string{"ok"},
			want:  [][]string{{`package "ppppp`, "(201 characters) (ref \"refs/heads/main\"): the package path is 201 characters long, more than the 200 a PackageRevision's spec.packageName holds: move the package to a shorter path in Git"}},
		},
		{
			name:  "a workspace longer than 63 characters",
			revs:  []Revision{{Package: "web", Workspace: longWorkspace, Ref: "refs/heads/drafts/web/" + longWorkspace}},
			valid: []string{},
			want:  [][]string{{`package "web" (ref "refs/heads/drafts/web/www`, "the workspace name \"" + longWorkspace + "\" is 64 characters long, more than the 63 a PackageRevision's spec.workspaceName holds: rename the branch in Git"}},
		},
		{
			name: "two revisions with the same object name: the first keeps it",
			revs: []Revision{
				{Package: "a.b", Workspace: "ws", Ref: "refs/heads/drafts/a.b/ws"},
				{Package: "a/b", Workspace: "ws", Ref: "refs/heads/drafts/a/b/ws"},
			},
			valid: []string{"ws"},
			want:  [][]string{{`package "a/b" (ref "refs/heads/drafts/a/b/ws"): its PackageRevision name "repo.a.b.ws" is already that of package "a.b", workspace "ws" (ref "refs/heads/drafts/a.b/ws"): rename one`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			valid, problems := Validate("repo", tt.revs)
			var ws []string
			for _, r := range valid {
				ws = append(ws, r.Workspace)
			}
			g.Expect(ws).To(ConsistOf(tt.valid))
			g.Expect(problems).To(HaveLen(len(tt.want)))
			for i, want := range tt.want {
				for _, w := range want {
					g.Expect(problems[i].String()).To(ContainSubstring(w))
				}
			}
		})
	}
}
