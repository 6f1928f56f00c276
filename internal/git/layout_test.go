package git

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
)

func TestParsePackageRef_recognisesPorchLayout(t *testing.T) {
	for _, tc := range []struct {
		ref    string
		want   PackageRef
		wantOK bool
	}{
		{"refs/heads/drafts/basens/ws1", PackageRef{Kind: RefDraft, Package: "basens", Workspace: "ws1"}, true},
		{"refs/heads/drafts/team/net/basens/ws1", PackageRef{Kind: RefDraft, Package: "team/net/basens", Workspace: "ws1"}, true},
		{"refs/heads/proposed/a/b/v1", PackageRef{Kind: RefProposed, Package: "a/b", Workspace: "v1"}, true},
		{"refs/heads/deletionProposed/a/b/v3", PackageRef{Kind: RefDeletionProposed, Package: "a/b", Revision: 3}, true},
		{"refs/tags/a/b/v12", PackageRef{Kind: RefPublished, Package: "a/b", Revision: 12}, true},
		{"refs/tags/basens/v1", PackageRef{Kind: RefPublished, Package: "basens", Revision: 1}, true},
		{"refs/heads/main", PackageRef{Kind: RefBranch}, true},
		{"refs/heads/feature/x", PackageRef{Kind: RefBranch}, true},
		{"refs/heads/drafts/only", PackageRef{Kind: RefBranch}, true},
		{"refs/heads/drafts//ws", PackageRef{Kind: RefBranch}, true},
		{"refs/heads/deletionProposed/a/b/vx", PackageRef{Kind: RefBranch}, true},
		{"refs/heads/deletionProposed/a/v0", PackageRef{Kind: RefBranch}, true},
		{"refs/tags/v1", PackageRef{}, false},
		{"refs/tags/a/v0", PackageRef{}, false},
		{"refs/tags/a/v01", PackageRef{}, false},
		{"refs/tags/a/v-1", PackageRef{}, false},
		{"refs/tags/a/1", PackageRef{}, false},
		{"refs/tags/release-1.0", PackageRef{}, false},
		{"refs/remotes/origin/main", PackageRef{}, false},
		{"refs/heads/", PackageRef{}, false},
		{"HEAD", PackageRef{}, false},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			g := NewWithT(t)
			got, ok := ParsePackageRef(tc.ref)
			g.Expect(ok).To(Equal(tc.wantOK))
			if ok {
				tc.want.Name = tc.ref
			}
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

func TestRefBuilders_roundTripThroughParsePackageRef(t *testing.T) {
	g := NewWithT(t)
	g.Expect(DraftRef("a/b", "ws")).To(Equal("refs/heads/drafts/a/b/ws"))
	g.Expect(ProposedRef("a/b", "ws")).To(Equal("refs/heads/proposed/a/b/ws"))
	g.Expect(DeletionProposedRef("a/b", 2)).To(Equal("refs/heads/deletionProposed/a/b/v2"))
	g.Expect(TagRef("a/b", 7)).To(Equal("refs/tags/a/b/v7"))
	g.Expect(BranchRef("main")).To(Equal("refs/heads/main"))
	for _, ref := range []string{DraftRef("a/b", "ws"), ProposedRef("x", "y"), DeletionProposedRef("a/b", 2), TagRef("a/b", 7)} {
		p, ok := ParsePackageRef(ref)
		g.Expect(ok).To(BeTrue())
		g.Expect(p.Name).To(Equal(ref))
		g.Expect(p.Kind).NotTo(Equal(RefBranch))
	}
}

func TestParseKptCommit_readsPorchAndKpoLines(t *testing.T) {
	task := json.RawMessage(`{"type":"init","init":{"description":"d"}}`)
	for _, tc := range []struct {
		name   string
		msg    string
		want   KptCommit
		wantOK bool
	}{
		{"numeric revision", "Intermediate commit\n\nkpt:{\"package\":\"a/b\",\"workspaceName\":\"ws\",\"revision\":3,\"task\":" + string(task) + "}\n",
			KptCommit{Package: "a/b", WorkspaceName: "ws", Revision: 3, Task: task}, true},
		{"porch string revision v3", `kpt:{"package":"a","workspaceName":"ws","revision":"v3"}`,
			KptCommit{Package: "a", WorkspaceName: "ws", Revision: 3}, true},
		{"string revision 4", `kpt:{"package":"a","workspaceName":"ws","revision":"4"}`,
			KptCommit{Package: "a", WorkspaceName: "ws", Revision: 4}, true},
		{"empty string revision", `kpt:{"package":"a","workspaceName":"ws","revision":""}`,
			KptCommit{Package: "a", WorkspaceName: "ws"}, true},
		{"no revision, unknown field, CRLF", "title\r\nkpt:{\"package\":\"a\",\"workspaceName\":\"ws\",\"extra\":[1]}\r\n",
			KptCommit{Package: "a", WorkspaceName: "ws"}, true},
		{"null task", `kpt:{"package":"a","workspaceName":"ws","task":null}`,
			KptCommit{Package: "a", WorkspaceName: "ws"}, true},
		{"first valid line wins", "kpt:not json\nkpt:{\"package\":\"b\",\"workspaceName\":\"w\"}",
			KptCommit{Package: "b", WorkspaceName: "w"}, true},
		{"bad revision", `kpt:{"package":"a","revision":"vx"}`, KptCommit{}, false},
		{"not at line start", `see kpt:{"package":"a"}`, KptCommit{}, false},
		{"no line", "just a message", KptCommit{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, ok := ParseKptCommit(tc.msg)
			g.Expect(ok).To(Equal(tc.wantOK))
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

func TestKptCommit_line_writesNumericRevisionAndRoundTrips(t *testing.T) {
	g := NewWithT(t)
	k := KptCommit{Package: "a/b", WorkspaceName: "ws", Revision: 2, Task: json.RawMessage(`{ "type": "edit" }`)}
	g.Expect(k.Line()).To(Equal(`kpt:{"package":"a/b","workspaceName":"ws","revision":2,"task":{"type":"edit"}}`))
	back, ok := ParseKptCommit("msg\n\n" + k.Line())
	g.Expect(ok).To(BeTrue())
	g.Expect(back.Revision).To(Equal(2))
	g.Expect(string(back.Task)).To(Equal(`{"type":"edit"}`))

	g.Expect(KptCommit{Package: "a"}.Line()).To(Equal(`kpt:{"package":"a","workspaceName":"","revision":0}`))
}
