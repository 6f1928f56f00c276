package git

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func secret(typ corev1.SecretType, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds"}, Type: typ, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestCredentialsFromSecret_readsSupportedTypes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret *corev1.Secret
		want   Credentials
	}{
		{"basic-auth", secret(corev1.SecretTypeBasicAuth, map[string]string{"username": "u", "password": "p"}),
			Credentials{Username: "u", Password: "p"}},
		{"basic-auth with ca", secret(corev1.SecretTypeBasicAuth, map[string]string{"username": "u", "password": "p", "ca.crt": "PEM"}),
			Credentials{Username: "u", Password: "p", CABundle: []byte("PEM")}},
		{"opaque bearer token", secret(corev1.SecretTypeOpaque, map[string]string{"bearerToken": "tok"}),
			Credentials{BearerToken: "tok"}},
		{"opaque username/password", secret(corev1.SecretTypeOpaque, map[string]string{"username": "u", "password": "p"}),
			Credentials{Username: "u", Password: "p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(CredentialsFromSecret(tc.secret)).To(Equal(tc.want))
		})
	}
}

func TestCredentialsFromSecret_missingKeyNamesKeyNotValue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secret  *corev1.Secret
		wantKey string
	}{
		{"basic-auth without password", secret(corev1.SecretTypeBasicAuth, map[string]string{"username": "secret-user-value"}), `"password"`},
		{"basic-auth without username", secret(corev1.SecretTypeBasicAuth, map[string]string{"password": "secret-pass-value"}), `"username"`},
		{"opaque with password only", secret(corev1.SecretTypeOpaque, map[string]string{"password": "secret-pass-value"}), `"username"`},
		{"opaque empty", secret(corev1.SecretTypeOpaque, nil), `"bearerToken"`},
		{"unsupported type", secret(corev1.SecretTypeDockerConfigJson, map[string]string{"password": "secret-pass-value"}), "unsupported type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := CredentialsFromSecret(tc.secret)
			g.Expect(err).To(MatchError(ErrInvalidCredentials))
			g.Expect(err.Error()).To(ContainSubstring(tc.wantKey))
			g.Expect(err.Error()).NotTo(ContainSubstring("secret-"))
		})
	}
	_, err := CredentialsFromSecret(nil)
	NewWithT(t).Expect(err).To(MatchError(ErrInvalidCredentials))
}

func TestCredentials_string_neverPrintsSecrets(t *testing.T) {
	g := NewWithT(t)
	for _, c := range []Credentials{
		{Username: "u", Password: "hunter2-secret", CABundle: []byte("PEM")},
		{BearerToken: "tok-secret-123"},
		{},
	} {
		for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(&c)} {
			g.Expect(s).NotTo(ContainSubstring("secret"))
		}
	}
	g.Expect(Credentials{Username: "u", Password: "p"}.String()).To(ContainSubstring("username=u"))
}

func TestRedactURL_removesUserinfoFromAnyInput(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"user and password", "https://alice:s3cret@git.example.com/org/repo.git", "https://git.example.com/org/repo.git"},
		{"token as user name", "https://ghp_T0KEN@github.com/org/repo", "https://github.com/org/repo"},
		{"empty password", "http://alice:@host:8080/r", "http://host:8080/r"},
		{"escaped password", "https://alice:p%40ss%2Fw@host/r?x=1#f", "https://host/r?x=1#f"},
		{"no userinfo", "https://host/org/repo.git", "https://host/org/repo.git"},
		{"ssh user", "ssh://git@host:22/org/repo.git", "ssh://host:22/org/repo.git"},
		{"file URL", "file:///srv/git/repo.git", "file:///srv/git/repo.git"},
		{"local path", "/srv/git/repo.git", "/srv/git/repo.git"},
		{"scp-like address keeps its user", "git@github.com:org/repo.git", "git@github.com:org/repo.git"},
		{"empty", "", ""},
		{"unparsable: bad escape in password", "https://alice:50%@host/r", "https://host/r"},
		{"unparsable: # in password", "https://alice:pa#ss@host/r", "https://host/r"},
		{"unparsable: control character", "https://alice:pw@host/r\x7f", "https://host/r\x7f"},
		{"password with / read as a port and path", "https://alice:12/34@host/r", "https://host/r"},
		{"password with ? read as a query", "https://alice:12?34@host/r", "https://host/r"},
		{"token with / read as host and path", "https://TOK/EN@host/r", "https://host/r"},
		{"password with @", "https://alice:p@ss@host/r", "https://host/r"},
		{"no scheme, user and password", "alice:s3cret@host/r", "host/r"},
		{"user name with @ and password with /", "https://a@bcde:12/ssss@host/r", "https://host/r"},
		{"@ in the path goes too", "https://host/r@v1", "https://v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(RedactURL(tc.raw)).To(Equal(tc.want))
		})
	}
}

// FuzzRedactURL checks that no password or user name put into a URL, escaped or not,
// survives RedactURL.
func FuzzRedactURL(f *testing.F) {
	f.Add("https", "alice", "s3cret", "host/org/repo.git")
	f.Add("http", "TOKEN", "", "host:8080/r?x=1#y")
	f.Add("ssh", "git", "pa/ss#wo?rd", "host/r")
	f.Add("https", "a:b", "c@d", "host")
	f.Add("file", "", "", "/srv/repo")
	f.Fuzz(func(t *testing.T, scheme, user, password, rest string) {
		for _, raw := range []string{
			scheme + "://" + user + ":" + password + "@" + rest,
			scheme + "://" + url.UserPassword(user, password).String() + "@" + rest,
		} {
			got := RedactURL(raw)
			for _, secret := range []string{user, password, url.QueryEscape(password)} {
				if len(secret) < 4 || strings.Contains(scheme+"://"+rest, secret) {
					continue // too short to tell from the rest of the URL
				}
				if strings.Contains(got, secret) {
					t.Fatalf("RedactURL(%q) = %q still holds %q", raw, got, secret)
				}
			}
		}
	})
}

func TestCache_open_unparsableURLErrorHoldsNoPassword(t *testing.T) {
	g := NewWithT(t)
	_, err := NewCache(t.TempDir()).Open(context.Background(), "k", "https://alice:pa55%w0rd@host/r", Credentials{})
	g.Expect(err).To(MatchError(ContainSubstring(`invalid repository URL "https://host/r"`)))
	g.Expect(err.Error()).NotTo(ContainSubstring("pa55"))
}
