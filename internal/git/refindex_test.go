package git

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
)

func TestRefIndex_keepsRefsSortedForLookupsAndPrefixes(t *testing.T) {
	g := NewWithT(t)
	x := &refIndex{}
	for _, name := range []string{"refs/tags/b/v1", "refs/heads/main", "refs/tags/a/v2", "refs/tags/a/v1", "refs/tags/ab/v1"} {
		x.set(name, "h-"+name)
	}
	x.set("refs/heads/main", "moved")
	x.remove("refs/tags/b/v1")
	x.remove("refs/tags/missing")

	g.Expect(x.all()).To(Equal([]Ref{
		{Name: "refs/heads/main", Hash: "moved"},
		{Name: "refs/tags/a/v1", Hash: "h-refs/tags/a/v1"},
		{Name: "refs/tags/a/v2", Hash: "h-refs/tags/a/v2"},
		{Name: "refs/tags/ab/v1", Hash: "h-refs/tags/ab/v1"},
	}))
	g.Expect(x.withPrefix("refs/tags/a/")).To(Equal([]Ref{
		{Name: "refs/tags/a/v1", Hash: "h-refs/tags/a/v1"},
		{Name: "refs/tags/a/v2", Hash: "h-refs/tags/a/v2"},
	}), "a/ does not match ab/")
	g.Expect(x.withPrefix("refs/tags/z/")).To(BeEmpty())
	g.Expect(x.withPrefix("")).To(HaveLen(4))
	h, ok := x.get("refs/heads/main")
	g.Expect(ok).To(BeTrue())
	g.Expect(h).To(Equal("moved"))
	_, ok = x.get("refs/tags/b/v1")
	g.Expect(ok).To(BeFalse())

	// A copy: callers cannot change the index through what they got.
	got := x.withPrefix("refs/heads/")
	got[0].Hash = "changed"
	h, _ = x.get("refs/heads/main")
	g.Expect(h).To(Equal("moved"))
}

func TestRepo_refAndRefsWithPrefix_followFetchesAndPushes(t *testing.T) {
	g := NewWithT(t)
	f, want := fetchedFixture(t)
	h, ok := f.repo.Ref("refs/heads/main")
	g.Expect(ok).To(BeTrue())
	g.Expect(h).To(Equal(want[1].Hash))
	_, ok = f.repo.Ref("refs/heads/nope")
	g.Expect(ok).To(BeFalse())
	g.Expect(f.repo.RefsWithPrefix("refs/tags/basens/")).To(Equal([]Ref{want[2]}))

	c, err := f.repo.CreateCommit(NewCommit{Parents: []string{want[1].Hash}, Dir: "basens", Files: map[string][]byte{"Kptfile": []byte("v2")}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.repo.PushRefs(context.Background(), []RefUpdate{
		{Name: TagRef("basens", 2), New: c},
		{Name: DraftRef("basens", "ws1"), Old: want[0].Hash},
	})).To(Succeed())
	g.Expect(f.repo.RefsWithPrefix("refs/tags/basens/")).To(Equal([]Ref{want[2], {Name: TagRef("basens", 2), Hash: c}}))
	g.Expect(f.repo.RefsWithPrefix("refs/heads/drafts/")).To(BeEmpty())

	g.Expect(f.remote.DeleteRef("refs/tags/basens/v1")).To(Succeed())
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	g.Expect(f.repo.RefsWithPrefix("refs/tags/")).To(Equal([]Ref{{Name: TagRef("basens", 2), Hash: c}}))
}
