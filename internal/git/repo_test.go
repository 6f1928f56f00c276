package git

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/gitserver"
)

const (
	testUser     = "alice"
	testPassword = "pa55-w0rd-xyz"
)

var testCreds = Credentials{Username: testUser, Password: testPassword}

// fixture is a real Git server with one seeded repository and a cache with a handle on it.
type fixture struct {
	server *gitserver.Server
	remote *gitserver.Repo
	cache  *Cache
	repo   *Repo
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	g := NewWithT(t)
	s, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Username: testUser, Password: testPassword})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = s.Close() })
	remote, err := s.CreateRepo("catalog")
	g.Expect(err).NotTo(HaveOccurred())
	cache := NewCache(t.TempDir())
	repo, err := cache.Open(context.Background(), "default/catalog", remote.URL(), testCreds)
	g.Expect(err).NotTo(HaveOccurred())
	return &fixture{server: s, remote: remote, cache: cache, repo: repo}
}

// commit commits change to main of the remote.
func (f *fixture) commit(t *testing.T, change gitserver.Change) string {
	t.Helper()
	h, err := f.remote.Commit("main", change)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func seedPackages(t *testing.T, f *fixture) string {
	return f.commit(t, gitserver.Change{Files: map[string]string{
		"README.md":                         "root\n",
		"Kptfile":                           "root kptfile is ignored\n",
		"basens/Kptfile":                    "kind: Kptfile\n",
		"basens/ns.yaml":                    "kind: Namespace\n",
		"basens/sub/Kptfile":                "nested\n",
		"basens/sub/cm.yaml":                "kind: ConfigMap\n",
		"docs/guide.md":                     "not a package\n",
		"blueprints/net/Kptfile":            "kind: Kptfile\n",
		"blueprints/net/deep/x/Kptfile":     "nested\n",
		"blueprints/team/app/Kptfile":       "kind: Kptfile\n",
		"blueprints/team/app/bin/run.sh":    "#!/bin/sh\n",
		"blueprints/team/notes/README.md":   "no kptfile\n",
		"blueprints/Kptfile-not-exact-name": "x",
	}, Message: "seed"})
}

func TestRepo_fetch_mirrorsRefsAndReadsTrees(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.remote.Tag("basens/v1", main)).To(Succeed())
	g.Expect(f.remote.Branch("drafts/basens/ws1", main)).To(Succeed())

	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed(), "already up to date is not an error")

	g.Expect(f.repo.Refs()).To(Equal([]Ref{
		{Name: "refs/heads/drafts/basens/ws1", Hash: main},
		{Name: "refs/heads/main", Hash: main},
		{Name: "refs/tags/basens/v1", Hash: main},
	}))
	g.Expect(f.repo.BranchHead("main")).To(Equal(main))
	g.Expect(f.repo.BranchHead("refs/heads/main")).To(Equal(main))
	_, err := f.repo.BranchHead("nope")
	g.Expect(err).To(MatchError(ErrBranchNotFound))

	info, err := f.repo.CommitInfo(main)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.Message).To(Equal("seed"))
	g.Expect(info.AuthorName).To(Equal(gitserver.AuthorName))
	g.Expect(info.AuthorEmail).To(Equal(gitserver.AuthorEmail))
	g.Expect(info.Time.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))).To(BeTrue())
	g.Expect(info.Parents).To(BeEmpty())
	byTag, err := f.repo.CommitInfo("refs/tags/basens/v1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(byTag.Hash).To(Equal(main))
	_, err = f.repo.CommitInfo(strings.Repeat("a", 40))
	g.Expect(err).To(MatchError(ErrNotFound))

	files, err := f.repo.ReadTree(main, "basens")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).To(Equal(map[string][]byte{
		"Kptfile":     []byte("kind: Kptfile\n"),
		"ns.yaml":     []byte("kind: Namespace\n"),
		"sub/Kptfile": []byte("nested\n"),
		"sub/cm.yaml": []byte("kind: ConfigMap\n"),
	}))
	_, err = f.repo.ReadTree(main, "missing/dir")
	g.Expect(err).To(MatchError(ErrNotFound))
	_, err = f.repo.ReadTree(main, "README.md")
	g.Expect(err).To(MatchError(ErrNotFound), "a file is not a directory")
	all, err := f.repo.ReadTree(main, "/")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(all).To(HaveLen(13))
}

func TestRepo_listPackages_skipsNestedAndNonPackageDirs(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())

	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"", []string{"basens", "blueprints/net", "blueprints/team/app"}},
		{"/", []string{"basens", "blueprints/net", "blueprints/team/app"}},
		{"blueprints", []string{"net", "team/app"}},
		{"/blueprints/team/", []string{"app"}},
		{"basens", []string{"sub"}}, // the Kptfile at the directory itself is not a package
		{"docs", []string{}},
		{"missing", []string{}},
	} {
		g.Expect(f.repo.ListPackages(main, tc.dir)).To(Equal(tc.want), "directory %q", tc.dir)
	}
}

func TestRepo_fetch_seesNewTagAndPrunesDeletedBranch(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	first := f.commit(t, gitserver.Change{Files: map[string]string{"a/Kptfile": "a"}})
	g.Expect(f.remote.Branch("drafts/a/ws", first)).To(Succeed())
	g.Expect(f.remote.Tag("a/v1", first)).To(Succeed())
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	g.Expect(f.repo.Refs()).To(HaveLen(3))

	second := f.commit(t, gitserver.Change{Files: map[string]string{"a/x.yaml": "x"}})
	g.Expect(f.remote.Tag("a/v2", second)).To(Succeed())
	g.Expect(f.remote.DeleteRef("refs/heads/drafts/a/ws")).To(Succeed())
	g.Expect(f.remote.DeleteRef("refs/tags/a/v1")).To(Succeed())

	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	g.Expect(f.repo.Refs()).To(Equal([]Ref{
		{Name: "refs/heads/main", Hash: second},
		{Name: "refs/tags/a/v2", Hash: second},
	}))

	// A force-moved branch follows the remote.
	g.Expect(f.remote.Branch("main", first)).To(Succeed())
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	g.Expect(f.repo.BranchHead("main")).To(Equal(first))

	// Reopening the cache key reuses the clone: no re-clone, refs are there before a fetch.
	again, err := NewCache(filepath.Dir(f.cache.keyDir("x"))).Open(context.Background(), "default/catalog", f.remote.URL(), testCreds)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.BranchHead("main")).To(Equal(first))
}

func TestRepo_fetch_wrongPasswordIsAuthenticationFailedWithoutSecret(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	f.commit(t, gitserver.Change{Files: map[string]string{"a": "a"}})
	const wrong = "wrong-secret-value"

	repo, err := f.cache.Open(context.Background(), "wrong", f.remote.URL(), Credentials{Username: testUser, Password: wrong})
	g.Expect(err).NotTo(HaveOccurred())
	err = repo.Fetch(context.Background())
	g.Expect(err).To(MatchError(ErrAuthenticationFailed))
	g.Expect(err.Error()).NotTo(ContainSubstring(wrong))

	// Userinfo in the URL is used as credentials and never shows up in errors.
	withUserinfo := strings.Replace(f.remote.URL(), "http://", "http://"+testUser+":"+wrong+"@", 1)
	repo, err = f.cache.Open(context.Background(), "userinfo", withUserinfo, Credentials{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.URL()).NotTo(ContainSubstring(wrong))
	err = repo.Fetch(context.Background())
	g.Expect(err).To(MatchError(ErrAuthenticationFailed))
	g.Expect(err.Error()).NotTo(ContainSubstring(wrong))

	err = repo.PushRefs(context.Background(), []RefUpdate{{Name: "refs/heads/x", New: ""}})
	g.Expect(err).To(MatchError(ErrAuthenticationFailed))
	g.Expect(err.Error()).NotTo(ContainSubstring(wrong))
}

func TestRepo_fetch_unknownRepositoryIsRepositoryNotFound(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	repo, err := f.cache.Open(context.Background(), "missing", f.server.RepoURL("missing"), testCreds)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Fetch(context.Background())).To(MatchError(ErrRepositoryNotFound))
}

func TestRepo_fetch_closedPortOrUnknownHostIsUnreachable(t *testing.T) {
	g := NewWithT(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	closed := ln.Addr().String()
	g.Expect(ln.Close()).To(Succeed())

	cache := NewCache(t.TempDir())
	for _, u := range []string{
		"http://" + closed + "/repo.git",
		"http://no-such-host.invalid/repo.git",
	} {
		repo, err := cache.Open(context.Background(), u, u, testCreds)
		g.Expect(err).NotTo(HaveOccurred())
		err = repo.Fetch(context.Background())
		g.Expect(err).To(MatchError(ErrUnreachable), u)
		g.Expect(err.Error()).NotTo(ContainSubstring(testPassword))
	}
}

func TestRepo_fetch_emptyRemoteHasNoRefs(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	g.Expect(f.repo.Refs()).To(BeEmpty())
}

func TestRepo_createCommitAndPushRefs_createsBranch(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())

	when := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	draft, err := f.repo.CreateCommit(NewCommit{
		Parents: []string{main},
		Dir:     "basens",
		Files: map[string][]byte{
			"Kptfile":        []byte("kind: Kptfile\nmetadata: {name: basens}\n"),
			"deploy/cm.yaml": []byte("kind: ConfigMap\n"),
		},
		Message:     "edit basens\n\n" + KptCommit{Package: "basens", WorkspaceName: "ws1"}.Line(),
		AuthorName:  "Bob",
		AuthorEmail: "bob@example.com",
		Time:        when,
	})
	g.Expect(err).NotTo(HaveOccurred())
	ref := DraftRef("basens", "ws1")
	g.Expect(f.repo.PushRefs(context.Background(), []RefUpdate{{Name: ref, New: draft}})).To(Succeed())

	g.Expect(f.remote.RefHash(ref)).To(Equal(draft))
	g.Expect(f.repo.Refs()).To(ContainElement(Ref{Name: ref, Hash: draft}), "local ref updated too")
	g.Expect(f.remote.ReadFile(draft, "basens/deploy/cm.yaml")).To(Equal("kind: ConfigMap\n"))
	g.Expect(f.remote.ReadFile(draft, "README.md")).To(Equal("root\n"), "outside Dir is kept")
	_, err = f.remote.ReadFile(draft, "basens/sub/cm.yaml")
	g.Expect(err).To(HaveOccurred(), "the whole subtree at Dir is replaced")

	info, err := f.repo.CommitInfo(draft)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.Parents).To(Equal([]string{main}))
	g.Expect(info.AuthorName).To(Equal("Bob"))
	g.Expect(info.Time.Equal(when)).To(BeTrue())
	k, ok := ParseKptCommit(info.Message)
	g.Expect(ok).To(BeTrue())
	g.Expect(k.Package).To(Equal("basens"))

	// Re-fetching after our own push is a no-op and keeps the ref.
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	g.Expect(f.repo.Refs()).To(ContainElement(Ref{Name: ref, Hash: draft}))
}

func TestRepo_createCommit_treeEdgeCases(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())

	empty, err := f.repo.CreateCommit(NewCommit{Message: "init"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.repo.ReadTree(empty, "")).To(BeEmpty())

	same, err := f.repo.CreateCommit(NewCommit{Parents: []string{main}, Dir: "docs",
		Files: map[string][]byte{"guide.md": []byte("not a package\n")}})
	g.Expect(err).To(MatchError(ErrNoChanges))
	g.Expect(same).To(Equal(main))

	removed, err := f.repo.CreateCommit(NewCommit{Parents: []string{main}, Dir: "blueprints/team/app"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.repo.ListPackages(removed, "")).To(Equal([]string{"basens", "blueprints/net"}))
	all, err := f.repo.ReadTree(removed, "blueprints/team")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(all).To(HaveKey("notes/README.md"))

	newPkg, err := f.repo.CreateCommit(NewCommit{Parents: []string{main}, Dir: "/new/deep/pkg/",
		Files: map[string][]byte{"Kptfile": []byte("k"), "empty.txt": {}}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.repo.ReadTree(newPkg, "new/deep/pkg")).To(Equal(map[string][]byte{"Kptfile": []byte("k"), "empty.txt": {}}))

	for _, bad := range []NewCommit{
		{Parents: []string{main}, Files: map[string][]byte{"../x": nil}},
		{Parents: []string{main}, Files: map[string][]byte{".git/config": nil}},
		{Parents: []string{main}, Files: map[string][]byte{"a": nil, "a/b": nil}},
		{Parents: []string{strings.Repeat("b", 40)}},
	} {
		_, err := f.repo.CreateCommit(bad)
		g.Expect(err).To(HaveOccurred(), "%v", bad.Files)
	}

	// Trees written by go-git are valid for the real git: push and let the server read them.
	g.Expect(f.repo.PushRefs(context.Background(), []RefUpdate{{Name: "refs/heads/new", New: newPkg}})).To(Succeed())
	g.Expect(f.remote.ReadFile("new", "new/deep/pkg/Kptfile")).To(Equal("k"))
	g.Expect(f.remote.ReadFile("new", "blueprints/team/app/bin/run.sh")).To(Equal("#!/bin/sh\n"))
}

func TestRepo_pushRefs_staleOldIsNonFastForwardAndRemoteUnchanged(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	head, err := f.repo.BranchHead("main")
	g.Expect(err).NotTo(HaveOccurred())

	ours, err := f.repo.CreateCommit(NewCommit{Parents: []string{head}, Dir: "basens", Files: map[string][]byte{"Kptfile": []byte("ours")}})
	g.Expect(err).NotTo(HaveOccurred())
	theirs := f.commit(t, gitserver.Change{Files: map[string]string{"other.txt": "someone else"}})

	err = f.repo.PushRefs(context.Background(), []RefUpdate{{Name: "refs/heads/main", Old: main, New: ours}})
	g.Expect(err).To(MatchError(ErrNonFastForward))
	g.Expect(f.remote.RefHash("refs/heads/main")).To(Equal(theirs))
	g.Expect(f.repo.BranchHead("main")).To(Equal(main), "local ref not moved on failure")

	// Creating a ref that must not exist fails when it does.
	g.Expect(f.remote.Branch("drafts/basens/ws", main)).To(Succeed())
	err = f.repo.PushRefs(context.Background(), []RefUpdate{{Name: DraftRef("basens", "ws"), New: ours}})
	g.Expect(err).To(MatchError(ErrNonFastForward))
	g.Expect(f.remote.RefHash(DraftRef("basens", "ws"))).To(Equal(main))
}

func TestRepo_pushRefs_serverRejectsRefMovedDuringPush(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	ours, err := f.repo.CreateCommit(NewCommit{Parents: []string{main}, Dir: "basens", Files: map[string][]byte{"Kptfile": []byte("ours")}})
	g.Expect(err).NotTo(HaveOccurred())

	// Move the remote after PushRefs has checked the advertised refs: only the server-side
	// compare-and-swap can catch this.
	var theirs string
	beforeReceivePack = func() {
		theirs = f.commit(t, gitserver.Change{Files: map[string]string{"race.txt": "won"}})
	}
	t.Cleanup(func() { beforeReceivePack = nil })

	err = f.repo.PushRefs(context.Background(), []RefUpdate{
		{Name: "refs/heads/main", Old: main, New: ours},
		{Name: TagRef("basens", 1), New: ours},
	})
	g.Expect(err).To(MatchError(ErrNonFastForward))
	g.Expect(f.remote.RefHash("refs/heads/main")).To(Equal(theirs))
	_, err = f.remote.RefHash(TagRef("basens", 1))
	g.Expect(err).To(MatchError(gitserver.ErrRefNotFound), "atomic: the tag was not created either")
}

func TestRepo_pushRefs_updatesCreatesAndDeletesAtomically(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.remote.Branch("proposed/basens/ws", main)).To(Succeed())
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())

	published, err := f.repo.CreateCommit(NewCommit{
		Parents: []string{main, main}, Dir: "basens",
		Files:   map[string][]byte{"Kptfile": []byte("v1")},
		Message: KptCommit{Package: "basens", WorkspaceName: "ws", Revision: 1}.Line(),
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.repo.PushRefs(context.Background(), []RefUpdate{
		{Name: BranchRef("main"), Old: main, New: published},
		{Name: TagRef("basens", 1), New: published},
		{Name: ProposedRef("basens", "ws"), Old: main},
	})).To(Succeed())

	g.Expect(f.remote.Refs()).To(Equal(map[string]string{
		"refs/heads/main":     published,
		"refs/tags/basens/v1": published,
	}))
	g.Expect(f.repo.Refs()).To(Equal([]Ref{
		{Name: "refs/heads/main", Hash: published},
		{Name: "refs/tags/basens/v1", Hash: published},
	}))

	// One stale update fails the whole push.
	next, err := f.repo.CreateCommit(NewCommit{Parents: []string{published}, Dir: "basens", Files: map[string][]byte{"Kptfile": []byte("v2")}})
	g.Expect(err).NotTo(HaveOccurred())
	err = f.repo.PushRefs(context.Background(), []RefUpdate{
		{Name: BranchRef("main"), Old: published, New: next},
		{Name: TagRef("basens", 1), New: next}, // exists already
	})
	g.Expect(err).To(MatchError(ErrNonFastForward))
	g.Expect(f.remote.RefHash("refs/heads/main")).To(Equal(published))
}

func TestRepo_pushRefs_rejectsInvalidUpdates(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	for _, u := range [][]RefUpdate{
		{{Name: "main", New: main}},
		{{Name: "refs/heads/a", New: "xyz"}},
		{{Name: "refs/heads/a", New: strings.Repeat("c", 40)}},
		{{Name: "refs/heads/a", New: main}, {Name: "refs/heads/a", New: main}},
	} {
		err := f.repo.PushRefs(context.Background(), u)
		g.Expect(err).To(HaveOccurred())
		g.Expect(errors.Is(err, ErrNonFastForward)).To(BeFalse())
	}
}

func TestRepo_concurrentUse_isSafe(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())

	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.cache.Open(context.Background(), "default/catalog", f.remote.URL(), testCreds)
			if err != nil {
				errs <- err
				return
			}
			if err := r.Fetch(context.Background()); err != nil {
				errs <- err
			}
			if _, err := r.ListPackages(main, ""); err != nil {
				errs <- err
			}
			c, err := r.CreateCommit(NewCommit{Parents: []string{main}, Dir: fmt.Sprintf("p%d", i), Files: map[string][]byte{"Kptfile": []byte("k")}})
			if err != nil {
				errs <- err
				return
			}
			if err := r.PushRefs(context.Background(), []RefUpdate{{Name: DraftRef(fmt.Sprintf("p%d", i), "ws"), New: c}}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		g.Expect(err).NotTo(HaveOccurred())
	}
	refs, err := f.remote.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refs).To(HaveLen(9))
}

func TestCache_openLocalPathAndRemove(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)

	cache := NewCache(t.TempDir())
	for i, u := range []string{f.remote.Dir, "file://" + f.remote.Dir} {
		key := fmt.Sprintf("local-%d", i)
		repo, err := cache.Open(context.Background(), key, u, Credentials{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(repo.Fetch(context.Background())).To(Succeed(), u)
		g.Expect(repo.BranchHead("main")).To(Equal(main))
		g.Expect(cache.Remove(key)).To(Succeed())
		g.Expect(cache.keyDir(key)).NotTo(BeADirectory())
	}
}

func TestRepo_fetch_writesOnlyRefsThatChanged(t *testing.T) {
	g := NewWithT(t)
	f, _ := fetchedFixture(t)
	refFile := func(name string) string { return filepath.Join(f.cloneDir(), filepath.FromSlash(name)) }
	tag, draft := statHeld(t, refFile("refs/tags/basens/v1")), statHeld(t, refFile("refs/heads/drafts/basens/ws1"))
	main := statHeld(t, refFile("refs/heads/main"))

	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	next := f.commit(t, gitserver.Change{Files: map[string]string{"basens/new.yaml": "kind: ConfigMap\n"}})
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())

	for name, before := range map[string]os.FileInfo{"refs/tags/basens/v1": tag, "refs/heads/drafts/basens/ws1": draft} {
		after, err := os.Stat(refFile(name))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(os.SameFile(before, after)).To(BeTrue(), "%s was rewritten though it did not change", name)
	}
	after, err := os.Stat(refFile("refs/heads/main"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.SameFile(main, after)).To(BeFalse(), "main moved and is written")
	g.Expect(f.repo.BranchHead("main")).To(Equal(next))
	files, err := f.repo.ReadTree(next, "basens")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).To(HaveKey("new.yaml"))
}

// serverObjects counts the loose objects of the remote repository: receive-pack unpacks a
// push of fewer than 100 objects into loose objects.
func serverObjects(t *testing.T, f *fixture) int {
	t.Helper()
	out, err := exec.Command("git", "--git-dir="+f.remote.Dir, "count-objects").Output()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := fmt.Sscanf(string(out), "%d objects", &n); err != nil {
		t.Fatal(err, string(out))
	}
	return n
}

// missingOnServer is what the real git says a push of rev over main had to send: the objects
// reachable from rev and not from main.
func missingOnServer(t *testing.T, f *fixture, rev string) int {
	t.Helper()
	out, err := exec.Command("git", "--git-dir="+f.remote.Dir, "rev-list", "--objects", rev, "--not", "refs/heads/main").Output()
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Split(strings.TrimSpace(string(out)), "\n"))
}

func TestRepo_pushRefs_sendsExactlyWhatTheRemoteLacks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
	}{
		{"walk from the remote's refs", 1000},
		{"exhaustive fallback", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			maxNewCommits = tc.limit
			t.Cleanup(func() { maxNewCommits = 1000 })
			f := newFixture(t)
			main := seedPackages(t, f)
			g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
			before := serverObjects(t, f)

			// Two local commits on main, then a merge of main and them, as an approval makes:
			// a new file in a new directory, a changed file deep down, a file moved unchanged.
			first, err := f.repo.CreateCommit(NewCommit{Parents: []string{main}, Dir: "basens", Message: "first",
				Files: map[string][]byte{"Kptfile": []byte("kind: Kptfile\n"), "ns.yaml": []byte("kind: Namespace\n"),
					"sub/Kptfile": []byte("nested\n"), "sub/cm.yaml": []byte("kind: ConfigMap\n"), "new/dir/x.yaml": []byte("x: 1\n")}})
			g.Expect(err).NotTo(HaveOccurred())
			second, err := f.repo.CreateCommit(NewCommit{Parents: []string{first}, Dir: "blueprints/team/app", Message: "second",
				Files: map[string][]byte{"Kptfile": []byte("kind: Kptfile\n"), "bin/run.sh": []byte("#!/bin/sh\nexit 0\n"),
					"moved/run.sh": []byte("#!/bin/sh\n")}})
			g.Expect(err).NotTo(HaveOccurred())
			merge, err := f.repo.CreateCommit(NewCommit{Parents: []string{main, second}, Dir: "blueprints/net", Message: "merge",
				Files: map[string][]byte{"Kptfile": []byte("kind: Kptfile\nv: 2\n")}})
			g.Expect(err).NotTo(HaveOccurred())

			g.Expect(f.repo.PushRefs(context.Background(), []RefUpdate{{Name: "refs/heads/merged", New: merge}})).To(Succeed(),
				"the server's connectivity check finds every object it needs")
			g.Expect(f.remote.ReadFile("merged", "blueprints/net/Kptfile")).To(Equal("kind: Kptfile\nv: 2\n"))
			g.Expect(f.remote.ReadFile("merged^2", "basens/new/dir/x.yaml")).To(Equal("x: 1\n"))
			g.Expect(f.remote.ReadFile("merged^2", "blueprints/team/app/moved/run.sh")).To(Equal("#!/bin/sh\n"))
			g.Expect(serverObjects(t, f)-before).To(Equal(missingOnServer(t, f, "refs/heads/merged")), "nothing the remote had was sent")
		})
	}
}
