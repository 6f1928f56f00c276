package git

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage"
	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/gitserver"
)

// fetchedFixture is a fixture whose clone has fetched a branch, a draft branch and a tag.
func fetchedFixture(t *testing.T) (*fixture, []Ref) {
	t.Helper()
	g := NewWithT(t)
	f := newFixture(t)
	main := seedPackages(t, f)
	g.Expect(f.remote.Tag("basens/v1", main)).To(Succeed())
	g.Expect(f.remote.Branch("drafts/basens/ws1", main)).To(Succeed())
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	want := []Ref{
		{Name: "refs/heads/drafts/basens/ws1", Hash: main},
		{Name: "refs/heads/main", Hash: main},
		{Name: "refs/tags/basens/v1", Hash: main},
	}
	g.Expect(f.repo.Refs()).To(Equal(want))
	return f, want
}

func (f *fixture) cloneDir() string { return f.cache.keyDir("default/catalog") }

// packFile returns the path of the only pack of the clone with extension ext.
func (f *fixture) packFile(t *testing.T, ext string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(f.cloneDir(), "objects", "pack", "pack-*"+ext))
	if err != nil || len(matches) != 1 {
		t.Fatalf("want one %s file, got %v (%v)", ext, matches, err)
	}
	return matches[0]
}

func truncate(t *testing.T, path string, keep func(size int64) int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, keep(st.Size())); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCache_damagedCloneOnDisk_isRebuiltOnOpenAndFetches(t *testing.T) {
	empty := func(int64) int64 { return 0 }
	half := func(n int64) int64 { return n / 2 }
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, f *fixture)
	}{
		{"empty ref file and garbage packed-refs", func(t *testing.T, f *fixture) {
			truncate(t, filepath.Join(f.cloneDir(), "refs", "heads", "main"), empty)
			write(t, filepath.Join(f.cloneDir(), "packed-refs"), "\x00\x01garbage that is not a ref\n")
		}},
		{"empty ref file", func(t *testing.T, f *fixture) {
			truncate(t, filepath.Join(f.cloneDir(), "refs", "tags", "basens", "v1"), empty)
		}},
		{"half-written ref file", func(t *testing.T, f *fixture) {
			truncate(t, filepath.Join(f.cloneDir(), "refs", "heads", "main"), func(int64) int64 { return 17 })
		}},
		{"garbage packed-refs", func(t *testing.T, f *fixture) {
			write(t, filepath.Join(f.cloneDir(), "packed-refs"), "not a packed ref\n")
		}},
		{"empty HEAD", func(t *testing.T, f *fixture) {
			truncate(t, filepath.Join(f.cloneDir(), "HEAD"), empty)
		}},
		{"empty config", func(t *testing.T, f *fixture) {
			truncate(t, filepath.Join(f.cloneDir(), "config"), empty)
		}},
		{"truncated config", func(t *testing.T, f *fixture) {
			write(t, filepath.Join(f.cloneDir(), "config"), "[remote \"origin")
		}},
		{"truncated pack index", func(t *testing.T, f *fixture) {
			truncate(t, f.packFile(t, ".idx"), half)
		}},
		{"truncated pack", func(t *testing.T, f *fixture) {
			truncate(t, f.packFile(t, ".pack"), half)
		}},
		{"pack without index", func(t *testing.T, f *fixture) {
			if err := os.Remove(f.packFile(t, ".idx")); err != nil {
				t.Fatal(err)
			}
		}},
		{"ref to a missing object", func(t *testing.T, f *fixture) {
			write(t, filepath.Join(f.cloneDir(), "refs", "heads", "main"), strings.Repeat("e", 40)+"\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f, want := fetchedFixture(t)
			tc.damage(t, f)

			// A restart: a new cache on the same directory.
			cache := NewCache(filepath.Dir(f.cloneDir()))
			repo, err := cache.Open(context.Background(), "default/catalog", f.remote.URL(), testCreds)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(repo.Fetch(context.Background())).To(Succeed())
			g.Expect(repo.Refs()).To(Equal(want))
			files, err := repo.ReadTree(want[1].Hash, "basens")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(files).To(HaveKey("ns.yaml"))
		})
	}
}

func TestRepo_refFilesDamagedWhileRunning_servedFromIndexAndRebuiltOnNextOpen(t *testing.T) {
	g := NewWithT(t)
	f, want := fetchedFixture(t)
	marker := filepath.Join(f.cloneDir(), "marker")
	write(t, marker, "still the same clone")
	truncate(t, filepath.Join(f.cloneDir(), "refs", "heads", "main"), func(int64) int64 { return 0 })
	write(t, filepath.Join(f.cloneDir(), "packed-refs"), "garbage\n")

	// The running process reads refs from its index, loaded when the clone was opened, and
	// keeps working: a fetch rewrites the refs that changed, whole.
	g.Expect(f.repo.Refs()).To(Equal(want))
	next := f.commit(t, gitserver.Change{Files: map[string]string{"basens/new.yaml": "kind: ConfigMap\n"}})
	want[1].Hash = next
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	g.Expect(f.repo.Refs()).To(Equal(want))
	g.Expect(os.ReadFile(filepath.Join(f.cloneDir(), "refs", "heads", "main"))).To(Equal([]byte(next + "\n")))

	// The next process (a new cache on the same directory) checks the clone when it opens it,
	// finds packed-refs damaged and rebuilds it from the remote.
	again, err := NewCache(filepath.Dir(f.cloneDir())).Open(context.Background(), "default/catalog", f.remote.URL(), testCreds)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(marker).NotTo(BeAnExistingFile(), "rebuilt")
	g.Expect(again.Fetch(context.Background())).To(Succeed())
	g.Expect(again.Refs()).To(Equal(want))

	// The rebuilt clone works for writes too: its refs are written atomically.
	c, err := again.CreateCommit(NewCommit{Parents: []string{next}, Dir: "basens", Files: map[string][]byte{"Kptfile": []byte("k")}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.PushRefs(context.Background(), []RefUpdate{{Name: DraftRef("basens", "ws2"), New: c}})).To(Succeed())
	g.Expect(again.Refs()).To(ContainElement(Ref{Name: DraftRef("basens", "ws2"), Hash: c}))
	leftovers, _ := filepath.Glob(filepath.Join(f.cloneDir(), tmpPrefix+"*"))
	g.Expect(leftovers).To(BeEmpty())
}

func TestRepo_fetch_authOrNetworkError_neverRebuilds(t *testing.T) {
	g := NewWithT(t)
	f, want := fetchedFixture(t)
	marker := filepath.Join(f.cloneDir(), "marker")
	write(t, marker, "still the same clone")

	wrong, err := f.cache.Open(context.Background(), "default/catalog", f.remote.URL(), Credentials{Username: testUser, Password: "wrong"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wrong.Fetch(context.Background())).To(MatchError(ErrAuthenticationFailed))
	missing, err := f.cache.Open(context.Background(), "default/catalog", f.server.RepoURL("missing"), testCreds)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(missing.Fetch(context.Background())).To(MatchError(ErrRepositoryNotFound))
	g.Expect(marker).To(BeAnExistingFile())
	g.Expect(missing.Refs()).To(Equal(want))

	// Not even a clone suspected of damage is rebuilt on an authentication error: the error
	// must say what is wrong, and the next good fetch checks and repairs the clone.
	truncate(t, f.packFile(t, ".pack"), func(size int64) int64 { return size / 2 })
	f.repo.e.suspect.Store(true)
	g.Expect(wrong.Fetch(context.Background())).To(MatchError(ErrAuthenticationFailed))
	g.Expect(marker).To(BeAnExistingFile())

	right, err := f.cache.Open(context.Background(), "default/catalog", f.remote.URL(), testCreds)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(right.Fetch(context.Background())).To(Succeed())
	g.Expect(right.Refs()).To(Equal(want))
	g.Expect(marker).NotTo(BeAnExistingFile(), "rebuilt")
	g.Expect(right.ReadTree(want[1].Hash, "basens")).To(HaveKey("ns.yaml"))
}

func TestRepo_fetch_healthyCloneWithRemoteError_keepsClone(t *testing.T) {
	g := NewWithT(t)
	f, want := fetchedFixture(t)
	marker := filepath.Join(f.cloneDir(), "marker")
	write(t, marker, "still the same clone")
	g.Expect(f.server.Close()).To(Succeed())

	err := f.repo.Fetch(context.Background())
	g.Expect(err).To(HaveOccurred())
	g.Expect(marker).To(BeAnExistingFile())
	g.Expect(f.repo.Refs()).To(Equal(want))
}

func TestCache_open_removesLeftoversOfInterruptedWrites(t *testing.T) {
	g := NewWithT(t)
	f, want := fetchedFixture(t)
	tmp := filepath.Join(f.cloneDir(), tmpPrefix+"123")
	write(t, tmp, "0123")
	orphanIdx := filepath.Join(f.cloneDir(), "objects", "pack", "pack-"+strings.Repeat("1", 40)+".idx")
	write(t, orphanIdx, "half an index")
	tmpPack := filepath.Join(f.cloneDir(), "objects", "pack", "tmp_pack_42")
	write(t, tmpPack, "PACK")
	marker := filepath.Join(f.cloneDir(), "marker")
	write(t, marker, "still the same clone")

	repo, err := NewCache(filepath.Dir(f.cloneDir())).Open(context.Background(), "default/catalog", f.remote.URL(), testCreds)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Refs()).To(Equal(want))
	g.Expect(marker).To(BeAnExistingFile(), "leftovers are not damage")
	for _, p := range []string{tmp, orphanIdx, tmpPack} {
		g.Expect(p).NotTo(BeAnExistingFile())
	}
}

func TestRepo_readError_onDamagedObject_makesNextFetchRebuild(t *testing.T) {
	g := NewWithT(t)
	f, want := fetchedFixture(t)
	content := []byte("a blob only this commit has\n")
	commit, err := f.repo.CreateCommit(NewCommit{Parents: []string{want[1].Hash}, Dir: "basens",
		Files: map[string][]byte{"Kptfile": content}})
	g.Expect(err).NotTo(HaveOccurred())
	// A loose object cut short, as a power loss can leave one.
	h := plumbing.ComputeHash(plumbing.BlobObject, content).String()
	blob := filepath.Join(f.cloneDir(), "objects", h[:2], h[2:])
	g.Expect(os.Chmod(blob, 0o644)).To(Succeed())
	truncate(t, blob, func(n int64) int64 { return n - 6 })

	// A restart: the light check on open looks at refs and their objects only.
	repo, err := NewCache(filepath.Dir(f.cloneDir())).Open(context.Background(), "default/catalog", f.remote.URL(), testCreds)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.ReadTree(commit, "basens")
	g.Expect(err).To(HaveOccurred())
	g.Expect(repo.e.suspect.Load()).To(BeTrue())
	_, err = repo.ReadTree(commit, "basens")
	g.Expect(err).To(MatchError(ContainSubstring("the next fetch checks and rebuilds it")), "no truncated content from go-git's cache")

	g.Expect(repo.Fetch(context.Background())).To(Succeed())
	g.Expect(repo.e.suspect.Load()).To(BeFalse())
	g.Expect(repo.Refs()).To(Equal(want))
	_, err = repo.CommitInfo(commit)
	g.Expect(err).To(MatchError(ErrNotFound), "the clone was rebuilt from the remote")

	// An unknown commit is not damage.
	_, err = repo.ReadTree(strings.Repeat("d", 40), "basens")
	g.Expect(err).To(MatchError(ErrNotFound))
	g.Expect(repo.e.suspect.Load()).To(BeFalse())
}

// statHeld returns the file info of path and keeps the file open until the test ends, so
// its inode cannot be reused by a file created later: os.SameFile then tells whether path
// still names the same file.
func statHeld(t *testing.T, path string) os.FileInfo {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = file.Close() })
	st, err := file.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestAtomicStorage_replacesRefAndConfigFilesWhole(t *testing.T) {
	g := NewWithT(t)
	f, want := fetchedFixture(t)
	st, ok := f.repo.e.repo.Storer.(*atomicStorage)
	g.Expect(ok).To(BeTrue(), "the clone writes through atomicStorage")

	// A ref is replaced by renaming a new file over it, never truncated in place: the
	// file before and after are different files.
	refFile := filepath.Join(f.cloneDir(), "refs", "heads", "main")
	before := statHeld(t, refFile)
	other := f.commit(t, gitserver.Change{Files: map[string]string{"x": "x"}})
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())
	after, err := os.Stat(refFile)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.SameFile(before, after)).To(BeFalse())
	g.Expect(os.ReadFile(refFile)).To(Equal([]byte(other + "\n")))

	// Compare-and-swap still refuses a stale old value and leaves the ref alone.
	name := plumbing.ReferenceName("refs/heads/main")
	err = st.CheckAndSetReference(plumbing.NewHashReference(name, plumbing.NewHash(want[1].Hash)),
		plumbing.NewHashReference(name, plumbing.NewHash(want[1].Hash)))
	g.Expect(err).To(MatchError(storage.ErrReferenceHasChanged))
	g.Expect(os.ReadFile(refFile)).To(Equal([]byte(other + "\n")))
	g.Expect(st.CheckAndSetReference(plumbing.NewHashReference(name, plumbing.NewHash(want[1].Hash)),
		plumbing.NewHashReference(name, plumbing.NewHash(other)))).To(Succeed())
	g.Expect(os.ReadFile(refFile)).To(Equal([]byte(want[1].Hash + "\n")))

	// The config likewise.
	configFile := filepath.Join(f.cloneDir(), "config")
	before = statHeld(t, configFile)
	_, err = f.cache.Open(context.Background(), "default/catalog", f.server.RepoURL("elsewhere"), testCreds)
	g.Expect(err).NotTo(HaveOccurred())
	after, err = os.Stat(configFile)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.SameFile(before, after)).To(BeFalse())
	cfg, err := st.Config()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cfg.Remotes[remoteName].URLs).To(Equal([]string{f.server.RepoURL("elsewhere")}))

	// The real git reads what was written.
	out, err := exec.Command("git", "--git-dir="+f.cloneDir(), "for-each-ref", "--format=%(refname) %(objectname)").Output()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Fields(string(out))).To(ContainElements("refs/heads/main", want[1].Hash, "refs/tags/basens/v1"))
	leftovers, _ := filepath.Glob(filepath.Join(f.cloneDir(), tmpPrefix+"*"))
	g.Expect(leftovers).To(BeEmpty())
}
