package git

import (
	"fmt"
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
