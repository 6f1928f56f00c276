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
		return nil, err
	}
	dir = cleanDir(dir)
	if dir == "" {
		return root, nil
	}
	t, err := root.Tree(dir)
	if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
		return nil, nil
	}
	return t, err
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
				return err
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
// dir, with exact content. Only regular and executable files are returned (symlinks and
// submodules are skipped). A missing dir gives an error wrapping ErrNotFound.
func (r *Repo) ReadTree(commit, dir string) (map[string][]byte, error) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	t, err := r.e.subtree(commit, dir)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("directory %q at %s: %w", cleanDir(dir), commit, ErrNotFound)
	}
	files := map[string][]byte{}
	err = t.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable && f.Mode != filemode.Deprecated {
			return nil
		}
		rd, err := f.Reader()
		if err != nil {
			return err
		}
		defer func() { _ = rd.Close() }()
		b, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		files[f.Name] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
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
	// are also the committer.
	AuthorName, AuthorEmail string
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
	if len(parents) == 1 && base != nil && base.Hash == tree {
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
	c := &object.Commit{
		Author:       sig,
		Committer:    sig,
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
