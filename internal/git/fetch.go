package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// fetch is one fetch into the clone as it is, in a session of its own (see mirror). It
// returns go-git's error as is, for the caller to classify.
func (r *Repo) fetch(ctx context.Context) error {
	sess, adv, err := r.uploadPackSession(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = sess.Close() }()
	return r.mirror(ctx, sess, adv)
}

// mirror makes the clone's branches and tags equal to those adv advertises (forced updates;
// refs gone from the remote are deleted), downloading through sess only the objects of refs
// that changed. adv is nil for an empty remote. It returns go-git's error as is.
//
// It does the work of go-git's Remote.Fetch with Prune and Force, without its costs in the
// size of the repository: go-git reads every local ref file two or three times per fetch
// (and, with force refspecs and Prune, deleted and rewrote every ref on every fetch), where
// this compares the advertised refs with the in-memory ref index and touches the disk only
// for refs that changed. The advertisement itself still lists every ref of the remote: the
// smart HTTP protocol v0 that go-git speaks has no way to ask for fewer.
func (r *Repo) mirror(ctx context.Context, sess transport.UploadPackSession, adv *packp.AdvRefs) error {
	remote := map[string]plumbing.Hash{}
	if adv != nil {
		all, err := adv.AllReferences()
		if err != nil {
			return err
		}
		for name, ref := range all {
			if ref.Type() == plumbing.HashReference && mirrored(name) {
				remote[name.String()] = ref.Hash()
			}
		}
	}

	changed := map[string]plumbing.Hash{}
	var wants, haves []plumbing.Hash
	wanted := map[plumbing.Hash]bool{}
	for name, h := range remote {
		old, ok := r.e.index.get(name)
		if ok && old == h.String() {
			continue
		}
		changed[name] = h
		if ok && plumbing.IsHash(old) {
			haves = append(haves, plumbing.NewHash(old))
		}
		if !wanted[h] && r.e.repo.Storer.HasEncodedObject(h) != nil {
			wanted[h] = true
			wants = append(wants, h)
		}
	}
	if len(wants) > 0 {
		haves = append(haves, r.e.branchHeads()...)
		if err := r.fetchPack(ctx, sess, adv, wants, haves); err != nil {
			return err
		}
	}

	// Objects first, then refs: a crash in between leaves refs that the next fetch completes.
	names := make([]string, 0, len(changed))
	for name := range changed {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := r.e.setRef(plumbing.ReferenceName(name), changed[name]); err != nil {
			return err
		}
	}
	for _, ref := range r.e.index.all() {
		if _, ok := remote[ref.Name]; !ok {
			if err := r.e.removeRef(plumbing.ReferenceName(ref.Name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// branchHeads returns the distinct commits the clone's branches point to: the usual common
// ground with the remote, much fewer than the tags, which mostly point into the history of
// the registered branch.
func (e *entry) branchHeads() []plumbing.Hash {
	seen := map[string]bool{}
	var out []plumbing.Hash
	for _, ref := range e.index.withPrefix(headsPrefix) {
		if !seen[ref.Hash] && plumbing.IsHash(ref.Hash) {
			seen[ref.Hash] = true
			out = append(out, plumbing.NewHash(ref.Hash))
		}
	}
	return out
}

// fetchPack downloads the objects of wants that the clone lacks, telling the remote which
// commits it has (haves), into a new pack of the clone.
func (r *Repo) fetchPack(ctx context.Context, sess transport.UploadPackSession, adv *packp.AdvRefs, wants, haves []plumbing.Hash) (err error) {
	req := packp.NewUploadPackRequestFromCapabilities(adv.Capabilities)
	if adv.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	req.Wants = wants
	req.Haves = dedupe(haves)
	reader, err := sess.UploadPack(ctx, req)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := reader.Close(); err == nil {
			err = cerr
		}
	}()
	var pack io.Reader = reader
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, reader)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, reader)
	}
	if err := packfile.UpdateObjectStorage(r.e.repo.Storer, pack); err != nil {
		return fmt.Errorf("receiving objects: %w", err)
	}
	return nil
}

func dedupe(hashes []plumbing.Hash) []plumbing.Hash {
	seen := map[plumbing.Hash]bool{}
	out := hashes[:0]
	for _, h := range hashes {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// uploadPackSession opens a fetch session to origin and reads the advertised refs; adv is
// nil for an empty remote.
func (r *Repo) uploadPackSession(ctx context.Context) (transport.UploadPackSession, *packp.AdvRefs, error) {
	return openSession(ctx, r, func(cl transport.Transport, ep *transport.Endpoint, auth transport.AuthMethod) (transport.UploadPackSession, error) {
		return cl.NewUploadPackSession(ep, auth)
	})
}

// advertisingSession is what fetch and push sessions share: the refs the remote advertises.
type advertisingSession interface {
	AdvertisedReferencesContext(context.Context) (*packp.AdvRefs, error)
	Close() error
}

// openSession opens a session to origin with open and reads the advertised refs; adv is nil
// for an empty remote.
func openSession[S advertisingSession](ctx context.Context, r *Repo,
	open func(transport.Transport, *transport.Endpoint, transport.AuthMethod) (S, error)) (S, *packp.AdvRefs, error) {
	var none S
	ep, err := r.endpoint()
	if err != nil {
		return none, nil, err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return none, nil, err
	}
	sess, err := open(cl, ep, r.creds.auth())
	if err != nil {
		return none, nil, err
	}
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return sess, nil, nil
	}
	if err != nil {
		_ = sess.Close()
		return none, nil, err
	}
	return sess, adv, nil
}

// endpoint is origin's transport endpoint.
func (r *Repo) endpoint() (*transport.Endpoint, error) {
	ep, err := transport.NewEndpoint(r.url)
	if err != nil {
		return nil, fmt.Errorf("invalid repository URL %s", RedactURL(r.url))
	}
	ep.CaBundle = r.creds.CABundle
	return ep, nil
}
