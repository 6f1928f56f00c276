package git

import "fmt"

// TreeHash returns the hash of the Git tree at dir of commit: equal hashes mean equal files,
// so callers can skip re-reading a package whose directory did not change. A missing dir
// gives an error wrapping ErrNotFound.
func (r *Repo) TreeHash(commit, dir string) (string, error) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	t, err := r.e.subtree(commit, dir)
	if err != nil {
		return "", err
	}
	if t == nil {
		return "", fmt.Errorf("directory %q at %s: %w", cleanDir(dir), commit, ErrNotFound)
	}
	return t.Hash.String(), nil
}
