package git

import (
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	corev1 "k8s.io/api/core/v1"
)

// Keys read from a credentials Secret.
const (
	SecretUsernameKey    = corev1.BasicAuthUsernameKey // "username"
	SecretPasswordKey    = corev1.BasicAuthPasswordKey // "password"
	SecretBearerTokenKey = "bearerToken"
	SecretCABundleKey    = "ca.crt"
)

// Credentials authenticate to a remote. The zero value means anonymous access.
type Credentials struct {
	Username, Password string
	// BearerToken, when set, is sent as "Authorization: Bearer"; it wins over
	// Username/Password.
	BearerToken string
	// CABundle holds PEM certificates trusted in addition to the system roots.
	CABundle []byte
}

// CredentialsFromSecret reads credentials from a Secret of type kubernetes.io/basic-auth
// (username and password) or Opaque (bearerToken, or username and password). ca.crt is
// optional in both. A missing key gives an error wrapping ErrInvalidCredentials that names
// the key, never a value.
func CredentialsFromSecret(s *corev1.Secret) (Credentials, error) {
	if s == nil {
		return Credentials{}, fmt.Errorf("%w: no secret", ErrInvalidCredentials)
	}
	var c Credentials
	c.CABundle = s.Data[SecretCABundleKey]
	get := func(key string) (string, bool) {
		v, ok := s.Data[key]
		if !ok || len(v) == 0 {
			return "", false
		}
		return string(v), true
	}
	need := func(key string) (string, error) {
		v, ok := get(key)
		if !ok {
			return "", fmt.Errorf("%w: secret %s/%s has no key %q", ErrInvalidCredentials, s.Namespace, s.Name, key)
		}
		return v, nil
	}
	var err error
	switch s.Type {
	case corev1.SecretTypeBasicAuth:
		if c.Username, err = need(SecretUsernameKey); err != nil {
			return Credentials{}, err
		}
		if c.Password, err = need(SecretPasswordKey); err != nil {
			return Credentials{}, err
		}
	case corev1.SecretTypeOpaque, "":
		if tok, ok := get(SecretBearerTokenKey); ok {
			c.BearerToken = tok
			break
		}
		_, hasUser := get(SecretUsernameKey)
		_, hasPass := get(SecretPasswordKey)
		if !hasUser && !hasPass {
			return Credentials{}, fmt.Errorf("%w: secret %s/%s has neither key %q nor keys %q and %q",
				ErrInvalidCredentials, s.Namespace, s.Name, SecretBearerTokenKey, SecretUsernameKey, SecretPasswordKey)
		}
		if c.Username, err = need(SecretUsernameKey); err != nil {
			return Credentials{}, err
		}
		if c.Password, err = need(SecretPasswordKey); err != nil {
			return Credentials{}, err
		}
	default:
		return Credentials{}, fmt.Errorf("%w: secret %s/%s has unsupported type %q",
			ErrInvalidCredentials, s.Namespace, s.Name, s.Type)
	}
	return c, nil
}

// String describes the credentials without revealing any secret.
func (c Credentials) String() string {
	var parts []string
	switch {
	case c.BearerToken != "":
		parts = append(parts, "bearerToken=<redacted>")
	case c.Username != "" || c.Password != "":
		parts = append(parts, "username="+c.Username, "password=<redacted>")
	default:
		parts = append(parts, "anonymous")
	}
	if len(c.CABundle) > 0 {
		parts = append(parts, fmt.Sprintf("caBundle=%d bytes", len(c.CABundle)))
	}
	return "Credentials{" + strings.Join(parts, ", ") + "}"
}

// GoString keeps %#v from printing the secrets too.
func (c Credentials) GoString() string { return c.String() }

// auth returns the go-git auth method for the credentials, nil for anonymous access.
func (c Credentials) auth() transport.AuthMethod {
	switch {
	case c.BearerToken != "":
		return &githttp.TokenAuth{Token: c.BearerToken}
	case c.Username != "" || c.Password != "":
		return &githttp.BasicAuth{Username: c.Username, Password: c.Password}
	}
	return nil
}

// redact replaces every secret of c in s.
func (c Credentials) redact(s string) string {
	for _, secret := range []string{c.Password, c.BearerToken} {
		if len(secret) >= 3 {
			s = strings.ReplaceAll(s, secret, "<redacted>")
		}
	}
	return s
}

// RedactURL returns raw without its userinfo, so it can go into an error, a log line or a
// status condition: everything between "://" and the last "@" after it is removed. The
// whole userinfo goes, not only the password, because hosts such as GitHub take a token as
// the user name (https://TOKEN@github.com/…).
//
// It works on the text rather than on url.Parse's result so that any input is safe: a
// secret that is not percent-encoded can make url.Parse fail, or succeed and read part of
// the secret as the host, a port, the path or the fragment ("/", "?" and "#" end the
// host). The price is that a URL with an "@" in its path loses more than its userinfo.
// Without "://", text up to the last "@" is removed only when a ":" precedes it, so
// scp-like "git@host:repo" addresses (whose user is not a secret) come back unchanged.
func RedactURL(raw string) string {
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			return scheme + "://" + rest[at+1:]
		}
		return raw
	}
	if at := strings.LastIndexByte(raw, '@'); at >= 0 && strings.Contains(raw[:at], ":") {
		return raw[at+1:]
	}
	return raw
}
