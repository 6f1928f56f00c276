package git

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// KptfileName marks a directory as a kpt package.
const KptfileName = "Kptfile"

// Default author of CreateCommit when NewCommit leaves it empty.
const (
	DefaultAuthorName  = "kpo"
	DefaultAuthorEmail = "kpo@kpo.dev"
)

// Commit describes one commit.
type Commit struct {
	Hash, Message, AuthorName, AuthorEmail string
	Time                                   time.Time // author time
	Parents                                []string
}

// CommitInfo describes the commit rev names: a commit hash, an annotated tag hash or a full
// ref name (tags are peeled). A missing commit gives an error wrapping ErrNotFound.
func (r *Repo) CommitInfo(rev string) (Commit, error) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	c, err := r.e.commit(rev)
	if err != nil {
		return Commit{}, err
	}
	info := Commit{
		Hash:        c.Hash.String(),
		Message:     c.Message,
		AuthorName:  c.Author.Name,
		AuthorEmail: c.Author.Email,
		Time:        c.Author.When,
	}
	for _, p := range c.ParentHashes {
		info.Parents = append(info.Parents, p.String())
	}
	return info, nil
}

func (e *entry) commit(rev string) (*object.Commit, error) {
	h, err := e.resolveCommit(rev)
	if err != nil {
		return nil, err
	}
	c, err := e.repo.CommitObject(h)
	if err != nil {
		if !errors.Is(err, plumbing.ErrObjectNotFound) {
			// The object exists but does not read: damage, unlike an unknown hash.
			_ = e.noteDamage(err)
		}
		return nil, fmt.Errorf("commit %s: %w", h, ErrNotFound)
	}
	return c, nil
}

// subtree returns the tree at dir ("" or "/" = root) of commit rev, or nil when dir does
// not exist or is not a directory.
func (e *entry) subtree(rev, dir string) (*object.Tree, error) {
	c, err := e.commit(rev)
	if err != nil {
		return nil, err
	}
	root, err := c.Tree()
	if err != nil {
		return nil, e.noteDamage(err)
	}
	dir = cleanDir(dir)
	if dir == "" {
		return root, nil
	}
	t, err := root.Tree(dir)
	if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, nil
	}
	return t, e.noteDamage(err)
}

// cleanDir turns "", "/", "/a/b/", "a/b" into "" or "a/b".
func cleanDir(dir string) string {
	dir = strings.Trim(path.Clean("/"+dir), "/")
	return dir
}

// ListPackages returns the kpt packages below directory ("" or "/" = repository root) at
// commit: the directories holding a file named Kptfile, as slash-separated paths relative to
// directory, sorted. A package's nested subpackages belong to it and are not listed. A
// Kptfile directly in directory is not a package of its own (its name would be "") and is
// ignored, but the directories below are still searched. A missing directory gives an empty
// list.
func (r *Repo) ListPackages(commit, directory string) ([]string, error) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	t, err := r.e.subtree(commit, directory)
	if err != nil || t == nil {
		return []string{}, err
	}
	pkgs := []string{}
	var walk func(t *object.Tree, prefix string) error
	walk = func(t *object.Tree, prefix string) error {
		for _, entry := range t.Entries {
			if entry.Mode != filemode.Dir {
				continue
			}
			sub, err := r.e.repo.TreeObject(entry.Hash)
			if err != nil {
				return r.e.noteDamage(err)
			}
			p := path.Join(prefix, entry.Name)
			if hasFile(sub, KptfileName) {
				pkgs = append(pkgs, p)
				continue
			}
			if err := walk(sub, p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(t, ""); err != nil {
		return nil, err
	}
	sort.Strings(pkgs)
	return pkgs, nil
}

func hasFile(t *object.Tree, name string) bool {
	for _, e := range t.Entries {
		if e.Name == name && e.Mode.IsFile() {
			return true
		}
	}
	return false
}

// ReadTree returns every file below dir at commit, keyed by slash-separated path relative to
// dir, with exact content. A missing dir gives an error wrapping ErrNotFound.
//
// kpo stores a package as plain files, so a package it cannot store that way is refused
// rather than copied incompletely: a symlink gives an error wrapping ErrSymlink and a
// submodule one wrapping ErrSubmodule, each naming the path (and the link target or the
// submodule commit). Links are never followed: their target may lie outside the package.
func (r *Repo) ReadTree(commit, dir string) (map[string][]byte, error) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	if r.e.suspect.Load() {
		// go-git keeps an object that failed to read in its cache, so reading it again
		// could give truncated content without an error.
		return nil, fmt.Errorf("%w: an earlier read failed; the next fetch checks and rebuilds it", errDamaged)
	}
	t, err := r.e.subtree(commit, dir)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("directory %q at %s: %w", cleanDir(dir), commit, ErrNotFound)
	}
	files := map[string][]byte{}
	var unstorable []error
	if err := r.e.readFiles(t, "", files, &unstorable); err != nil {
		return nil, r.e.noteDamage(err)
	}
	if len(unstorable) > 0 {
		return nil, errors.Join(unstorable...)
	}
	return files, nil
}

// readFiles adds every file of t to files, keyed by path below prefix, and an error to
// unstorable for every entry kpo cannot store, so one error lists them all. It walks the
// tree itself rather than with object.Tree.Files, which skips submodules without a word.
func (e *entry) readFiles(t *object.Tree, prefix string, files map[string][]byte, unstorable *[]error) error {
	for _, entry := range t.Entries {
		p := path.Join(prefix, entry.Name)
		switch entry.Mode {
		case filemode.Dir:
			sub, err := e.repo.TreeObject(entry.Hash)
			if err != nil {
				return fmt.Errorf("reading directory %q: %w", p, err)
			}
			if err := e.readFiles(sub, p, files, unstorable); err != nil {
				return err
			}
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			b, err := e.blob(entry.Hash)
			if err != nil {
				return fmt.Errorf("reading file %q: %w", p, err)
			}
			files[p] = b
		case filemode.Symlink:
			target, err := e.blob(entry.Hash)
			if err != nil {
				return fmt.Errorf("reading symlink %q: %w", p, err)
			}
			*unstorable = append(*unstorable, &unstorableError{kind: ErrSymlink,
				msg: fmt.Sprintf("package file %q is a symlink to %q: kpo does not store or follow symlinks; replace it with a copy of the file",
					p, shorten(string(target)))})
		case filemode.Submodule:
			*unstorable = append(*unstorable, &unstorableError{kind: ErrSubmodule,
				msg: fmt.Sprintf("package file %q is a Git submodule (commit %s): kpo stores packages as plain files and cannot store a submodule; replace it with a copy of its files",
					p, entry.Hash)})
		default:
			*unstorable = append(*unstorable, fmt.Errorf("package file %q has file mode %s, which kpo cannot store", p, entry.Mode))
		}
	}
	return nil
}

// blob returns the content of the blob h.
func (e *entry) blob(h plumbing.Hash) ([]byte, error) {
	b, err := e.repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rd.Close() }()
	return io.ReadAll(rd)
}

// unstorableError is the error for a tree entry kpo cannot store as a file. Its message
// reads on its own; it wraps kind (ErrSymlink or ErrSubmodule) for errors.Is.
type unstorableError struct {
	kind error
	msg  string
}

func (e *unstorableError) Error() string { return e.msg }

func (e *unstorableError) Unwrap() error { return e.kind }

// maxTargetInError bounds the link target quoted in an error: a target can be as long as
// a path, and the error ends up in a status condition.
const maxTargetInError = 200

// shorten cuts a link target for an error message.
func shorten(target string) string {
	if len(target) <= maxTargetInError {
		return target
	}
	return strings.ToValidUTF8(target[:maxTargetInError], "") + "…"
}

// NewCommit is a commit to create with CreateCommit.
type NewCommit struct {
	// Parents are commit hashes; the tree starts from the first parent's tree.
	Parents []string
	// Dir is the directory, from the repository root, whose whole subtree Files replace;
	// everything outside Dir is kept from the first parent. "" or "/" is the root.
	Dir string
	// Files are the new content of Dir, keyed by slash-separated path relative to Dir. No
	// files removes Dir.
	Files map[string][]byte
	// Message is the commit message.
	Message string
	// AuthorName and AuthorEmail default to DefaultAuthorName and DefaultAuthorEmail; they
	// are also the committer unless CommitterName is set.
	AuthorName, AuthorEmail string
	// AllowEmpty makes a commit even when the tree equals the single parent's: a new draft
	// that starts as a copy of what the branch holds still needs a commit of its own, which
	// records its package, workspace and creator.
	AllowEmpty bool
	// CommitterName and CommitterEmail, when CommitterName is set, record who wrote the commit
	// on the author's behalf (the manager committing a user's edit).
	CommitterName, CommitterEmail string
	// Time is the author and committer time; now when zero.
	Time time.Time
}

// CreateCommit writes a commit to the local object store (no ref moves, nothing is pushed)
// and returns its hash. With no parents and no files it is a root commit with the empty tree.
// With exactly one parent and a tree equal to the parent's, it returns the parent's hash and
// an error wrapping ErrNoChanges.
func (r *Repo) CreateCommit(nc NewCommit) (string, error) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()

	var parents []plumbing.Hash
	var base *object.Tree
	for i, p := range nc.Parents {
		c, err := r.e.commit(p)
		if err != nil {
			return "", fmt.Errorf("parent %s: %w", p, err)
		}
		parents = append(parents, c.Hash)
		if i == 0 {
			if base, err = c.Tree(); err != nil {
				return "", err
			}
		}
	}

	w := treeWriter{e: r.e}
	content, err := w.writeFiles(nc.Files)
	if err != nil {
		return "", err
	}
	var dir []string
	if d := cleanDir(nc.Dir); d != "" {
		dir = strings.Split(d, "/")
	}
	if err := checkPath(dir); err != nil {
		return "", fmt.Errorf("dir %q: %w", nc.Dir, err)
	}
	tree, err := w.replace(base, dir, content)
	if err != nil {
		return "", err
	}
	if len(parents) == 1 && base != nil && base.Hash == tree && !nc.AllowEmpty {
		return parents[0].String(), fmt.Errorf("commit on %s: %w", parents[0], ErrNoChanges)
	}

	when := nc.Time
	if when.IsZero() {
		when = time.Now()
	}
	sig := object.Signature{Name: nc.AuthorName, Email: nc.AuthorEmail, When: when}
	if sig.Name == "" {
		sig.Name = DefaultAuthorName
	}
	if sig.Email == "" {
		sig.Email = DefaultAuthorEmail
	}
	committer := sig
	if nc.CommitterName != "" {
		committer = object.Signature{Name: nc.CommitterName, Email: nc.CommitterEmail, When: when}
	}
	c := &object.Commit{
		Author:       sig,
		Committer:    committer,
		Message:      nc.Message,
		TreeHash:     tree,
		ParentHashes: parents,
	}
	obj := r.e.repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return "", err
	}
	h, err := r.e.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// checkPath refuses path elements that Git or a checkout would mishandle.
func checkPath(elems []string) error {
	for _, el := range elems {
		if el == "" || el == "." || el == ".." || strings.EqualFold(el, ".git") || strings.ContainsRune(el, 0) {
			return fmt.Errorf("invalid path element %q", el)
		}
	}
	return nil
}

type treeWriter struct{ e *entry }

// node is a directory being built: files hold blob hashes, dirs nested nodes.
type node struct {
	files map[string]plumbing.Hash
	dirs  map[string]*node
}

// writeFiles stores the blobs and trees for files and returns the root tree hash, or the
// zero hash when there are no files.
func (w treeWriter) writeFiles(files map[string][]byte) (plumbing.Hash, error) {
	root := &node{files: map[string]plumbing.Hash{}, dirs: map[string]*node{}}
	for p, content := range files {
		elems := strings.Split(strings.TrimPrefix(p, "/"), "/")
		if err := checkPath(elems); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("file %q: %w", p, err)
		}
		blob, err := w.writeObject(plumbing.BlobObject, content)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		n := root
		for _, el := range elems[:len(elems)-1] {
			if _, clash := n.files[el]; clash {
				return plumbing.ZeroHash, fmt.Errorf("file %q: %q is both a file and a directory", p, el)
			}
			child, ok := n.dirs[el]
			if !ok {
				child = &node{files: map[string]plumbing.Hash{}, dirs: map[string]*node{}}
				n.dirs[el] = child
			}
			n = child
		}
		name := elems[len(elems)-1]
		if _, clash := n.dirs[name]; clash {
			return plumbing.ZeroHash, fmt.Errorf("file %q is both a file and a directory", p)
		}
		n.files[name] = blob
	}
	if len(files) == 0 {
		return plumbing.ZeroHash, nil
	}
	return w.writeNode(root)
}

func (w treeWriter) writeNode(n *node) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	for name, h := range n.files {
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h})
	}
	for name, child := range n.dirs {
		h, err := w.writeNode(child)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
	}
	return w.writeTree(entries)
}

// replace returns the hash of base with the entry at path set to tree (removed when tree
// is the zero hash). A nil base is the empty tree.
func (w treeWriter) replace(base *object.Tree, elems []string, tree plumbing.Hash) (plumbing.Hash, error) {
	if len(elems) == 0 {
		if tree.IsZero() {
			return w.writeTree(nil)
		}
		return tree, nil
	}
	var entries []object.TreeEntry
	var child *object.Tree
	if base != nil {
		for _, e := range base.Entries {
			// A file in the way of a removal is not in the way: keep it.
			if e.Name != elems[0] || (e.Mode != filemode.Dir && tree.IsZero()) {
				entries = append(entries, e)
				continue
			}
			if e.Mode == filemode.Dir {
				t, err := w.e.repo.TreeObject(e.Hash)
				if err != nil {
					return plumbing.ZeroHash, err
				}
				child = t
			}
		}
	}
	if len(elems) > 1 || !tree.IsZero() {
		sub, err := w.replace(child, elems[1:], tree)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if sub != emptyTreeHash {
			entries = append(entries, object.TreeEntry{Name: elems[0], Mode: filemode.Dir, Hash: sub})
		}
	}
	return w.writeTree(entries)
}

// emptyTreeHash is the hash of the tree with no entries.
var emptyTreeHash = plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904")

// writeTree stores a tree with entries in Git's order (directories compare as name + "/").
func (w treeWriter) writeTree(entries []object.TreeEntry) (plumbing.Hash, error) {
	sortKey := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return sortKey(entries[i]) < sortKey(entries[j]) })
	t := &object.Tree{Entries: entries}
	obj := w.e.repo.Storer.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.e.repo.Storer.SetEncodedObject(obj)
}

func (w treeWriter) writeObject(t plumbing.ObjectType, content []byte) (plumbing.Hash, error) {
	obj := w.e.repo.Storer.NewEncodedObject()
	obj.SetType(t)
	obj.SetSize(int64(len(content)))
	wr, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := io.Copy(wr, bytes.NewReader(content)); err != nil {
		_ = wr.Close()
		return plumbing.ZeroHash, err
	}
	if err := wr.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return w.e.repo.Storer.SetEncodedObject(obj)
}
