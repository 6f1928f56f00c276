package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
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
	remote, haves, err := advertised(adv)
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
		objects, err := revlist.Objects(r.e.repo.Storer, news, haves)
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
	ep, err := r.endpoint()
	if err != nil {
		return nil, nil, err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return nil, nil, err
	}
	sess, err := cl.NewReceivePackSession(ep, r.creds.auth())
	if err != nil {
		return nil, nil, err
	}
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return sess, nil, nil
	}
	if err != nil {
		_ = sess.Close()
		return nil, nil, err
	}
	return sess, adv, nil
}

// advertised returns the hash of every advertised ref, and the list of those hashes.
func advertised(adv *packp.AdvRefs) (map[plumbing.ReferenceName]plumbing.Hash, []plumbing.Hash, error) {
	refs := map[plumbing.ReferenceName]plumbing.Hash{}
	var hashes []plumbing.Hash
	if adv == nil {
		return refs, nil, nil
	}
	all, err := adv.AllReferences()
	if err != nil {
		return nil, nil, err
	}
	for name, ref := range all {
		if ref.Type() == plumbing.HashReference {
			refs[name] = ref.Hash()
			hashes = append(hashes, ref.Hash())
		}
	}
	return refs, hashes, nil
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
