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

// IsPackage tells whether dir at commit is a package: a directory holding a Kptfile.
func (r *Repo) IsPackage(commit, dir string) (bool, error) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	t, err := r.e.subtree(commit, dir)
	if err != nil || t == nil {
		return false, err
	}
	return hasFile(t, KptfileName), nil
}

// Resolve returns the commit a user-given ref names: a full ref name, a branch, a tag, or a
// commit hash (in that order of preference). Unknown refs give an error wrapping ErrNotFound.
func (r *Repo) Resolve(ref string) (string, error) {
	r.e.mu.RLock()
	defer r.e.mu.RUnlock()
	for _, candidate := range []string{ref, "refs/heads/" + ref, "refs/tags/" + ref} {
		if h, err := r.e.resolveCommit(candidate); err == nil {
			return h.String(), nil
		}
	}
	return "", fmt.Errorf("ref %q is neither a branch, a tag nor a commit of the repository: %w", ref, ErrNotFound)
}
