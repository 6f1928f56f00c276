package git

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// tmpPrefix names the temporary files of atomic writes. They are created in the clone's
// top directory, never below refs/: go-git reads every file there as a ref, so a
// half-written temporary file there would break every later read.
const tmpPrefix = "kpo-tmp-"

// atomicStorage is go-git's file system storage with crash-safe writes of refs and of the
// config. go-git writes a ref by truncating its file and then writing the new value, and
// the config likewise, so a process killed in between leaves an empty file that makes
// every later fetch fail ("ref file is empty"). Here the new content goes to a temporary
// file that is synced and then renamed over the old one, so a crash leaves either the old
// or the new value. Objects and packs need nothing: go-git already writes them to
// temporary files and renames them.
//
// Compare-and-swap is checked in this process only: the entry's lock serialises every
// writer of a clone, and no other process writes to the cache directory.
type atomicStorage struct {
	*filesystem.Storage
	dir string
}

// openClone opens the bare repository at dir with atomic ref and config writes.
func openClone(dir string) (*gogit.Repository, error) {
	repo, err := gogit.PlainOpen(dir)
	if err != nil {
		return nil, err
	}
	return wrapStorage(repo, dir)
}

// initClone creates an empty bare repository at dir (which must not hold one) with
// atomic ref and config writes.
func initClone(dir string) (*gogit.Repository, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	repo, err := gogit.PlainInit(dir, true)
	if err != nil {
		return nil, err
	}
	return wrapStorage(repo, dir)
}

// objectCache holds decoded Git objects for every clone of this process. Objects are named by
// their hash, so clones can share it, and its bound is the manager's whatever the number of
// repositories: go-git's default is a cache of 96 MiB per repository.
var objectCache = cache.NewObjectLRU(64 * cache.MiByte)

func wrapStorage(repo *gogit.Repository, dir string) (*gogit.Repository, error) {
	fs, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return nil, fmt.Errorf("local clone %s: unexpected storage %T", dir, repo.Storer)
	}
	shared := filesystem.NewStorage(fs.Filesystem(), objectCache)
	return gogit.Open(&atomicStorage{Storage: shared, dir: dir}, nil)
}

// SetReference writes ref atomically.
func (s *atomicStorage) SetReference(ref *plumbing.Reference) error {
	return s.writeRef(ref)
}

// CheckAndSetReference writes ref atomically if the stored ref still equals old (nil:
// no check), and fails with storage.ErrReferenceHasChanged otherwise.
func (s *atomicStorage) CheckAndSetReference(ref, old *plumbing.Reference) error {
	if old != nil {
		current, err := s.Reference(old.Name())
		if err != nil {
			return err
		}
		if current.Hash() != old.Hash() {
			return storage.ErrReferenceHasChanged
		}
	}
	return s.writeRef(ref)
}

// SetConfig writes the config atomically.
func (s *atomicStorage) SetConfig(cfg *config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	b, err := cfg.Marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(s.dir, "config", b)
}

func (s *atomicStorage) writeRef(ref *plumbing.Reference) error {
	name := ref.Name()
	var content string
	switch ref.Type() {
	case plumbing.HashReference:
		content = ref.Hash().String() + "\n"
	case plumbing.SymbolicReference:
		content = "ref: " + ref.Target().String() + "\n"
	}
	if content == "" || !safeRefName(name) {
		// Let go-git refuse (or write) what this writer does not know how to place.
		return s.Storage.SetReference(ref)
	}
	return writeFileAtomic(s.dir, filepath.FromSlash(name.String()), []byte(content))
}

// safeRefName tells whether name is HEAD or a valid ref name below refs/, which cannot
// leave the clone's directory.
func safeRefName(name plumbing.ReferenceName) bool {
	if name == plumbing.HEAD {
		return true
	}
	return strings.HasPrefix(name.String(), "refs/") && name.Validate() == nil
}

// writeFileAtomic replaces root/rel by data: write a temporary file in root, sync it,
// rename it over the target and sync the target's directory, so that after a crash the
// file holds either its old or its new content.
func writeFileAtomic(root, rel string, data []byte) (err error) {
	target := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(root, tmpPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), target); err != nil {
		return err
	}
	return syncDir(filepath.Dir(target))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // G304: a directory of the cache's own repository, to sync it
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems cannot sync a directory; the rename itself is still atomic.
	if errors.Is(err, os.ErrInvalid) || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}
