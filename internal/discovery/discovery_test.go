package discovery

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/git"
)

// fakeSource is an in-memory Git repository for the pure discovery rules.
type fakeSource struct {
	refs     []git.Ref
	messages map[string]string
	packages map[string][]string // commit → packages below the directory
}

func (f fakeSource) Refs() ([]git.Ref, error) { return f.refs, nil }

func (f fakeSource) Ref(name string) (string, bool) {
	for _, r := range f.refs {
		if r.Name == name {
			return r.Hash, true
		}
	}
	return "", false
}

func (f fakeSource) RefsWithPrefix(prefix string) []git.Ref {
	var out []git.Ref
	for _, r := range f.refs {
		if strings.HasPrefix(r.Name, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (f fakeSource) CommitInfo(hash string) (git.Commit, error) {
	return git.Commit{Hash: hash, Message: f.messages[hash], AuthorEmail: "author@example.com", Time: time.Unix(1700000000, 0)}, nil
}

func (f fakeSource) ListPackages(commit, _ string) ([]string, error) { return f.packages[commit], nil }

func (f fakeSource) IsPackage(commit, dir string) (bool, error) {
	for _, p := range f.packages[commit] {
		if "blueprints/"+p == dir {
			return true, nil
		}
	}
	return false, nil
}

// noListing is a Source whose full listing fails: discovery of one package must not need it.
type noListing struct{ fakeSource }

func (noListing) Refs() ([]git.Ref, error) { return nil, errors.New("listed every ref") }

func TestDiscover_rules(t *testing.T) {
	src := fakeSource{
		refs: []git.Ref{
			{Name: "refs/heads/main", Hash: "m"},
			{Name: "refs/tags/blueprints/app/v1", Hash: "t1"},
			{Name: "refs/tags/blueprints/app/v2", Hash: "t2"},
			{Name: "refs/tags/blueprints/app/v3", Hash: "t3"},
			{Name: "refs/heads/deletionProposed/blueprints/app/v3", Hash: "t3"},
			{Name: "refs/heads/drafts/blueprints/app/ws", Hash: "d1"},
			{Name: "refs/heads/proposed/blueprints/app/ws", Hash: "p1"},
			{Name: "refs/heads/drafts/blueprints/app/first", Hash: "d2"},
			{Name: "refs/heads/drafts/other/app/ws", Hash: "d3"},
			{Name: "refs/tags/release-1.0", Hash: "x"},
			{Name: "refs/heads/feature", Hash: "f"},
		},
		messages: map[string]string{
			"t1": "Approve\n\nkpt:{\"package\":\"blueprints/app\",\"workspaceName\":\"first\",\"revision\":\"v1\"}",
			"t2": "Approve\n\nApproved-by: jane@example.com\nkpt:{\"package\":\"blueprints/app\",\"workspaceName\":\"second\",\"revision\":2}",
		},
		packages: map[string][]string{"m": {"app"}},
	}
	g := NewWithT(t)
	revs, err := Discover(src, Options{Branch: "main", Directory: "/blueprints/"})
	g.Expect(err).NotTo(HaveOccurred())

	type fact struct {
		Workspace string
		Lifecycle kpov1.Lifecycle
		Revision  int
		By        string
	}
	var got []fact
	for _, r := range revs {
		g.Expect(r.Package).To(Equal("app"))
		got = append(got, fact{r.Workspace, r.Lifecycle, r.Revision, r.PublishedBy})
	}
	g.Expect(got).To(Equal([]fact{
		{"main", kpov1.LifecyclePublished, -1, ""},
		// The proposal wins over the draft of the same workspace; the draft of workspace
		// "first" loses to the published revision with that workspace.
		{"ws", kpov1.LifecycleProposed, 0, ""},
		{"first", kpov1.LifecyclePublished, 1, "author@example.com"},
		{"second", kpov1.LifecyclePublished, 2, "jane@example.com"},
		{"v3", kpov1.LifecycleDeletionProposed, 3, "author@example.com"},
	}))

	one, err := Discover(noListing{src}, Options{Branch: "main", Directory: "blueprints", Package: "app"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(one).To(Equal(revs), "a package filter finds the same revisions of that package, without listing every ref")
	none, err := Discover(src, Options{Branch: "main", Directory: "blueprints", Package: "other"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(none).To(BeEmpty())

	latest := LatestRevisions(revs, func(r Revision) string { return r.Workspace })
	g.Expect(latest).To(Equal(map[string]string{"app": "second"}), "a revision proposed for deletion is not the latest")
}

func TestRevisionName_keepsPorchNamesAndCleansInvalidOnes(t *testing.T) {
	g := NewWithT(t)
	g.Expect(RevisionName("catalog", "apps/web", "v1")).To(Equal("catalog.apps.web.v1"))
	a := RevisionName("catalog", "Apps/My_Web", "v1")
	b := RevisionName("catalog", "apps/my-web", "v1")
	g.Expect(a).To(MatchRegexp(`^catalog\.apps\.my-web\.v1-[0-9a-f]{10}$`))
	g.Expect(a).NotTo(Equal(b))
	g.Expect(PackageLabelValue("apps/web")).To(Equal("apps.web"))
	long := PackageLabelValue("a/very/long/package/path/that/does/not/fit/in/a/label/value/at/all/x")
	g.Expect(len(long)).To(BeNumerically("<=", 63))
}
