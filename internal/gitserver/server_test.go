package gitserver

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

const (
	testUser     = "alice"
	testPassword = "s3cret-pass"
)

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return s
}

// authURL returns rawURL with testUser:password userinfo.
func authURL(t *testing.T, rawURL, password string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(testUser, password)
	return u.String()
}

// gitCLI runs the system git in dir, isolated from the user's configuration.
func gitCLI(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestServer_clone_withCredentialsGetsSeededContent(t *testing.T) {
	g := NewWithT(t)
	s := startServer(t, Options{Username: testUser, Password: testPassword})
	repo, err := s.CreateRepo("org/sample")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Commit("main", Change{Files: map[string]string{
		"README.md":         "hello\n",
		"pkgs/a/Kptfile":    "kind: Kptfile\n",
		"pkgs/a/empty.yaml": "",
	}, Message: "initial"})
	g.Expect(err).NotTo(HaveOccurred())

	dest := filepath.Join(t.TempDir(), "clone")
	out, err := gitCLI("", "clone", authURL(t, repo.URL(), testPassword), dest)
	g.Expect(err).NotTo(HaveOccurred(), out)

	g.Expect(os.ReadFile(filepath.Join(dest, "README.md"))).To(Equal([]byte("hello\n")))
	g.Expect(os.ReadFile(filepath.Join(dest, "pkgs/a/Kptfile"))).To(Equal([]byte("kind: Kptfile\n")))
	g.Expect(os.ReadFile(filepath.Join(dest, "pkgs/a/empty.yaml"))).To(BeEmpty())
	log, err := gitCLI(dest, "log", "--format=%s %an")
	g.Expect(err).NotTo(HaveOccurred(), log)
	g.Expect(strings.TrimSpace(log)).To(Equal("initial " + AuthorName))
}

func TestServer_clone_wrongOrMissingCredentialsFails(t *testing.T) {
	g := NewWithT(t)
	s := startServer(t, Options{Username: testUser, Password: testPassword})
	repo, err := s.CreateRepo("sample")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Commit("main", Change{Files: map[string]string{"a": "a"}})
	g.Expect(err).NotTo(HaveOccurred())

	out, err := gitCLI("", "clone", authURL(t, repo.URL(), "wrong"), filepath.Join(t.TempDir(), "c1"))
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring("Authentication failed"))

	out, err = gitCLI("", "clone", repo.URL(), filepath.Join(t.TempDir(), "c2"))
	g.Expect(err).To(HaveOccurred(), out)

	resp, err := http.Get(repo.URL() + "/info/refs?service=git-upload-pack")
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
	g.Expect(resp.Header.Get("WWW-Authenticate")).To(HavePrefix("Basic realm="))
}

func TestServer_push_largeChunkedBodyIsAccepted(t *testing.T) {
	g := NewWithT(t)
	s := startServer(t, Options{Username: testUser, Password: testPassword})
	repo, err := s.CreateRepo("sample")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Commit("main", Change{Files: map[string]string{"a": "a"}})
	g.Expect(err).NotTo(HaveOccurred())

	dest := filepath.Join(t.TempDir(), "clone")
	out, err := gitCLI("", "clone", authURL(t, repo.URL(), testPassword), dest)
	g.Expect(err).NotTo(HaveOccurred(), out)
	// Random bytes do not compress, so the pack stays above git's 1 MiB post buffer and is
	// sent chunked.
	big := make([]byte, 3<<20)
	_, _ = rand.Read(big)
	g.Expect(os.WriteFile(filepath.Join(dest, "big.bin"), big, 0o644)).To(Succeed())
	out, err = gitCLI(dest, "add", "big.bin")
	g.Expect(err).NotTo(HaveOccurred(), out)
	out, err = gitCLI(dest, "commit", "-q", "-m", "big")
	g.Expect(err).NotTo(HaveOccurred(), out)
	out, err = gitCLI(dest, "push", "origin", "main")
	g.Expect(err).NotTo(HaveOccurred(), out)

	head, err := gitCLI(dest, "rev-parse", "HEAD")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.RefHash("refs/heads/main")).To(Equal(strings.TrimSpace(head)))
	content, err := repo.ReadFile("main", "big.bin")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bytes.Equal([]byte(content), big)).To(BeTrue())
}

func TestServer_unknownRepository_is404(t *testing.T) {
	g := NewWithT(t)
	s := startServer(t, Options{Username: testUser, Password: testPassword})

	for _, p := range []string{"/missing.git/info/refs?service=git-upload-pack", "/", "/../etc/passwd"} {
		req, err := http.NewRequest(http.MethodGet, s.URL()+p, nil)
		g.Expect(err).NotTo(HaveOccurred())
		req.SetBasicAuth(testUser, testPassword)
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusNotFound), p)
	}

	out, err := gitCLI("", "clone", authURL(t, s.RepoURL("missing"), testPassword), filepath.Join(t.TempDir(), "c"))
	g.Expect(err).To(HaveOccurred())
	g.Expect(out).To(ContainSubstring("not found"))
}

func TestServer_withoutUsername_allowsAnonymousAccess(t *testing.T) {
	g := NewWithT(t)
	s := startServer(t, Options{})
	repo, err := s.CreateRepo("open")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Commit("main", Change{Files: map[string]string{"a": "a"}})
	g.Expect(err).NotTo(HaveOccurred())

	out, err := gitCLI("", "clone", repo.URL(), filepath.Join(t.TempDir(), "c"))
	g.Expect(err).NotTo(HaveOccurred(), out)
}

func TestServer_close_removesTemporaryRoot(t *testing.T) {
	g := NewWithT(t)
	s, err := Start(Options{})
	g.Expect(err).NotTo(HaveOccurred())
	root := s.Root()
	g.Expect(root).To(BeADirectory())
	g.Expect(s.Close()).To(Succeed())
	g.Expect(root).NotTo(BeAnExistingFile())
	g.Expect(s.Close()).To(Succeed())
}

func TestRepo_commit_appliesChangeOnParentTree(t *testing.T) {
	g := NewWithT(t)
	s := startServer(t, Options{})
	repo, err := s.CreateRepo("sample")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Refs()).To(BeEmpty())

	first, err := repo.Commit("main", Change{Files: map[string]string{
		"keep.txt": "keep", "dir/a": "a", "dir/b": "b", "gone.txt": "x",
	}})
	g.Expect(err).NotTo(HaveOccurred())
	second, err := repo.Commit("main", Change{
		Files:   map[string]string{"new.txt": "", "dir/a": "a2"},
		Delete:  []string{"gone.txt", "dir/b", "not-there"},
		Message: "second",
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(second).NotTo(Equal(first))

	g.Expect(repo.ReadFile(second, "keep.txt")).To(Equal("keep"))
	g.Expect(repo.ReadFile("main", "dir/a")).To(Equal("a2"))
	g.Expect(repo.ReadFile("main", "new.txt")).To(Equal(""))
	_, err = repo.ReadFile("main", "gone.txt")
	g.Expect(err).To(HaveOccurred())
	_, err = repo.ReadFile("main", "dir/b")
	g.Expect(err).To(HaveOccurred())
	g.Expect(repo.ReadFile(first, "gone.txt")).To(Equal("x"))

	parents, err := runGit(repo.Dir, nil, nil, "rev-parse", second+"^@")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(parents).To(Equal(first))

	// A file may replace a whole directory.
	_, err = repo.Commit("main", Change{Files: map[string]string{"dir": "now a file"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.ReadFile("main", "dir")).To(Equal("now a file"))
}

func TestRepo_refs_branchTagDeleteAndOrphanMerge(t *testing.T) {
	g := NewWithT(t)
	s := startServer(t, Options{})
	repo, err := s.CreateRepo("sample")
	g.Expect(err).NotTo(HaveOccurred())

	main, err := repo.Commit("main", Change{Files: map[string]string{"a": "a"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Branch("drafts/pkg/ws", "main")).To(Succeed())
	g.Expect(repo.Tag("pkg/v1", main)).To(Succeed())
	orphan, err := repo.Commit("other", Change{Files: map[string]string{"b": "b"}})
	g.Expect(err).NotTo(HaveOccurred())
	merge, err := repo.Commit("main", Change{Parents: []string{"other"}, Message: "merge"})
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(repo.Refs()).To(Equal(map[string]string{
		"refs/heads/main":          merge,
		"refs/heads/drafts/pkg/ws": main,
		"refs/heads/other":         orphan,
		"refs/tags/pkg/v1":         main,
	}))
	parents, err := runGit(repo.Dir, nil, nil, "rev-parse", merge+"^@")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Fields(parents)).To(Equal([]string{main, orphan}))
	_, err = repo.ReadFile(merge, "b")
	g.Expect(err).To(HaveOccurred(), "merge keeps the first parent's tree")

	g.Expect(repo.DeleteRef("refs/heads/other")).To(Succeed())
	_, err = repo.RefHash("refs/heads/other")
	g.Expect(err).To(MatchError(ErrRefNotFound))
	_, err = repo.RefHash("refs/heads/mai")
	g.Expect(err).To(MatchError(ErrRefNotFound), "no prefix match")

	_, err = s.CreateRepo("sample")
	g.Expect(err).To(HaveOccurred())
	_, err = s.CreateRepo("../escape")
	g.Expect(err).To(HaveOccurred())
	opened, err := s.OpenRepo("sample")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(opened.RefHash("refs/heads/main")).To(Equal(merge))
}

func TestServer_generateCatalog_publishedRevisionsDraftsAndPackedRefs(t *testing.T) {
	g := NewWithT(t)
	s := startServer(t, Options{})
	r, err := s.GenerateCatalog("catalog", Catalog{Packages: 3, Tags: 2, Drafts: 2})
	g.Expect(err).NotTo(HaveOccurred())

	refs, err := r.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(refs).To(HaveLen(1 + 3*2 + 2))
	g.Expect(refs).To(HaveKey("refs/tags/pkg-0002/v2"))
	g.Expect(refs).To(HaveKey("refs/heads/drafts/pkg-0001/" + DraftWorkspace))
	g.Expect(refs["refs/heads/main"]).To(Equal(refs["refs/tags/pkg-0002/v2"]), "the last published revision is main's head")
	g.Expect(r.ReadFile("pkg-0000/v1", "pkg-0000/cm.yaml")).To(ContainSubstring(`revision: "1"`))
	g.Expect(r.ReadFile("drafts/pkg-0000/"+DraftWorkspace, "pkg-0000/cm.yaml")).To(ContainSubstring(`revision: "3"`))
	g.Expect(r.ReadFile("main", "pkg-0001/Kptfile")).To(ContainSubstring("name: pkg-0001"))
	msg, err := runGit(r.Dir, nil, nil, "log", "-1", "--format=%B", "pkg-0001/v2")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(msg).To(ContainSubstring(`kpt:{"package":"pkg-0001","workspaceName":"v2","revision":"2"`))

	loose, err := filepath.Glob(filepath.Join(r.Dir, "refs", "tags", "*", "*"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(loose).To(BeEmpty(), "refs are packed")
}
