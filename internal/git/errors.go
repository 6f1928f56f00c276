package git

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Sentinel errors. Every error returned by this package that has one of these causes wraps
// it; match with errors.Is.
var (
	// ErrAuthenticationFailed: the remote refused the credentials (HTTP 401/403).
	ErrAuthenticationFailed = errors.New("authentication failed")
	// ErrRepositoryNotFound: the remote has no repository at the URL (HTTP 404).
	ErrRepositoryNotFound = errors.New("repository not found")
	// ErrBranchNotFound: the branch does not exist in the local clone.
	ErrBranchNotFound = errors.New("branch not found")
	// ErrNotFound: a commit, ref or path does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnreachable: the remote could not be reached (DNS, connection refused, TLS).
	ErrUnreachable = errors.New("remote unreachable")
	// ErrNonFastForward: a compare-and-swap ref update lost a race: the remote ref no
	// longer has the value the update was based on. Retry with fresh state.
	ErrNonFastForward = errors.New("remote ref changed (non-fast-forward)")
	// ErrNoChanges: a commit would not change anything.
	ErrNoChanges = errors.New("no changes")
	// ErrInvalidCredentials: a Secret does not hold usable credentials.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrSymlink: a package holds a symbolic link. kpo refuses such packages rather than
	// dropping the link (a copy would silently lose it) or following it (it could point
	// outside the package). The error names the path and the link target.
	ErrSymlink = errors.New("package contains a symlink")
	// ErrSubmodule: a package holds a Git submodule (gitlink). kpo cannot store the
	// submodule's content, so it refuses the package instead of silently dropping it.
	ErrSubmodule = errors.New("package contains a submodule")
)

// classify maps an error from go-git or the network to one of the sentinels, or nil.
func classify(err error) error {
	for _, e := range unwrapAll(err) {
		switch {
		case errors.Is(e, transport.ErrAuthenticationRequired),
			errors.Is(e, transport.ErrAuthorizationFailed),
			errors.Is(e, transport.ErrInvalidAuthMethod):
			return ErrAuthenticationFailed
		case errors.Is(e, transport.ErrRepositoryNotFound):
			return ErrRepositoryNotFound
		}
		var dnsErr *net.DNSError
		var opErr *net.OpError
		var unknownAuthority x509.UnknownAuthorityError
		var hostnameErr x509.HostnameError
		var certInvalid x509.CertificateInvalidError
		var tlsVerify *tls.CertificateVerificationError
		switch {
		case errors.As(e, &dnsErr), errors.As(e, &opErr),
			errors.As(e, &unknownAuthority), errors.As(e, &hostnameErr), errors.As(e, &certInvalid),
			errors.As(e, &tlsVerify),
			errors.Is(e, syscall.ECONNREFUSED), errors.Is(e, syscall.EHOSTUNREACH),
			errors.Is(e, syscall.ENETUNREACH), errors.Is(e, syscall.ECONNRESET):
			return ErrUnreachable
		}
		if strings.Contains(e.Error(), "tls: ") || strings.Contains(e.Error(), "x509: ") {
			return ErrUnreachable
		}
	}
	if strings.Contains(strings.ToLower(err.Error()), "repository not found") {
		return ErrRepositoryNotFound
	}
	return nil
}

// unwrapAll returns err and every error it wraps, including the causes go-git keeps in
// UnexpectedError and PermanentError (which have no Unwrap method).
func unwrapAll(err error) []error {
	var out []error
	queue := []error{err}
	for len(queue) > 0 && len(out) < 64 {
		e := queue[0]
		queue = queue[1:]
		if e == nil {
			continue
		}
		out = append(out, e)
		switch x := e.(type) {
		case *plumbing.UnexpectedError:
			queue = append(queue, x.Err)
		case *plumbing.PermanentError:
			queue = append(queue, x.Err)
		case interface{ Unwrap() []error }:
			queue = append(queue, x.Unwrap()...)
		case interface{ Unwrap() error }:
			queue = append(queue, x.Unwrap())
		}
	}
	return out
}

// remoteError builds the error for a failed remote operation: it names the operation and
// the URL without userinfo, wraps the sentinel the cause maps to and never contains a
// secret. The cause stays in the chain only when its text holds no secret.
func remoteError(op, rawURL string, creds Credentials, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, RedactURL(rawURL), err)
	}
	kind := classify(err)
	msg := err.Error()
	clean := creds.redact(msg)
	switch {
	case kind != nil && clean == msg:
		return fmt.Errorf("%s %s: %w: %w", op, RedactURL(rawURL), kind, err)
	case kind != nil:
		return fmt.Errorf("%s %s: %w: %s", op, RedactURL(rawURL), kind, clean)
	case clean == msg:
		return fmt.Errorf("%s %s: %w", op, RedactURL(rawURL), err)
	default:
		return fmt.Errorf("%s %s: %s", op, RedactURL(rawURL), clean)
	}
}
