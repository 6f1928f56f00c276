package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// RefUpdate is one compare-and-swap update of a remote ref.
type RefUpdate struct {
	// Name is the full ref name, e.g. refs/heads/drafts/pkg/ws or refs/tags/pkg/v1.
	Name string
	// Old is the hash the remote ref must have now; "" means it must not exist.
	Old string
	// New is the hash to set (it must be in the local clone); "" deletes the ref.
	New string
}

// beforeReceivePack, when set by a test, runs after the remote's refs were read and before
// the update is sent, so a test can move a remote ref inside that window.
var beforeReceivePack func()

// PushRefs applies all updates to origin in one atomic push: either every ref moves or none
// does. Nothing is ever forced: each update succeeds only if the remote ref still equals
// Old, both when the refs are read and again on the server when the refs are locked, so a
// lost race gives an error wrapping ErrNonFastForward and leaves the remote unchanged. On
// success the local refs are updated the same way.
//
// Local (file://) remotes are served by go-git's in-process server, which checks Old only
// when reading and cannot apply several updates atomically; they are for development.
func (r *Repo) PushRefs(ctx context.Context, updates []RefUpdate) error {
	if len(updates) == 0 {
		return nil
	}
	r.e.mu.Lock()
	defer r.e.mu.Unlock()

	cmds, err := r.e.commands(updates)
	if err != nil {
		return err
	}
	fail := func(err error) error { return remoteError("pushing to", r.url, r.creds, err) }

	sess, adv, err := r.receivePackSession(ctx)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = sess.Close() }()
	remote, onRemote, err := advertised(adv)
	if err != nil {
		return fail(err)
	}
	var pending []*packp.Command
	for _, c := range cmds {
		if current := remote[c.Name]; current != c.Old {
			return fmt.Errorf("%s is %s on the remote, expected %s: %w", c.Name, describe(current), describe(c.Old), ErrNonFastForward)
		}
		if c.Old != c.New {
			pending = append(pending, c)
		}
	}
	if len(pending) == 0 {
		return r.e.applyLocally(cmds)
	}

	caps := capability.NewList()
	if adv != nil {
		caps = adv.Capabilities
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(caps)
	req.Commands = pending
	if caps.Supports(capability.Atomic) {
		if err := req.Capabilities.Set(capability.Atomic); err != nil {
			return err
		}
	} else if len(pending) > 1 && !strings.HasPrefix(r.url, "file:") {
		return fail(errors.New("the remote does not support atomic pushes"))
	}

	var news []plumbing.Hash
	for _, c := range pending {
		if c.New != plumbing.ZeroHash {
			news = append(news, c.New)
		}
	}
	if len(news) > 0 {
		objects, err := r.e.objectsToPush(news, onRemote)
		if err != nil {
			return fmt.Errorf("listing objects to push: %w", err)
		}
		pr, pw := io.Pipe()
		req.Packfile = pr
		useRefDeltas := !caps.Supports(capability.OFSDelta)
		go func() {
			_, err := packfile.NewEncoder(pw, r.e.repo.Storer, useRefDeltas).Encode(objects, 10)
			_ = pw.CloseWithError(err)
		}()
		defer func() { _ = pr.Close() }()
	}

	if beforeReceivePack != nil {
		beforeReceivePack()
	}
	status, err := sess.ReceivePack(ctx, req)
	if err == nil && status != nil {
		err = status.Error()
	}
	if err != nil {
		if status != nil && r.lostRace(ctx, pending) {
			return fmt.Errorf("pushing to %s: a ref changed on the remote during the push: %w", RedactURL(r.url), ErrNonFastForward)
		}
		return fail(err)
	}
	return r.e.applyLocally(cmds)
}

// lostRace reads the remote refs again after the server refused an update and reports
// whether one of cmds no longer finds its expected old value: then the refusal was the
// server's compare-and-swap, not some other failure. git's own wording for this ("failed to
// lock", "atomic transaction failed", …) varies too much to match on.
func (r *Repo) lostRace(ctx context.Context, cmds []*packp.Command) bool {
	sess, adv, err := r.receivePackSession(ctx)
	if err != nil {
		return false
	}
	defer func() { _ = sess.Close() }()
	remote, _, err := advertised(adv)
	if err != nil {
		return false
	}
	for _, c := range cmds {
		if remote[c.Name] != c.Old {
			return true
		}
	}
	return false
}

// receivePackSession opens a push session to origin and reads the advertised refs; adv is
// nil for an empty remote.
func (r *Repo) receivePackSession(ctx context.Context) (transport.ReceivePackSession, *packp.AdvRefs, error) {
	return openSession(ctx, r, func(cl transport.Transport, ep *transport.Endpoint, auth transport.AuthMethod) (transport.ReceivePackSession, error) {
		return cl.NewReceivePackSession(ep, auth)
	})
}

// advertised returns the hash of every advertised ref, and the set of objects the remote
// advertised (refs and the commits annotated tags peel to).
func advertised(adv *packp.AdvRefs) (map[plumbing.ReferenceName]plumbing.Hash, map[plumbing.Hash]bool, error) {
	refs := map[plumbing.ReferenceName]plumbing.Hash{}
	hashes := map[plumbing.Hash]bool{}
	if adv == nil {
		return refs, hashes, nil
	}
	all, err := adv.AllReferences()
	if err != nil {
		return nil, nil, err
	}
	for name, ref := range all {
		if ref.Type() == plumbing.HashReference {
			refs[name] = ref.Hash()
			hashes[ref.Hash()] = true
		}
	}
	for _, h := range adv.Peeled {
		hashes[h] = true
	}
	return refs, hashes, nil
}

// maxNewCommits bounds the commits objectsToPush walks before it gives up on finding where
// the remote's history starts and lists objects the slow, exhaustive way.
var maxNewCommits = 1000

// objectsToPush returns the objects a push of news must send to a remote that has every
// object reachable from onRemote. It walks from news back to the first commits the remote
// has (kpo's writes are one or two commits on top of refs the remote advertised) and, for
// each new commit, sends its tree minus what its parents' trees hold, skipping equal
// subtrees whole. Its cost follows the size of the change and of the directories on its
// path, not of the repository: go-git's revlist.Objects lists every object reachable from
// every advertised ref to exclude them, which grows with every package and revision. When
// news is not made of commits on top of advertised ones within maxNewCommits, it falls back
// to revlist.Objects.
func (e *entry) objectsToPush(news []plumbing.Hash, onRemote map[plumbing.Hash]bool) ([]plumbing.Hash, error) {
	w := pushWalk{e: e, seen: map[plumbing.Hash]bool{}}
	queue := append([]plumbing.Hash(nil), news...)
	commits := 0
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if onRemote[h] || w.seen[h] {
			continue
		}
		if commits++; commits > maxNewCommits {
			return w.exhaustive(news, onRemote)
		}
		obj, err := e.repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, err
		}
		if obj.Type() != plumbing.CommitObject {
			return w.exhaustive(news, onRemote)
		}
		c, err := object.DecodeCommit(e.repo.Storer, obj)
		if err != nil {
			return nil, err
		}
		w.add(h)
		var bases []*object.Tree
		for _, p := range c.ParentHashes {
			parent, err := object.GetCommit(e.repo.Storer, p)
			if err != nil {
				return nil, fmt.Errorf("parent %s of %s: %w", p, h, err)
			}
			t, err := parent.Tree()
			if err != nil {
				return nil, err
			}
			bases = append(bases, t)
			queue = append(queue, p)
		}
		if err := w.tree(c.TreeHash, bases); err != nil {
			return nil, err
		}
	}
	return w.out, nil
}

// pushWalk collects the objects of a push.
type pushWalk struct {
	e    *entry
	seen map[plumbing.Hash]bool
	out  []plumbing.Hash
}

func (w *pushWalk) add(h plumbing.Hash) {
	w.seen[h] = true
	w.out = append(w.out, h)
}

// tree adds tree h and what it holds, except what the trees in bases (the same directory in
// the parent commits) hold under the same name: the remote has those, or the push sends them
// with the parent.
func (w *pushWalk) tree(h plumbing.Hash, bases []*object.Tree) error {
	if w.seen[h] {
		return nil
	}
	for _, b := range bases {
		if b.Hash == h {
			return nil
		}
	}
	t, err := object.GetTree(w.e.repo.Storer, h)
	if err != nil {
		return err
	}
	w.add(h)
	byName := make([]map[string]object.TreeEntry, len(bases))
	for i, b := range bases {
		byName[i] = make(map[string]object.TreeEntry, len(b.Entries))
		for _, entry := range b.Entries {
			byName[i][entry.Name] = entry
		}
	}
	for _, entry := range t.Entries {
		if entry.Mode == filemode.Submodule || w.seen[entry.Hash] {
			continue // a gitlink names a commit of another repository
		}
		var subBases []*object.Tree
		unchanged := false
		for i := range bases {
			old, ok := byName[i][entry.Name]
			if !ok {
				continue
			}
			if old.Hash == entry.Hash {
				unchanged = true
				break
			}
			if old.Mode == filemode.Dir && entry.Mode == filemode.Dir {
				sub, err := object.GetTree(w.e.repo.Storer, old.Hash)
				if err != nil {
					return err
				}
				subBases = append(subBases, sub)
			}
		}
		switch {
		case unchanged:
		case entry.Mode == filemode.Dir:
			if err := w.tree(entry.Hash, subBases); err != nil {
				return err
			}
		default:
			w.add(entry.Hash)
		}
	}
	return nil
}

// exhaustive lists the objects of news the remote lacks with go-git's revlist, which walks
// every object reachable from onRemote.
func (w *pushWalk) exhaustive(news []plumbing.Hash, onRemote map[plumbing.Hash]bool) ([]plumbing.Hash, error) {
	haves := make([]plumbing.Hash, 0, len(onRemote))
	for h := range onRemote {
		haves = append(haves, h)
	}
	return revlist.Objects(w.e.repo.Storer, news, haves)
}

func describe(h plumbing.Hash) string {
	if h.IsZero() {
		return "absent"
	}
	return h.String()
}

// commands validates updates and turns them into push commands.
func (e *entry) commands(updates []RefUpdate) ([]*packp.Command, error) {
	seen := map[string]bool{}
	var cmds []*packp.Command
	for _, u := range updates {
		name := plumbing.ReferenceName(u.Name)
		if !strings.HasPrefix(u.Name, "refs/") || name.Validate() != nil {
			return nil, fmt.Errorf("invalid ref name %q", u.Name)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("ref %s updated twice in one push", u.Name)
		}
		seen[u.Name] = true
		c := &packp.Command{Name: name}
		for _, h := range []struct {
			value string
			dst   *plumbing.Hash
		}{{u.Old, &c.Old}, {u.New, &c.New}} {
			if h.value == "" {
				continue
			}
			if !plumbing.IsHash(h.value) {
				return nil, fmt.Errorf("ref %s: invalid hash %q", u.Name, h.value)
			}
			*h.dst = plumbing.NewHash(h.value)
		}
		if !c.New.IsZero() {
			if _, err := e.repo.Storer.EncodedObject(plumbing.AnyObject, c.New); err != nil {
				return nil, fmt.Errorf("ref %s: object %s is not in the local clone: %w", u.Name, c.New, ErrNotFound)
			}
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// applyLocally mirrors pushed commands into the local clone.
func (e *entry) applyLocally(cmds []*packp.Command) error {
	for _, c := range cmds {
		var err error
		if c.New.IsZero() {
			err = e.removeRef(c.Name)
		} else {
			err = e.setRef(c.Name, c.New)
		}
		if err != nil {
			return fmt.Errorf("updating local ref %s: %w", c.Name, err)
		}
	}
	return nil
}
