package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// signInCookie holds a user's pasted bearer token in UserTokens mode (HttpOnly, SameSite
// Strict, Secure behind https).
const signInCookie = "kpo-ui-signin"

// maxTokenLength bounds a pasted token (service account tokens and OIDC ID tokens are a
// few KiB at most).
const maxTokenLength = 16 << 10

type userTokenKey struct{}

func withUserToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, userTokenKey{}, token)
}

// userToken is the bearer token of the request: the Authorization header an authenticating
// proxy forwards, else the cookie the sign-in set; "" when there is none.
func userToken(r *http.Request, cookie string) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	if c, err := r.Cookie(cookie); err == nil {
		return c.Value
	}
	return ""
}

// userTokenTransport puts the token of the request's user on every API call made for it, and
// sends the calls made without one unauthenticated: a call is never made with any identity
// but its user's.
type userTokenTransport struct {
	next http.RoundTripper
}

func (t userTokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Del("Authorization")
	if token, _ := r.Context().Value(userTokenKey{}).(string); token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return t.next.RoundTrip(r)
}

// staticMapper maps the kinds the UI's server reads and writes itself, so that no anonymous
// discovery is needed in UserTokens mode.
func staticMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	kpo := kpov1.GroupVersion
	for _, kind := range []string{"Repository", "PackageRevision", "PackageDraft", "PackageVariant", "PackageVariantSet"} {
		m.Add(kpo.WithKind(kind), meta.RESTScopeNamespace)
	}
	m.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: authenticationv1.GroupName, Version: "v1", Kind: "SelfSubjectReview"}, meta.RESTScopeRoot)
	return m
}

// userSession is GET /ui/session in UserTokens mode: the namespace, and who the API server
// says the user is, or that nobody has signed in yet (the page then asks for a token).
func (s *Server) userSession(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(w, r) {
		return
	}
	out := map[string]any{"namespace": s.opts.Namespace, "signIn": "token"}
	token := userToken(r, s.cookie)
	if token != "" {
		user, err := s.whoAmI(withUserToken(r.Context(), token))
		if err != nil {
			writeErr(w, err)
			return
		}
		out["user"] = user
	}
	writeJSON(w, http.StatusOK, out)
}

// whoAmI asks the API server who the context's token belongs to (a SelfSubjectReview).
func (s *Server) whoAmI(ctx context.Context) (string, error) {
	review := &authenticationv1.SelfSubjectReview{}
	if err := s.client.Create(ctx, review); err != nil {
		if apierrors.IsUnauthorized(err) {
			return "", &httpError{http.StatusUnauthorized, "the API server does not accept this token: sign in again"}
		}
		return "", err
	}
	return review.Status.UserInfo.Username, nil
}

// signIn is POST /ui/signin {token}: the token is checked with the API server (a
// SelfSubjectReview made with it) and kept in an HttpOnly cookie; it is never logged nor
// sent back.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(w, r) {
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	token := strings.TrimSpace(req.Token)
	if token == "" || len(token) > maxTokenLength || strings.ContainsAny(token, " ;,\"\\\r\n\t") {
		writeError(w, http.StatusBadRequest, "paste a bearer token (kubectl create token, or your identity provider's ID token)")
		return
	}
	user, err := s.whoAmI(withUserToken(r.Context(), token))
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			writeError(w, he.code, he.msg)
			return
		}
		writeError(w, http.StatusBadGateway, fmt.Sprintf("the API server could not check the token: %s", apiReason(err)))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.cookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: strings.HasPrefix(s.origin, "https://"),
	})
	writeJSON(w, http.StatusOK, map[string]string{"user": user})
}

// signOut is POST /ui/signout: the token cookie is removed.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(w, r) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: strings.HasPrefix(s.origin, "https://")})
	writeJSON(w, http.StatusOK, map[string]string{})
}

// apiReason is an API error's status reason, or a generic phrase: the message of a failed
// token check is not echoed, in case it repeats the request.
func apiReason(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return string(status.Status().Reason)
	}
	return "unreachable"
}
