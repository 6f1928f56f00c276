package controller

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
)

// gitAccess is what every reconciler that reads or writes a Repository's Git shares: the clone
// cache, the credentials, and one lock per Repository, so that a sync, an edit and an approval
// of the same repository never interleave (revision numbers are computed under it; refs are
// still updated with compare-and-swap against writers outside this process).
type gitAccess struct {
	apiReader client.Reader
	cache     *git.Cache
	locks     keyedMutex
}

// lock serialises Git work on one Repository; the returned func unlocks.
func (a *gitAccess) lock(repo *kpov1.Repository) func() {
	return a.locks.lock(repo.Namespace + "/" + repo.Name)
}

// open returns the Repository's cached clone, fetched up to date.
func (a *gitAccess) open(ctx context.Context, repo *kpov1.Repository) (*git.Repo, error) {
	creds, err := a.credentials(ctx, repo.Namespace, repo.Spec.Git.SecretRef)
	if err != nil {
		return nil, err
	}
	src, err := a.cache.Open(ctx, cacheKey(repo), repo.Spec.Git.Repo, creds)
	if err != nil {
		return nil, gitStepError("opening the repository cache", err)
	}
	if err := src.Fetch(ctx); err != nil {
		return nil, gitStepError("fetching "+git.RedactURL(repo.Spec.Git.Repo), err)
	}
	return src, nil
}

// openURL returns a fetched clone of any Git URL, for clones from outside registered
// repositories; secretRef is resolved in namespace.
func (a *gitAccess) openURL(ctx context.Context, namespace, url string, secretRef *kpov1.LocalReference) (*git.Repo, error) {
	creds, err := a.credentials(ctx, namespace, secretRef)
	if err != nil {
		return nil, err
	}
	key := "url/" + namespace + "/" + url
	if secretRef != nil {
		key += "/" + secretRef.Name
	}
	src, err := a.cache.Open(ctx, key, url, creds)
	if err != nil {
		return nil, gitStepError("opening the repository cache", err)
	}
	if err := src.Fetch(ctx); err != nil {
		return nil, gitStepError("fetching "+git.RedactURL(url), err)
	}
	return src, nil
}

// credentials reads the Secret a secretRef names; no reference means anonymous access.
func (a *gitAccess) credentials(ctx context.Context, namespace string, ref *kpov1.LocalReference) (git.Credentials, error) {
	if ref == nil {
		return git.Credentials{}, nil
	}
	secret := &corev1.Secret{}
	if err := a.apiReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return git.Credentials{}, &stepError{
				Reason: kpov1.SecretNotFoundReason, RetryAfter: maxRetryAfter,
				Err: fmt.Errorf("secret %q named by secretRef does not exist in namespace %q: create it or fix the reference", ref.Name, namespace),
			}
		}
		return git.Credentials{}, fmt.Errorf("reading secret %q: %w", ref.Name, err)
	}
	creds, err := git.CredentialsFromSecret(secret)
	if err != nil {
		return git.Credentials{}, &stepError{
			Reason: kpov1.InvalidCredentialsReason, RetryAfter: maxRetryAfter,
			Err: fmt.Errorf("secret %q: %w", ref.Name, err),
		}
	}
	return creds, nil
}

// urlUserinfo matches the userinfo of a URL in free text: the scheme, then everything up to
// the last "@" before the host ends ("/", "?", "#" or white space), so that a password
// holding an unescaped "@" goes too.
var urlUserinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s]*@`)

// redactURLs removes the userinfo of every URL in s: user names go too, because hosts such
// as GitHub take a token as the user name. scp-like "git@host:path" has no "://" and is kept.
func redactURLs(s string) string {
	return urlUserinfo.ReplaceAllString(s, "$1")
}

// redactedError is an error whose text has no URL userinfo; errors.Is and errors.As still
// see the error it wraps.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redactURLs(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// redacted wraps err so that its text holds no URL userinfo; nil stays nil.
func redacted(err error) error {
	if _, done := err.(redactedError); done || err == nil {
		return err
	}
	return redactedError{err: err}
}

// rootCause is the innermost error's text, trimmed; transport errors hold no credentials
// (internal/git redacts them).
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return strings.TrimSpace(err.Error())
		}
		err = next
	}
}

// keyedMutex is a set of mutexes created on demand, one per key.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*sync.Mutex{}
	}
	m, ok := k.locks[key]
	if !ok {
		m = &sync.Mutex{}
		k.locks[key] = m
	}
	k.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// cacheKey identifies a Repository's clone in the Git cache: one clone per Repository object,
// so credentials of one Repository never serve another.
func cacheKey(repo *kpov1.Repository) string { return string(repo.UID) }

func branchOf(repo *kpov1.Repository) string {
	if repo.Spec.Git.Branch == "" {
		return "main"
	}
	return repo.Spec.Git.Branch
}

// commitAuthor is the identity of commits the manager makes for repo.
func commitAuthor(repo *kpov1.Repository) (string, string) {
	name, email := repo.Spec.Git.Author, repo.Spec.Git.Email
	if name == "" {
		name = "kpo"
	}
	if email == "" {
		email = "kpo@kpo.dev"
	}
	return name, email
}

// publishedFiles reads a revision's files (at status.commit) from Git: from the manager's clone as it
// is (the sync that read the revision fetched its commit), fetching only when the commit is
// not there.
func (a *gitAccess) publishedFiles(ctx context.Context, repo *kpov1.Repository, pr *kpov1.PackageRevision) (map[string][]byte, error) {
	defer a.lock(repo)()
	dir := discovery.PackagePath(repo.Spec.Git.Directory, pr.Spec.PackageName)
	if creds, err := a.credentials(ctx, repo.Namespace, repo.Spec.Git.SecretRef); err == nil {
		if src, err := a.cache.Open(ctx, cacheKey(repo), repo.Spec.Git.Repo, creds); err == nil {
			if files, err := readPackage(src, pr.Status.Commit, dir, pr.Name); err == nil {
				return files, nil
			}
		}
	}
	src, err := a.open(ctx, repo)
	if err != nil {
		return nil, gitStepError("reading "+pr.Name, err)
	}
	return readPackage(src, pr.Status.Commit, dir, pr.Name)
}
