package gitserver

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Author of every commit made by Repo.Commit. The date is fixed so that seeding the same
// content twice produces the same hashes.
const (
	AuthorName  = "kpo test"
	AuthorEmail = "kpo-test@example.com"
	CommitDate  = "2024-01-01T00:00:00Z"
)

// ErrRefNotFound is returned by Repo.RefHash for a ref that does not exist.
var ErrRefNotFound = errors.New("ref not found")

// Repo is a bare repository served by a Server. Its methods drive the system git directly
// on the bare repository, as a different Git client would, so the code under test sees
// changes only through the server.
type Repo struct {
	// Name is the repository name, without the ".git" suffix.
	Name string
	// Dir is the path of the bare repository on disk.
	Dir    string
	server *Server
}

// Change is the content of one commit made by Repo.Commit.
type Change struct {
	// Files are written (created or replaced) at their slash-separated paths. An empty
	// value is an empty file, not a deletion.
	Files map[string]string
	// Delete lists paths removed from the tree; a directory path removes everything below.
	// Paths that do not exist are ignored.
	Delete []string
	// Message is the commit message; "update" when empty.
	Message string
	// Parents are extra parents after the branch head (merge commits), as revisions.
	Parents []string
}

// CreateRepo creates an empty bare repository name (slashes allowed) whose HEAD points to
// refs/heads/main. It fails if the repository already exists.
func (s *Server) CreateRepo(name string) (*Repo, error) {
	dir, err := s.repoDir(name)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("repository %q already exists", name)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return nil, err
	}
	r := &Repo{Name: name, Dir: dir, server: s}
	if _, err := runGit("", nil, nil, "init", "--bare", "--quiet", "--initial-branch=main", dir); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenRepo returns the existing repository name.
func (s *Server) OpenRepo(name string) (*Repo, error) {
	dir, err := s.repoDir(name)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		return nil, fmt.Errorf("repository %q: %w", name, err)
	}
	return &Repo{Name: name, Dir: dir, server: s}, nil
}

func (s *Server) repoDir(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.HasSuffix(name, "/") {
		return "", fmt.Errorf("invalid repository name %q", name)
	}
	return filepath.Join(s.root, filepath.FromSlash(name)+".git"), nil
}

// URL returns the clone URL of the repository.
func (r *Repo) URL() string {
	return r.server.RepoURL(r.Name)
}

// Commit creates a commit on branch (a short name, e.g. "main") whose tree is the branch
// head's tree with change applied, and moves the branch to it. A missing branch is created
// with a root commit. It returns the new commit hash.
func (r *Repo) Commit(branch string, change Change) (string, error) {
	ref := "refs/heads/" + branch
	parent, err := r.RefHash(ref)
	if err != nil && !errors.Is(err, ErrRefNotFound) {
		return "", err
	}

	work, err := os.MkdirTemp("", "kpo-gitserver-commit-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(work) }()
	worktree := filepath.Join(work, "tree")
	if err := os.Mkdir(worktree, 0o750); err != nil {
		return "", err
	}
	env := []string{
		"GIT_INDEX_FILE=" + filepath.Join(work, "index"),
		"GIT_WORK_TREE=" + worktree,
		"GIT_LITERAL_PATHSPECS=1",
	}
	git := func(stdin []byte, args ...string) (string, error) {
		return runGit(r.Dir, env, stdin, args...)
	}
	removeFromIndex := func(paths []string) error {
		if len(paths) == 0 {
			return nil
		}
		args := append([]string{"rm", "--cached", "-r", "-q", "--ignore-unmatch", "--"}, paths...)
		_, err := git(nil, args...)
		return err
	}

	if parent != "" {
		_, err = git(nil, "read-tree", parent)
	} else {
		_, err = git(nil, "read-tree", "--empty")
	}
	if err != nil {
		return "", err
	}
	if err := removeFromIndex(change.Delete); err != nil {
		return "", err
	}
	paths := make([]string, 0, len(change.Files))
	for p := range change.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var info bytes.Buffer
	for i, p := range paths {
		blob, err := git([]byte(change.Files[p]), "hash-object", "-w", "--stdin")
		if err != nil {
			return "", err
		}
		paths[i] = strings.TrimPrefix(p, "/")
		fmt.Fprintf(&info, "100644 %s\t%s\n", blob, paths[i])
	}
	if info.Len() > 0 {
		// A file replacing a directory needs the old entries gone.
		if err := removeFromIndex(paths); err != nil {
			return "", err
		}
		if _, err := git(info.Bytes(), "update-index", "--add", "--index-info"); err != nil {
			return "", err
		}
	}
	tree, err := git(nil, "write-tree")
	if err != nil {
		return "", err
	}

	args := []string{"commit-tree", tree}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	for _, p := range change.Parents {
		h, err := r.resolve(p)
		if err != nil {
			return "", err
		}
		args = append(args, "-p", h)
	}
	msg := change.Message
	if msg == "" {
		msg = "update"
	}
	args = append(args, "-F", "-")
	commit, err := runGit(r.Dir, authorEnv(), []byte(msg), args...)
	if err != nil {
		return "", err
	}
	old := parent
	if old == "" {
		old = strings.Repeat("0", len(commit))
	}
	if _, err := runGit(r.Dir, nil, nil, "update-ref", ref, commit, old); err != nil {
		return "", err
	}
	return commit, nil
}

// Branch creates or moves refs/heads/name to the commit fromRev resolves to.
func (r *Repo) Branch(name, fromRev string) error {
	h, err := r.resolve(fromRev)
	if err != nil {
		return err
	}
	_, err = runGit(r.Dir, nil, nil, "update-ref", "refs/heads/"+name, h)
	return err
}

// Tag creates or moves the lightweight tag refs/tags/name to the commit rev resolves to.
func (r *Repo) Tag(name, rev string) error {
	h, err := r.resolve(rev)
	if err != nil {
		return err
	}
	_, err = runGit(r.Dir, nil, nil, "update-ref", "refs/tags/"+name, h)
	return err
}

// DeleteRef deletes the ref fullRefName (e.g. refs/heads/x); deleting a missing ref is
// not an error.
func (r *Repo) DeleteRef(fullRefName string) error {
	_, err := runGit(r.Dir, nil, nil, "update-ref", "-d", fullRefName)
	return err
}

// RefHash returns the hash fullRefName points to, or an error wrapping ErrRefNotFound.
func (r *Repo) RefHash(fullRefName string) (string, error) {
	out, err := runGit(r.Dir, nil, nil, "for-each-ref", "--format=%(objectname) %(refname)", fullRefName)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if hash, name, ok := strings.Cut(line, " "); ok && name == fullRefName {
			return hash, nil
		}
	}
	return "", fmt.Errorf("%s: %w", fullRefName, ErrRefNotFound)
}

// ReadFile returns the content of path at rev.
func (r *Repo) ReadFile(rev, path string) (string, error) {
	h, err := r.resolve(rev)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("git", "cat-file", "blob", h+":"+strings.TrimPrefix(path, "/")) //nolint:gosec // G204: a fixed git command; rev and path are one argument, never a shell
	cmd.Dir = r.Dir
	cmd.Env = append(gitEnv(), "GIT_DIR="+r.Dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("reading %s at %s: %w: %s", path, rev, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Refs returns every ref of the repository (full name → hash), HEAD excluded.
func (r *Repo) Refs() (map[string]string, error) {
	out, err := runGit(r.Dir, nil, nil, "for-each-ref", "--format=%(objectname) %(refname)")
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if hash, name, ok := strings.Cut(line, " "); ok {
			refs[name] = hash
		}
	}
	return refs, nil
}

// resolve returns the commit hash rev names.
func (r *Repo) resolve(rev string) (string, error) {
	return runGit(r.Dir, nil, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
}

func authorEnv() []string {
	return []string{
		"GIT_AUTHOR_NAME=" + AuthorName, "GIT_AUTHOR_EMAIL=" + AuthorEmail, "GIT_AUTHOR_DATE=" + CommitDate,
		"GIT_COMMITTER_NAME=" + AuthorName, "GIT_COMMITTER_EMAIL=" + AuthorEmail, "GIT_COMMITTER_DATE=" + CommitDate,
	}
}

// runGit runs git with GIT_DIR=gitDir (when set) and returns its trimmed stdout.
func runGit(gitDir string, env []string, stdin []byte, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Env = append(gitEnv(), env...)
	if gitDir != "" {
		cmd.Env = append(cmd.Env, "GIT_DIR="+gitDir)
		cmd.Dir = gitDir
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
