package git

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

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
		{"leading white space, as Porch reads it", "msg\n  kpt:{\"package\":\"a\",\"workspaceName\":\"ws\",\"revision\":\"0\"}  ",
			KptCommit{Package: "a", WorkspaceName: "ws"}, true},
		{"Porch's -1 is not published", `kpt:{"package":"a","workspaceName":"ws","revision":"-1"}`,
			KptCommit{Package: "a", WorkspaceName: "ws"}, true},
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

func TestKptCommit_line_writesRevisionAsStringLikePorch(t *testing.T) {
	g := NewWithT(t)
	k := KptCommit{Package: "a/b", WorkspaceName: "ws", Revision: 2, Task: json.RawMessage(`{ "type": "edit" }`)}
	g.Expect(k.Line()).To(Equal(`kpt:{"package":"a/b","workspaceName":"ws","revision":"2","task":{"type":"edit"}}`))
	back, ok := ParseKptCommit("msg\n\n" + k.Line())
	g.Expect(ok).To(BeTrue())
	g.Expect(back.Revision).To(Equal(2))
	g.Expect(string(back.Task)).To(Equal(`{"type":"edit"}`))

	// Porch writes strconv.Itoa(revision), so "0" for a draft.
	g.Expect(KptCommit{Package: "a"}.Line()).To(Equal(`kpt:{"package":"a","workspaceName":"","revision":"0"}`))
	g.Expect(KptCommit{Package: "a", Revision: -1}.Line()).To(Equal(`kpt:{"package":"a","workspaceName":"","revision":"0"}`))
	g.Expect(KptCommit{Package: "a", Task: json.RawMessage(`{broken`)}.Line()).To(Equal(`kpt:{"package":"a","workspaceName":"","revision":"0"}`))
}

// porchGitAnnotation has the field names and types of Porch's gitAnnotation
// (pkg/externalrepo/git/annotation.go), which Porch unmarshals every kpt: line into.
type porchGitAnnotation struct {
	PackagePath   string `json:"package,omitempty"`
	WorkspaceName string `json:"workspaceName,omitempty"`
	Revision      string `json:"revision,omitempty"`
	Task          *struct {
		Type string `json:"type"`
	} `json:"task,omitempty"`
}

func TestKptCommit_line_unmarshalsAsPorchGitAnnotation(t *testing.T) {
	for _, k := range []KptCommit{
		{Package: "a/b", WorkspaceName: "ws"},
		{Package: "a/b", WorkspaceName: "ws", Revision: 7, Task: json.RawMessage(`{"type":"init"}`)},
	} {
		g := NewWithT(t)
		rest, ok := strings.CutPrefix(k.Line(), "kpt:")
		g.Expect(ok).To(BeTrue())
		var a porchGitAnnotation
		g.Expect(json.Unmarshal([]byte(rest), &a)).To(Succeed(), k.Line())
		g.Expect(a.PackagePath).To(Equal(k.Package))
		g.Expect(a.WorkspaceName).To(Equal(k.WorkspaceName))
		g.Expect(a.Revision).To(Equal(strconv.Itoa(k.Revision)))
	}
}

// FuzzParseKptCommit checks that ParseKptCommit never panics, that what it parses writes
// back to a line that parses to the same commit, and that Line round-trips any commit.
func FuzzParseKptCommit(f *testing.F) {
	for _, s := range []string{
		"Intermediate commit\n\nkpt:{\"package\":\"a/b\",\"workspaceName\":\"ws\",\"revision\":3,\"task\":{\"type\":\"init\"}}\n",
		`kpt:{"package":"a","workspaceName":"ws","revision":"v3"}`,
		`kpt:{"package":"a","workspaceName":"ws","revision":"-1"}`,
		`kpt:{"package":"a","revision":"99999999999999999999999"}`,
		`kpt:{"package":"a","revision":1e3}`,
		`kpt:{"package":"a","revision":1.5}`,
		`kpt:{"package":"a","task":"edit"}`,
		`kpt:{"package":"a","task":[1,2]}`,
		"  kpt:{\"package\":\"\\u2028\"}\r\n",
		"kpt:null",
		"kpt:[]",
		"kpt:",
		"kpt:not json\nkpt:{}",
		"no line",
		"",
	} {
		f.Add(s, "pkg", "ws", 1, `{"type":"edit"}`)
	}
	f.Add("", "a/b\nkpt:{}", "ws\r", -5, "")
	f.Add("", "", "", 0, "null")
	f.Fuzz(func(t *testing.T, message, pkg, ws string, rev int, task string) {
		if k, ok := ParseKptCommit(message); ok {
			if k.Revision < 0 {
				t.Fatalf("ParseKptCommit(%q) gave negative revision %d", message, k.Revision)
			}
			checkLineRoundTrip(t, k)
		}
		if !utf8.ValidString(pkg) || !utf8.ValidString(ws) {
			return // JSON cannot hold invalid UTF-8: Line writes U+FFFD instead.
		}
		k := KptCommit{Package: pkg, WorkspaceName: ws, Revision: rev}
		if task != "" {
			k.Task = json.RawMessage(task)
		}
		checkLineRoundTrip(t, k)
	})
}

// checkLineRoundTrip checks that ParseKptCommit(k.Line()) gives k back, with a negative
// revision read as 0 and the task compacted (or dropped when it is not valid JSON).
func checkLineRoundTrip(t *testing.T, k KptCommit) {
	t.Helper()
	line := k.Line()
	if strings.ContainsAny(line, "\r\n") {
		t.Fatalf("Line() = %q spans several lines", line)
	}
	back, ok := ParseKptCommit("title\n\n" + line + "\n")
	if !ok {
		t.Fatalf("ParseKptCommit(%q) refused the line Line wrote", line)
	}
	want := k
	want.Revision = max(k.Revision, 0)
	want.Task = nil
	var compact bytes.Buffer
	if len(k.Task) > 0 && json.Compact(&compact, k.Task) == nil && compact.String() != "null" {
		want.Task = json.RawMessage(compact.String())
	}
	if back.Package != want.Package || back.WorkspaceName != want.WorkspaceName || back.Revision != want.Revision ||
		string(back.Task) != string(want.Task) {
		t.Fatalf("ParseKptCommit(%q) = %+v, want %+v", line, back, want)
	}
}
