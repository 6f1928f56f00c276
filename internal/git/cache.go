// Package git is the only package of kpo that talks Git (through go-git). It keeps one
// local bare clone per Repository in a Cache, fetches it incrementally, reads refs, commits
// and trees from it, writes new commits into it and moves remote refs with
// compare-and-swap pushes. It knows the Porch ref layout and the kpt commit line
// (layout.go). Everything is safe for concurrent use; errors never contain credentials.
package git

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
)

const remoteName = "origin"

func init() {
	// go-git serves file:// and local paths by running git-upload-pack/git-receive-pack;
	// the manager must not shell out to git, so use go-git's in-process server instead.
	client.InstallProtocol("file", server.DefaultServer)
}

// Cache holds local bare clones on disk, one per key, below one directory.
type Cache struct {
	dir string

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is one local clone; mu serialises writers (fetch, commit, push) against readers.
type entry struct {
	mu  sync.RWMutex
	dir string
	// repo is nil until Open loads the clone from disk.
	repo *gogit.Repository
	// index holds the clone's branches and tags; set whenever repo is.
	index *refIndex
	// remoteURL is the URL origin was last set to, so Open does not re-read the config.
	remoteURL string
	// suspect is set by a reader that met an error looking like local damage; the next
	// Fetch then checks the whole clone.
	suspect atomic.Bool
}

// NewCache returns a cache keeping its clones below dir (created when needed).
func NewCache(dir string) *Cache {
	return &Cache{dir: dir, entries: map[string]*entry{}}
}

// Repo is a handle on one local clone and its remote. Handles are cheap; several handles
// for the same key share the clone and its lock.
type Repo struct {
	e     *entry
	url   string // without userinfo
	creds Credentials
}

// Open returns a handle on the clone for key, creating an empty bare repository with remote
// "origin" at url when there is none. It does not fetch. url may be http(s)://, file:// or
// a local path; userinfo in url is removed and, when creds is empty, used as basic auth.
//
// The first Open of a key in a process checks the clone left on disk (see entry.verify)
// and, when a crash or a full disk damaged it, replaces it by an empty repository, so the
// next Fetch downloads everything again instead of failing forever.
func (c *Cache) Open(ctx context.Context, key, rawURL string, creds Credentials) (*Repo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	remoteURL, creds, err := normalizeURL(rawURL, creds)
	if err != nil {
		return nil, err
	}
	e := c.entry(key)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.repo == nil {
		if err := e.load(ctx); err != nil {
			return nil, err
		}
	}
	if err := e.setRemote(remoteURL); err != nil {
		return nil, fmt.Errorf("configuring remote %s: %w", RedactURL(remoteURL), err)
	}
	return &Repo{e: e, url: remoteURL, creds: creds}, nil
}

// Remove deletes the clone for key from disk. Handles opened before must not be used after.
func (c *Cache) Remove(key string) error {
	c.mu.Lock()
	e, ok := c.entries[key]
	delete(c.entries, key)
	c.mu.Unlock()
	if ok {
		e.mu.Lock()
		defer e.mu.Unlock()
	}
	return os.RemoveAll(c.keyDir(key))
}

func (c *Cache) keyDir(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:16])+".git")
}

// entry returns the entry for key; Open loads it from disk, outside the cache's lock,
// since checking a clone can take a while.
func (c *Cache) entry(key string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		return e
	}
	e := &entry{dir: c.keyDir(key)}
	c.entries[key] = e
	return e
}

// setRemote makes origin point at url, with a mirror fetch refspec.
func (e *entry) setRemote(remoteURL string) error {
	if e.remoteURL == remoteURL {
		return nil
	}
	if err := e.writeRemote(remoteURL); err != nil {
		return err
	}
	e.remoteURL = remoteURL
	return nil
}

// writeRemote writes origin into the clone's config unless it is there already.
func (e *entry) writeRemote(remoteURL string) error {
	if r, err := e.repo.Remote(remoteName); err == nil {
		if urls := r.Config().URLs; len(urls) == 1 && urls[0] == remoteURL {
			return nil
		}
		if err := e.repo.DeleteRemote(remoteName); err != nil {
			return err
		}
	}
	_, err := e.repo.CreateRemote(&config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{remoteURL},
		Fetch: fetchRefSpecs,
	})
	return err
}

var fetchRefSpecs = []config.RefSpec{
	"+refs/heads/*:refs/heads/*",
	"+refs/tags/*:refs/tags/*",
}

// normalizeURL turns a local path into a file:// URL and moves userinfo into creds.
func normalizeURL(raw string, creds Credentials) (string, Credentials, error) {
	if raw == "" {
		return "", creds, errors.New("empty repository URL")
	}
	if filepath.IsAbs(raw) || strings.HasPrefix(raw, ".") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return "", creds, err
		}
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), creds, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", creds, fmt.Errorf("invalid repository URL %q", RedactURL(raw))
	}
	if u.User != nil {
		if creds.Username == "" && creds.Password == "" && creds.BearerToken == "" {
			creds.Username = u.User.Username()
			creds.Password, _ = u.User.Password()
		}
		u.User = nil
	}
	return u.String(), creds, nil
}

// URL returns the remote URL, without userinfo.
func (r *Repo) URL() string { return r.url }

// Fetch mirrors the remote's branches and tags into the clone: forced updates, and refs
// deleted on the remote are deleted locally. Being up to date is not an error. It costs one
// request to the remote, plus one for the objects of refs that changed.
//
// A failed fetch whose error is not about the network, the credentials or the remote
// repository leads to a check of the clone (see entry.verify); when it finds damage, the
// clone is rebuilt from the remote, once, and fetched again. A clone a reader found damaged
// is checked, and rebuilt if need be, once the remote has answered. A network or
// authentication error never leads to a rebuild, nor does any error on a clone that checks
// out fine.
func (r *Repo) Fetch(ctx context.Context) error {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	sess, adv, err := r.uploadPackSession(ctx)
	if err != nil {
		return remoteError("fetching", r.url, r.creds, err)
	}
	defer func() { _ = sess.Close() }()
	if r.e.suspect.Swap(false) {
		if damage := r.e.verify(true); damage != nil {
			if err := r.e.rebuildFor(ctx, r.url, damage); err != nil {
				return err
			}
		}
	}
	err = r.mirror(ctx, sess, adv)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		classify(err) != nil {
		return remoteError("fetching", r.url, r.creds, err)
	}
	damage := r.e.verify(looksDamaged(err))
	if damage == nil {
		return remoteError("fetching", r.url, r.creds, err)
	}
	if err := r.e.rebuildFor(ctx, r.url, damage); err != nil {
		return err
	}
	if err := r.fetch(ctx); err != nil {
		return fmt.Errorf("after rebuilding the damaged local clone: %w", remoteError("fetching", r.url, r.creds, err))
	}
	return nil
}

// rebuildFor rebuilds the clone and points it at remoteURL again.
func (e *entry) rebuildFor(ctx context.Context, remoteURL string, reason error) error {
	if err := e.rebuild(ctx, reason); err != nil {
		return err
	}
	if err := e.setRemote(remoteURL); err != nil {
		return fmt.Errorf("configuring remote %s: %w", RedactURL(remoteURL), err)
	}
	return nil
}

// Ref is a branch or tag of the local clone.
type Ref struct {
	// Name is the full ref name: refs/heads/x or refs/tags/x.
	Name string
	// Hash is what the ref points to: a commit, or the tag object of an annotated tag.
	Hash string
}

// Refs returns the branches and tags of the local clone, sorted by name. To read a few refs,
// Ref and RefsWithPrefix cost less.
func (r *Repo) Refs() ([]Ref, error) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	return r.e.index.all(), nil
}

// diskRefs reads the branches and tags from the clone's storage, sorted by name.
func (e *entry) diskRefs() ([]Ref, error) {
	iter, err := e.repo.Storer.IterReferences()
	if err != nil {
		return nil, err
	}
	var refs []Ref
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() == plumbing.HashReference && (ref.Name().IsBranch() || ref.Name().IsTag()) {
			refs = append(refs, Ref{Name: ref.Name().String(), Hash: ref.Hash().String()})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Name < refs[j].Name })
	return refs, nil
}

// BranchHead returns the commit a branch (short name or refs/heads/…) points to, or an
// error wrapping ErrBranchNotFound.
func (r *Repo) BranchHead(branch string) (string, error) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	name := plumbing.ReferenceName(branch)
	if !name.IsBranch() {
		name = plumbing.NewBranchReferenceName(branch)
	}
	hash, ok := r.e.index.get(name.String())
	if !ok {
		return "", fmt.Errorf("%s: %w", name.Short(), ErrBranchNotFound)
	}
	return hash, nil
}

// resolveCommit returns the commit rev names: a hash (of a commit or an annotated tag) or a
// full ref name; annotated tags are peeled.
func (e *entry) resolveCommit(rev string) (plumbing.Hash, error) {
	var h plumbing.Hash
	if plumbing.IsHash(rev) {
		h = plumbing.NewHash(rev)
	} else if hash, ok := e.index.get(rev); ok {
		h = plumbing.NewHash(hash)
	} else {
		ref, err := storer.ResolveReference(e.repo.Storer, plumbing.ReferenceName(rev))
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("ref %s: %w", rev, ErrNotFound)
		}
		h = ref.Hash()
	}
	for range 10 {
		obj, err := e.repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("object %s: %w", h, ErrNotFound)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			tag, err := e.repo.TagObject(h)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("%s is a %s, not a commit: %w", rev, obj.Type(), ErrNotFound)
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("%s: tag chain too long: %w", rev, ErrNotFound)
}
