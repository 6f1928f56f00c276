package git

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/objfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// errDamaged is wrapped by the errors verify returns: the local clone is damaged and must
// be rebuilt from the remote.
var errDamaged = errors.New("local clone is damaged")

// damagef returns an error wrapping errDamaged.
func damagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errDamaged, fmt.Sprintf(format, args...))
}

// looksDamaged tells whether err is one go-git returns for a broken local store: an empty
// or malformed ref file, a missing or corrupt object, pack or pack index. Such an error
// never heals by itself, unlike a network error.
func looksDamaged(err error) bool {
	var corrupt flate.CorruptInputError
	for _, e := range unwrapAll(err) {
		switch {
		case errors.Is(e, dotgit.ErrEmptyRefFile), errors.Is(e, dotgit.ErrPackedRefsBadFormat),
			errors.Is(e, dotgit.ErrPackedRefsDuplicatedRef), errors.Is(e, dotgit.ErrIsDir),
			errors.Is(e, dotgit.ErrSymRefTargetNotFound), errors.Is(e, dotgit.ErrIdxNotFound),
			errors.Is(e, dotgit.ErrPackfileNotFound),
			errors.Is(e, plumbing.ErrObjectNotFound), errors.Is(e, plumbing.ErrInvalidType),
			errors.Is(e, objfile.ErrHeader), errors.Is(e, objfile.ErrNegativeSize),
			errors.Is(e, zlib.ErrChecksum), errors.Is(e, zlib.ErrHeader), errors.Is(e, zlib.ErrDictionary),
			errors.As(e, &corrupt),
			errors.Is(e, idxfile.ErrMalformedIdxFile),
			errors.Is(e, packfile.ErrInvalidDelta), errors.Is(e, packfile.ErrDeltaCmd),
			errors.Is(e, packfile.ErrReferenceDeltaNotFound):
			return true
		}
	}
	return false
}

// noteDamage marks the clone as suspect when err looks like local damage, so the next
// Fetch checks every object and rebuilds the clone if need be. Readers cannot rebuild
// themselves: they hold the lock shared, and the rebuild needs the remote.
//
// Unlike a fetch, a read involves no network, so a short read (io.ErrUnexpectedEOF) means
// a truncated object too.
func (e *entry) noteDamage(err error) error {
	if err != nil && (looksDamaged(err) || errors.Is(err, io.ErrUnexpectedEOF)) {
		e.suspect.Store(true)
	}
	return err
}

// load opens the clone on disk, or creates an empty one when there is none. A clone that
// does not open or fails verify is removed and created again: it holds only what the
// remote has, so the next Fetch gets everything back.
func (e *entry) load(ctx context.Context) error {
	repo, err := openClone(e.dir)
	switch {
	case errors.Is(err, gogit.ErrRepositoryNotExists) && !exists(e.dir):
		repo, err = initClone(e.dir)
		if err != nil {
			return fmt.Errorf("creating local clone %s: %w", e.dir, err)
		}
		e.repo, e.index, e.remoteURL = repo, &refIndex{}, ""
		return nil
	case err != nil:
		return e.rebuild(ctx, damagef("opening it: %v", err))
	}
	e.repo, e.remoteURL = repo, ""
	damage := e.verify(false)
	if damage == nil {
		if err := e.loadRefIndex(); err != nil {
			damage = damagef("reading refs: %v", err)
		}
	}
	if damage != nil {
		if err := e.rebuild(ctx, damage); err != nil {
			e.repo = nil
			return err
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// rebuild replaces the clone with an empty repository; the caller sets the remote and
// fetches. reason says what was wrong, for the log. On failure e.repo is left as it was
// (possibly nil), so handles fail with errors rather than panic.
func (e *entry) rebuild(ctx context.Context, reason error) error {
	log.FromContext(ctx).Info("rebuilding damaged local Git clone from its remote", "dir", e.dir, "reason", reason.Error())
	e.suspect.Store(false)
	if e.repo != nil {
		if c, ok := e.repo.Storer.(io.Closer); ok {
			_ = c.Close()
		}
	}
	if err := os.RemoveAll(e.dir); err != nil {
		return fmt.Errorf("removing damaged local clone %s: %w", e.dir, err)
	}
	repo, err := initClone(e.dir)
	if err != nil {
		return fmt.Errorf("recreating damaged local clone %s: %w", e.dir, err)
	}
	e.repo, e.index, e.remoteURL = repo, &refIndex{}, ""
	return nil
}

// verify looks for damage a crash, a full disk or a power loss leaves in the clone and
// returns an error wrapping errDamaged for the first one found. It checks that HEAD,
// the config, every ref file and packed-refs parse, that every pack has a pack index
// that matches it, and that the object of every branch and tag exists (branch heads and
// their root trees are read in full). deep also reads every object in full, which costs
// time proportional to the size of the repository.
//
// It removes what interrupted writes leave behind and nothing reads: temporary files,
// and pack indexes without their pack (go-git writes the index first and would reuse a
// truncated one when the same pack is fetched again).
func (e *entry) verify(deep bool) error {
	if err := checkRefFile(e.dir, "HEAD"); err != nil {
		return err
	}
	if _, err := e.repo.Storer.Config(); err != nil {
		return damagef("config: %v", err)
	}
	if err := e.checkLooseRefs(); err != nil {
		return err
	}
	if err := checkPackedRefs(filepath.Join(e.dir, "packed-refs")); err != nil {
		return err
	}
	if err := e.checkPacks(); err != nil {
		return err
	}
	refs, err := e.diskRefs()
	if err != nil {
		return damagef("reading refs: %v", err)
	}
	for _, ref := range refs {
		h := plumbing.NewHash(ref.Hash)
		if err := e.repo.Storer.HasEncodedObject(h); err != nil {
			return damagef("%s points to %s: %v", ref.Name, ref.Hash, err)
		}
		if !plumbing.ReferenceName(ref.Name).IsBranch() {
			continue
		}
		c, err := e.repo.CommitObject(h)
		if err == nil {
			_, err = c.Tree()
		}
		if err != nil {
			return damagef("%s points to %s: %v", ref.Name, ref.Hash, err)
		}
	}
	if deep {
		return e.checkAllObjects()
	}
	return nil
}

// checkRefFile checks that the loose ref file dir/name holds a hash or "ref: <name>".
func checkRefFile(dir, name string) error {
	b, err := os.ReadFile(filepath.Join(dir, name)) //nolint:gosec // G304: a ref file below the cache's own repository directory, found by walking it
	if err != nil {
		return damagef("%s: %v", name, err)
	}
	line := strings.TrimSpace(string(b))
	if target, ok := strings.CutPrefix(line, "ref: "); ok {
		if plumbing.ReferenceName(target).Validate() != nil {
			return damagef("%s: invalid symbolic ref %q", name, target)
		}
		return nil
	}
	if !isFullHash(line) {
		return damagef("%s: %d bytes that are not a hash", name, len(b))
	}
	return nil
}

func isFullHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("0123456789abcdef", rune(s[i])) {
			return false
		}
	}
	return true
}

// checkLooseRefs checks every file below refs/: go-git reads each of them as a ref.
func (e *entry) checkLooseRefs() error {
	root := filepath.Join(e.dir, "refs")
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == root {
			return nil
		}
		if err != nil {
			return damagef("refs: %v", err)
		}
		switch {
		case d.IsDir():
			return nil
		}
		rel, err := filepath.Rel(e.dir, path)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return damagef("%s is not a regular file", rel)
		}
		return checkRefFile(e.dir, rel)
	})
}

// checkPackedRefs checks every line of packed-refs as git writes it: a comment, a peeled
// tag ("^<hash>") or "<hash> <ref name>".
func checkPackedRefs(path string) error {
	f, err := os.Open(path) //nolint:gosec // G304: packed-refs of the cache's own repository directory
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return damagef("packed-refs: %v", err)
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		var ok bool
		switch {
		case line == "", strings.HasPrefix(line, "#"):
			ok = true
		case strings.HasPrefix(line, "^"):
			ok = isFullHash(line[1:])
		default:
			hash, name, found := strings.Cut(line, " ")
			ok = found && isFullHash(hash) && plumbing.ReferenceName(name).Validate() == nil
		}
		if !ok {
			return damagef("packed-refs: line %d is malformed", n)
		}
	}
	if err := s.Err(); err != nil {
		return damagef("packed-refs: %v", err)
	}
	return nil
}

// checkPacks checks that every pack has an index that decodes and names the pack's
// checksum, and removes leftovers of interrupted writes.
func (e *entry) checkPacks() error {
	dir := filepath.Join(e.dir, "objects", "pack")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return damagef("objects/pack: %v", err)
	}
	names := map[string]bool{}
	for _, d := range entries {
		names[d.Name()] = true
	}
	for _, d := range entries {
		name := d.Name()
		base, ext := strings.TrimSuffix(name, filepath.Ext(name)), filepath.Ext(name)
		switch {
		case strings.HasPrefix(name, "tmp_"):
			_ = os.Remove(filepath.Join(dir, name))
		case ext == ".idx" && !names[base+".pack"]:
			_ = os.Remove(filepath.Join(dir, name))
		case ext == ".pack":
			if !names[base+".idx"] {
				return damagef("%s has no index", name)
			}
			if err := checkPack(filepath.Join(dir, base)); err != nil {
				return damagef("%s: %v", name, err)
			}
		}
	}
	return removeTemporaryFiles(e.dir)
}

// checkPack checks that base.idx decodes (its own checksum included) and that base.pack
// ends with the pack checksum the index names, which a truncated pack does not.
func checkPack(base string) error {
	idxFile, err := os.Open(base + ".idx") //nolint:gosec // G304: a pack of the cache's own repository directory, found by listing it
	if err != nil {
		return err
	}
	defer func() { _ = idxFile.Close() }()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(idxFile).Decode(idx); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	pack, err := os.Open(base + ".pack") //nolint:gosec // G304: as above
	if err != nil {
		return err
	}
	defer func() { _ = pack.Close() }()
	st, err := pack.Stat()
	if err != nil {
		return err
	}
	const headerSize, checksumSize = 12, 20
	if st.Size() < headerSize+checksumSize {
		return fmt.Errorf("pack is truncated (%d bytes)", st.Size())
	}
	header := make([]byte, 4)
	if _, err := pack.ReadAt(header, 0); err != nil {
		return err
	}
	trailer := make([]byte, checksumSize)
	if _, err := pack.ReadAt(trailer, st.Size()-checksumSize); err != nil {
		return err
	}
	if !bytes.Equal(header, []byte("PACK")) || !bytes.Equal(trailer, idx.PackfileChecksum[:]) {
		return errors.New("pack does not match its index (truncated or overwritten)")
	}
	return nil
}

// removeTemporaryFiles removes the temporary files of atomic writes a crash left in dir.
func removeTemporaryFiles(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, tmpPrefix+"*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		_ = os.Remove(m)
	}
	return nil
}

// checkAllObjects reads every object of the clone in full, and decodes every tree, so a
// truncated or corrupt object anywhere is found. It reads through a storage of its own:
// go-git caches an object even when reading it failed half-way, so the clone's storage
// may serve a damaged object from memory as if it were fine.
func (e *entry) checkAllObjects() error {
	fresh, err := gogit.PlainOpen(e.dir)
	if err != nil {
		return damagef("opening it: %v", err)
	}
	if c, ok := fresh.Storer.(io.Closer); ok {
		defer func() { _ = c.Close() }()
	}
	iter, err := fresh.Storer.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		return damagef("listing objects: %v", err)
	}
	defer iter.Close()
	err = iter.ForEach(func(obj plumbing.EncodedObject) error {
		rd, err := obj.Reader()
		if err != nil {
			return fmt.Errorf("object %s: %w", obj.Hash(), err)
		}
		_, err = io.Copy(io.Discard, rd)
		if cerr := rd.Close(); err == nil {
			err = cerr
		}
		if err == nil && obj.Type() == plumbing.TreeObject {
			err = new(object.Tree).Decode(obj)
		}
		if err != nil {
			return fmt.Errorf("object %s: %w", obj.Hash(), err)
		}
		return nil
	})
	if err != nil {
		return damagef("%v", err)
	}
	return nil
}
