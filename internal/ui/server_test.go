package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
)

const testToken = "t0ken-for-tests"

// fakeAPIServer records the requests the UI forwards to it.
type fakeAPIServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	f := &fakeAPIServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.Clone(r.Context()))
		f.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/selfsubjectreviews") {
			w.Header().Set("Content-Type", "application/json")
			if r.Header.Get("Authorization") != "Bearer alice-token" {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"kind":"Status","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
				return
			}
			_, _ = io.WriteString(w, `{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","status":{"userInfo":{"username":"alice"}}}`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/forbidden") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"kind":"Status","status":"Failure","message":"packagerevisions.kpo.dev \"forbidden\" is forbidden: User \"alice\" cannot update","code":403}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"kind":"PackageRevisionList","items":[]}`)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPIServer) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.seen...)
}

// newTestServer is the UI for a user whose kubeconfig holds a bearer token, bound (in name)
// to 127.0.0.1:8765.
func newTestServer(t *testing.T) (*Server, *fakeAPIServer) {
	t.Helper()
	api := newFakeAPIServer(t)
	s, err := New(Options{Config: &rest.Config{Host: api.URL, BearerToken: "users-own-token"}, Namespace: "team", Token: testToken}, "127.0.0.1:8765")
	if err != nil {
		t.Fatal(err)
	}
	return s, api
}

type req struct {
	method, target string
	host           string
	cookie         string
	origin         string
	body           string
}

func (s *Server) do(r req) *httptest.ResponseRecorder {
	hr := httptest.NewRequest(r.method, r.target, strings.NewReader(r.body))
	hr.Host = "127.0.0.1:8765"
	if r.host != "" {
		hr.Host = r.host
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: s.cookie, Value: r.cookie})
	}
	if r.origin != "" {
		hr.Header.Set("Origin", r.origin)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, hr)
	return w
}

func message(w *httptest.ResponseRecorder) string {
	var st apiStatus
	_ = json.Unmarshal(w.Body.Bytes(), &st)
	return st.Message
}

const origin = "http://127.0.0.1:8765"

func TestServer_token_isExchangedForAStrictHttpOnlyCookie(t *testing.T) {
	g := NewWithT(t)
	s, _ := newTestServer(t)
	g.Expect(s.URL()).To(Equal("http://127.0.0.1:8765/?token=" + testToken))

	w := s.do(req{method: "GET", target: "/?token=wrong"})
	g.Expect(w.Code).To(Equal(http.StatusUnauthorized))
	g.Expect(w.Result().Cookies()).To(BeEmpty())

	w = s.do(req{method: "GET", target: "/?token=" + testToken})
	g.Expect(w.Code).To(Equal(http.StatusSeeOther))
	g.Expect(w.Header().Get("Location")).To(Equal("/"), "the token leaves the address bar")
	cookies := w.Result().Cookies()
	g.Expect(cookies).To(HaveLen(1))
	g.Expect(cookies[0].Name).To(Equal("kpo-ui-token-8765"), "one cookie per port: two UIs may run side by side")
	g.Expect(cookies[0].Value).To(Equal(testToken))
	g.Expect(cookies[0].HttpOnly).To(BeTrue())
	g.Expect(cookies[0].SameSite).To(Equal(http.SameSiteStrictMode))
}

func TestServer_apiPaths_needTheToken(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	for _, target := range []string{"/k8s/apis/kpo.dev/v1alpha1/namespaces/team/packagerevisions", "/ui/session", "/ui/content?namespace=team&name=x"} {
		w := s.do(req{method: "GET", target: target})
		g.Expect(w.Code).To(Equal(http.StatusUnauthorized), target)
		g.Expect(message(w)).To(ContainSubstring("open the URL that `kpoctl ui` printed"))
		w = s.do(req{method: "GET", target: target, cookie: "guessed"})
		g.Expect(w.Code).To(Equal(http.StatusUnauthorized), target)
	}
	w := s.do(req{method: "POST", target: "/ui/render", origin: origin, body: `{"files":{}}`})
	g.Expect(w.Code).To(Equal(http.StatusUnauthorized))
	g.Expect(api.requests()).To(BeEmpty())
}

func TestServer_foreignHost_isRefused(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	// A DNS-rebinding page reaches 127.0.0.1 under its own name.
	for _, host := range []string{"evil.example:8765", "127.0.0.1:9999", "localhost.evil.example:8765"} {
		w := s.do(req{method: "GET", target: "/k8s/apis/kpo.dev/v1alpha1/namespaces/team/packagerevisions", host: host, cookie: testToken})
		g.Expect(w.Code).To(Equal(http.StatusMisdirectedRequest), host)
		w = s.do(req{method: "GET", target: "/", host: host})
		g.Expect(w.Code).To(Equal(http.StatusMisdirectedRequest), host)
	}
	g.Expect(api.requests()).To(BeEmpty())
	g.Expect(s.do(req{method: "GET", target: "/", host: "localhost:8765"}).Code).To(Equal(http.StatusOK))
}

func TestServer_changes_needTheUIsOrigin(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	target := "/k8s/apis/kpo.dev/v1alpha1/namespaces/team/packagerevisions/app"
	for _, o := range []string{"", "http://evil.example", "null", "http://127.0.0.1:9999"} {
		w := s.do(req{method: "PATCH", target: target, cookie: testToken, origin: o, body: `{}`})
		g.Expect(w.Code).To(Equal(http.StatusForbidden), o)
		g.Expect(message(w)).To(ContainSubstring("may not change anything"))
	}
	// Nor may another site's page read through it, even with a GET.
	hr := httptest.NewRequest("GET", "/k8s/apis/kpo.dev/v1alpha1/namespaces/team/packagerevisions", nil)
	hr.Host = "127.0.0.1:8765"
	hr.AddCookie(&http.Cookie{Name: s.cookie, Value: testToken})
	hr.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, hr)
	g.Expect(rec.Code).To(Equal(http.StatusForbidden))
	g.Expect(api.requests()).To(BeEmpty())
	w := s.do(req{method: "PATCH", target: target, cookie: testToken, origin: origin, body: `{}`})
	g.Expect(w.Code).To(Equal(http.StatusOK))
	g.Expect(w.Header().Get("Access-Control-Allow-Origin")).To(BeEmpty(), "no CORS")
}

func TestServer_proxy_forwardsAllowedPathsWithTheUsersIdentityOnly(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	hr := httptest.NewRequest("GET", "/k8s/apis/kpo.dev/v1alpha1/namespaces/team/packagerevisions?labelSelector=a%3Db", nil)
	hr.Host = "127.0.0.1:8765"
	hr.AddCookie(&http.Cookie{Name: s.cookie, Value: testToken})
	hr.Header.Set("Authorization", "Bearer someone-elses")
	hr.Header.Set("Impersonate-User", "system:admin")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, hr)
	g.Expect(w.Code).To(Equal(http.StatusOK))
	seen := api.requests()
	g.Expect(seen).To(HaveLen(1))
	g.Expect(seen[0].URL.Path).To(Equal("/apis/kpo.dev/v1alpha1/namespaces/team/packagerevisions"))
	g.Expect(seen[0].URL.Query().Get("labelSelector")).To(Equal("a=b"))
	g.Expect(seen[0].Header.Get("Authorization")).To(Equal("Bearer users-own-token"))
	g.Expect(seen[0].Header.Get("Impersonate-User")).To(BeEmpty())
	g.Expect(seen[0].Header.Get("Cookie")).To(BeEmpty(), "the UI's token stays here")

	// The API server's refusal reaches the page as it is.
	w = s.do(req{method: "PATCH", target: "/k8s/apis/kpo.dev/v1alpha1/namespaces/team/packagerevisions/forbidden", cookie: testToken, origin: origin, body: `{}`})
	g.Expect(w.Code).To(Equal(http.StatusForbidden))
	g.Expect(message(w)).To(ContainSubstring(`User "alice" cannot update`))
}

func TestServer_proxy_refusesSecretsAndEverythingOffTheList(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	refused := []struct{ method, path string }{
		{"GET", "/api/v1/namespaces/team/secrets"},
		{"GET", "/api/v1/namespaces/team/secrets/git-creds"},
		{"GET", "/api/v1/secrets"},
		{"GET", "/api/v1/namespaces/team/configmaps/../secrets/git-creds"},
		{"GET", "/api/v1/namespaces/team/configmaps/%2e%2e/secrets/git-creds"},
		{"GET", "/api/v1/namespaces/team/pods"},
		{"PUT", "/api/v1/namespaces/team/configmaps/content"},
		{"DELETE", "/api/v1/namespaces/team/configmaps/content"},
		{"GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles"},
		{"GET", "/apis/kpo.dev/v1alpha1/namespaces/team/secrets"},
		{"POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews"},
		{"GET", "/apis/kpo.dev/v1alpha1/namespaces/team/packagerevisions?watch=true"},
		{"GET", "/version"},
	}
	for _, r := range refused {
		w := s.do(req{method: r.method, target: "/k8s" + r.path, cookie: testToken, origin: origin})
		g.Expect(w.Code).To(BeNumerically(">=", 300), r.method+" "+r.path)
		g.Expect(w.Code).NotTo(Equal(http.StatusOK), r.method+" "+r.path)
	}
	g.Expect(api.requests()).To(BeEmpty(), "nothing reached the API server")
	w := s.do(req{method: "GET", target: "/k8s/api/v1/namespaces/team/secrets/git-creds", cookie: testToken})
	g.Expect(message(w)).To(ContainSubstring("Secrets are never served"))

	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/namespaces/team/configmaps/content"},
		{"POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"},
		{"PATCH", "/apis/kpo.dev/v1alpha1/namespaces/team/repositories/blueprints"},
		{"GET", "/apis/kpo.dev/v1alpha1/packagerevisions"},
	} {
		w := s.do(req{method: r.method, target: "/k8s" + r.path, cookie: testToken, origin: origin, body: `{}`})
		g.Expect(w.Code).To(Equal(http.StatusOK), r.method+" "+r.path)
	}
}

func TestServer_render_previewsBuiltinsAndSkipsOthers(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	files := map[string]string{
		"Kptfile": `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: app
pipeline:
  mutators:
  - image: ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2.5
    configMap:
      team: blue
  - image: example.com/private/not-built-in:v1
`,
		"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n",
	}
	body, _ := json.Marshal(renderRequest{Files: files})
	w := s.do(req{method: "POST", target: "/ui/render", cookie: testToken, origin: origin, body: string(body)})
	g.Expect(w.Code).To(Equal(http.StatusOK))
	var got renderResponse
	g.Expect(json.Unmarshal(w.Body.Bytes(), &got)).To(Succeed())
	g.Expect(got.Error).To(BeEmpty())
	g.Expect(got.Files["cm.yaml"]).To(ContainSubstring("team: blue"))
	g.Expect(got.Results).To(HaveLen(2))
	g.Expect(got.Results[0].Skipped).To(BeFalse())
	g.Expect(got.Results[0].ExitCode).To(Equal(0))
	g.Expect(got.Results[1].Image).To(Equal("example.com/private/not-built-in:v1"))
	g.Expect(got.Results[1].Skipped).To(BeTrue(), "a function kpo does not build in is not run")
	g.Expect(api.requests()).To(BeEmpty(), "a preview writes nothing anywhere")

	// A failing render says why, with what ran.
	files["cm.yaml"] = "a: [b\n"
	body, _ = json.Marshal(renderRequest{Files: files})
	w = s.do(req{method: "POST", target: "/ui/render", cookie: testToken, origin: origin, body: string(body)})
	g.Expect(w.Code).To(Equal(http.StatusOK))
	var failed renderResponse
	g.Expect(json.Unmarshal(w.Body.Bytes(), &failed)).To(Succeed())
	g.Expect(failed.Error).To(ContainSubstring("cm.yaml"))
	g.Expect(failed.Files).To(BeEmpty())
}

func TestServer_render_boundsItsInput(t *testing.T) {
	g := NewWithT(t)
	s, _ := newTestServer(t)
	big := `{"files":{"a.yaml":"` + strings.Repeat("x", maxBody) + `"}}`
	w := s.do(req{method: "POST", target: "/ui/render", cookie: testToken, origin: origin, body: big})
	g.Expect(w.Code).To(Equal(http.StatusBadRequest))
	g.Expect(message(w)).To(ContainSubstring("under 4 MiB"))
}

func TestServer_content_refusesUnboundedOrBlindSaves(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	w := s.do(req{method: "PUT", target: "/ui/content", cookie: testToken, origin: origin,
		body: `{"namespace":"team","name":"app","files":{"Kptfile":"x"}}`})
	g.Expect(w.Code).To(Equal(http.StatusBadRequest))
	g.Expect(message(w)).To(ContainSubstring("resourceVersion"))
	w = s.do(req{method: "GET", target: "/ui/content", cookie: testToken})
	g.Expect(w.Code).To(Equal(http.StatusBadRequest))
	g.Expect(message(w)).To(ContainSubstring("name the revision"))
	w = s.do(req{method: "PUT", target: "/ui/content", cookie: testToken, origin: "http://evil.example", body: `{}`})
	g.Expect(w.Code).To(Equal(http.StatusForbidden))
	g.Expect(api.requests()).To(BeEmpty())
}

// TestServer_writes_areNeverGETs: the routes that may change something (ask the manager for
// content, diff published revisions) answer only non-GET requests, which need the UI's origin;
// a GET of the content never asks for anything.
func TestServer_writes_areNeverGETs(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	for _, target := range []string{"/ui/diff?namespace=team&from=a&to=b", "/ui/content/request?namespace=team&name=a"} {
		w := s.do(req{method: "GET", target: target, cookie: testToken})
		g.Expect(w.Code).To(Equal(http.StatusMethodNotAllowed), target)
	}
	for _, target := range []string{"/ui/diff", "/ui/content/request"} {
		w := s.do(req{method: "POST", target: target, cookie: testToken, origin: "http://evil.example", body: `{"namespace":"team","name":"a","from":"a","to":"b"}`})
		g.Expect(w.Code).To(Equal(http.StatusForbidden), target)
		g.Expect(message(w)).To(ContainSubstring("may not change anything"))
	}
	g.Expect(api.requests()).To(BeEmpty())
	// A GET of the content reads the revision, and never patches it.
	_ = s.do(req{method: "GET", target: "/ui/content?namespace=team&name=a&request=true", cookie: testToken})
	for _, r := range api.requests() {
		g.Expect(r.Method).To(Equal(http.MethodGet), r.URL.Path)
	}
	g.Expect(api.requests()).NotTo(BeEmpty())
}

// TestServer_lifecycle_checksTheMoveBeforeAskingTheAPIServer: an unknown move, or one without
// the version the page showed, is refused before any API call.
func TestServer_lifecycle_checksTheMoveBeforeAskingTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	for _, body := range []string{`{"namespace":"team","name":"a","move":"publish","resourceVersion":"1"}`, `{"namespace":"team","name":"a","move":"approve"}`, `not json`} {
		w := s.do(req{method: "POST", target: "/ui/lifecycle", cookie: testToken, origin: origin, body: body})
		g.Expect(w.Code).To(Equal(http.StatusBadRequest), body)
	}
	w := s.do(req{method: "POST", target: "/ui/delete", cookie: testToken, origin: origin, body: `{"namespace":"team"}`})
	g.Expect(w.Code).To(Equal(http.StatusBadRequest))
	g.Expect(message(w)).To(ContainSubstring("name the revision"))
	g.Expect(api.requests()).To(BeEmpty())
}

// TestServer_drafts_andResolutions_areCheckedBeforeAnyAPICall: a draft needs its target and
// exactly one source, a resolution its choices and version; GETs of them are not served.
func TestServer_drafts_andResolutions_areCheckedBeforeAnyAPICall(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	for _, tc := range []struct{ target, body string }{
		{"/ui/drafts", `{"namespace":"team","repository":"r","packageName":"p","workspace":"w","source":{}}`},
		{"/ui/drafts", `{"namespace":"team","repository":"r","packageName":"p","workspace":"w","source":{"init":{},"copy":{"sourceRef":{"name":"x"}}}}`},
		{"/ui/drafts", `{"namespace":"team","packageName":"p","workspace":"w","source":{"init":{}}}`},
		{"/ui/resolve", `{"namespace":"team","name":"a","resourceVersion":"1","choices":{}}`},
		{"/ui/resolve", `{"namespace":"team","name":"a","choices":{"abc":"local"}}`},
	} {
		w := s.do(req{method: "POST", target: tc.target, cookie: testToken, origin: origin, body: tc.body})
		g.Expect(w.Code).To(Equal(http.StatusBadRequest), tc.body)
	}
	for _, target := range []string{"/ui/drafts", "/ui/resolve", "/ui/upgrade", "/ui/rollback", "/ui/lifecycle", "/ui/delete"} {
		g.Expect(s.do(req{method: "GET", target: target, cookie: testToken}).Code).To(Equal(http.StatusMethodNotAllowed), target)
		w := s.do(req{method: "POST", target: target, cookie: testToken, origin: "http://evil.example", body: `{}`})
		g.Expect(w.Code).To(Equal(http.StatusForbidden), target)
	}
	g.Expect(api.requests()).To(BeEmpty())
}

// newTokenServer is the in-cluster UI, whose config holds a service account's token and
// impersonation that must never be used, served as https://kpo.example.com.
func newTokenServer(t *testing.T) (*Server, *fakeAPIServer) {
	t.Helper()
	api := newFakeAPIServer(t)
	s, err := New(Options{Config: &rest.Config{Host: api.URL, BearerToken: "pods-own-token", Impersonate: rest.ImpersonationConfig{UserName: "admin"}},
		Namespace: "team", UserTokens: true, PublicURL: "https://kpo.example.com"}, "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	return s, api
}

func (s *Server) doAs(method, target, token, body string, header map[string]string) *httptest.ResponseRecorder {
	hr := httptest.NewRequest(method, target, strings.NewReader(body))
	hr.Host = "kpo.example.com"
	if token != "" {
		hr.AddCookie(&http.Cookie{Name: signInCookie, Value: token})
	}
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, hr)
	return w
}

// TestServer_userTokens_everyCallCarriesItsUsersTokenAndNoOtherIdentity: in-cluster, a request
// without a token is refused before the API server; with one (cookie or a proxy's
// Authorization header), the API server sees that token alone, never the pod's credentials nor
// impersonation.
func TestServer_userTokens_everyCallCarriesItsUsersTokenAndNoOtherIdentity(t *testing.T) {
	g := NewWithT(t)
	s, api := newTokenServer(t)
	list := "/k8s/apis/kpo.dev/v1alpha1/namespaces/team/packagerevisions"
	w := s.doAs("GET", list, "", "", nil)
	g.Expect(w.Code).To(Equal(http.StatusUnauthorized))
	g.Expect(message(w)).To(ContainSubstring("sign in"))
	g.Expect(api.requests()).To(BeEmpty())

	g.Expect(s.doAs("GET", list, "alice-token", "", nil).Code).To(Equal(http.StatusOK))
	g.Expect(s.doAs("GET", list, "", "", map[string]string{"Authorization": "Bearer bob-token"}).Code).To(Equal(http.StatusOK))
	seen := api.requests()
	g.Expect(seen).To(HaveLen(2))
	g.Expect(seen[0].Header.Get("Authorization")).To(Equal("Bearer alice-token"))
	g.Expect(seen[1].Header.Get("Authorization")).To(Equal("Bearer bob-token"))
	for _, r := range seen {
		g.Expect(r.Header.Get("Impersonate-User")).To(BeEmpty())
	}

	// The server's own calls too (a content read), and the Host and Origin are the public URL's.
	_ = s.doAs("GET", "/ui/content?namespace=team&name=app", "alice-token", "", nil)
	last := api.requests()[len(api.requests())-1]
	g.Expect(last.Header.Get("Authorization")).To(Equal("Bearer alice-token"))
	g.Expect(last.Header.Get("Impersonate-User")).To(BeEmpty())
	hr := httptest.NewRequest("GET", list, nil)
	hr.Host = "10.0.0.7:8080"
	hr.AddCookie(&http.Cookie{Name: signInCookie, Value: "alice-token"})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, hr)
	g.Expect(rec.Code).To(Equal(http.StatusMisdirectedRequest))
	w = s.doAs("POST", "/ui/lifecycle", "alice-token", `{}`, map[string]string{"Origin": "http://kpo.example.com"})
	g.Expect(w.Code).To(Equal(http.StatusForbidden))
	g.Expect(s.URL()).To(Equal("https://kpo.example.com/"))
	// The kubelet's probe needs no host, token or origin, and learns nothing.
	hr = httptest.NewRequest("GET", "/healthz", nil)
	hr.Host = "10.0.0.7:8080"
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, hr)
	g.Expect(rec.Code).To(Equal(http.StatusOK))
	g.Expect(rec.Body.String()).To(Equal("ok\n"))
}

// TestServer_userTokens_signIn_checksTheTokenAndKeepsItInAStrictCookie: a token the API server
// refuses sets nothing; one it accepts goes into a Secure HttpOnly SameSite=Strict cookie, and
// is not echoed.
func TestServer_userTokens_signIn_checksTheTokenAndKeepsItInAStrictCookie(t *testing.T) {
	g := NewWithT(t)
	s, _ := newTokenServer(t)
	own := map[string]string{"Origin": "https://kpo.example.com"}
	w := s.doAs("POST", "/ui/signin", "", `{"token":"stolen"}`, own)
	g.Expect(w.Code).To(Equal(http.StatusUnauthorized))
	g.Expect(w.Result().Cookies()).To(BeEmpty())
	g.Expect(w.Body.String()).NotTo(ContainSubstring("stolen"))

	g.Expect(s.doAs("POST", "/ui/signin", "", `{"token":"alice-token"}`, map[string]string{"Origin": "https://evil.example"}).Code).To(Equal(http.StatusForbidden))

	w = s.doAs("POST", "/ui/signin", "", `{"token":"alice-token"}`, own)
	g.Expect(w.Code).To(Equal(http.StatusOK))
	g.Expect(w.Body.String()).To(ContainSubstring(`"user":"alice"`))
	g.Expect(w.Body.String()).NotTo(ContainSubstring("alice-token"))
	c := w.Result().Cookies()
	g.Expect(c).To(HaveLen(1))
	g.Expect(c[0].Value).To(Equal("alice-token"))
	g.Expect(c[0].HttpOnly).To(BeTrue())
	g.Expect(c[0].Secure).To(BeTrue())
	g.Expect(c[0].SameSite).To(Equal(http.SameSiteStrictMode))

	w = s.doAs("GET", "/ui/session", "alice-token", "", nil)
	g.Expect(w.Body.String()).To(ContainSubstring(`"user":"alice"`))
	w = s.doAs("GET", "/ui/session", "", "", nil)
	g.Expect(w.Body.String()).To(ContainSubstring(`"signIn":"token"`))
	g.Expect(w.Body.String()).NotTo(ContainSubstring(`"user"`))
	// The local token of the desk mode does not sign anyone in here.
	g.Expect(s.doAs("GET", "/?token=anything", "", "", nil).Result().Cookies()).To(BeEmpty())
}

func TestNew_userTokens_needsThePublicURL(t *testing.T) {
	g := NewWithT(t)
	_, err := New(Options{Config: &rest.Config{Host: "https://127.0.0.1:6443"}, UserTokens: true}, "0.0.0.0:8080")
	g.Expect(err).To(MatchError(ContainSubstring("public URL")))
}

// TestServer_forms_editTheirFieldsAndKeepTheRest: a form reads a resource's fields (a
// ConfigMap's data in order, a Deployment's replicas and container images) and writes them back
// with every other field and comment kept; a file no form edits says why, and a write of a field
// outside the form, a duplicate key, an empty required field or a wrong number is refused.
func TestServer_forms_editTheirFieldsAndKeepTheRest(t *testing.T) {
	g := NewWithT(t)
	s, api := newTestServer(t)
	post := func(target string, v any) *httptest.ResponseRecorder {
		body, _ := json.Marshal(v)
		return s.do(req{method: "POST", target: target, cookie: testToken, origin: origin, body: string(body)})
	}
	read := func(file string) fileForm {
		w := post("/ui/form/read", fileForm{YAML: file})
		g.Expect(w.Code).To(Equal(http.StatusOK))
		var f fileForm
		g.Expect(json.Unmarshal(w.Body.Bytes(), &f)).To(Succeed())
		return f
	}
	write := func(file string, fields ...formField) (int, fileForm) {
		w := post("/ui/form/write", fileForm{YAML: file, Fields: fields})
		var f fileForm
		_ = json.Unmarshal(w.Body.Bytes(), &f)
		return w.Code, f
	}
	values := func(f fileForm) map[string]any {
		out := map[string]any{}
		for _, fd := range f.Fields {
			if fd.Type == fieldMap {
				out[strings.Join(fd.Path, ".")] = fd.Entries
			} else {
				out[strings.Join(fd.Path, ".")] = fd.Value
			}
		}
		return out
	}

	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  labels:\n    team: blue\ndata:\n  # the greeting\n  greeting: hello\n  size: small\n"
	f := read(cm)
	g.Expect(f.Kind).To(Equal("ConfigMap"))
	g.Expect(values(f)).To(Equal(map[string]any{"metadata.name": "app", "metadata.namespace": "",
		"data": [][2]string{{"greeting", "hello"}, {"size", "small"}}}))
	code, out := write(cm,
		formField{Path: []string{"metadata", "name"}, Value: "app"},
		formField{Path: []string{"metadata", "namespace"}, Value: "web"},
		formField{Path: []string{"data"}, Entries: [][2]string{{"greeting", "hi"}, {"color", "12"}}})
	g.Expect(code).To(Equal(http.StatusOK), out.Why)
	g.Expect(out.YAML).To(Equal("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  labels:\n    team: blue\n  namespace: web\n" +
		"data:\n  # the greeting\n  greeting: hi\n  color: \"12\"\n"))
	g.Expect(values(out)["data"]).To(Equal([][2]string{{"greeting", "hi"}, {"color", "12"}}), "the answer is the form of the new file")

	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2 # two for now\n  template:\n" +
		"    spec:\n      containers:\n      - name: app\n        image: nginx:1.25\n        ports:\n        - containerPort: 80\n      - name: log\n        image: busybox\n"
	f = read(deploy)
	g.Expect(f.Kind).To(Equal("Deployment"))
	g.Expect(values(f)).To(Equal(map[string]any{"metadata.name": "web", "metadata.namespace": "", "spec.replicas": "2",
		"spec.template.spec.containers.[name=app].image": "nginx:1.25", "spec.template.spec.containers.[name=log].image": "busybox",
		"spec.template.metadata.labels": [][2]string(nil)}))
	code, out = write(deploy,
		formField{Path: []string{"spec", "replicas"}, Value: "3"},
		formField{Path: []string{"spec", "template", "spec", "containers", "[name=app]", "image"}, Value: "nginx:1.27"},
		formField{Path: []string{"spec", "template", "metadata", "labels"}, Entries: [][2]string{{"app", "web"}}})
	g.Expect(code).To(Equal(http.StatusOK), out.Why)
	g.Expect(out.YAML).To(Equal("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3 # two for now\n  template:\n" +
		"    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n        ports:\n        - containerPort: 80\n      - name: log\n        image: busybox\n" +
		"    metadata:\n      labels:\n        app: web\n"))
	code, out = write(deploy, formField{Path: []string{"spec", "replicas"}, Value: ""})
	g.Expect(code).To(Equal(http.StatusOK), out.Why)
	g.Expect(out.YAML).NotTo(ContainSubstring("replicas"), "an empty optional field is removed")

	for _, other := range []string{
		"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\n",
		"a: [\n",
		"kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: a\n---\nkind: ConfigMap\napiVersion: v1\nmetadata:\n  name: b\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: ${N}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [1]\n",
	} {
		f := read(other)
		g.Expect(f.Kind).To(BeEmpty(), other)
		g.Expect(f.Why).NotTo(BeEmpty(), other)
	}
	for _, bad := range []struct {
		name, file string
		field      formField
	}{
		{"a duplicate key", cm, formField{Path: []string{"data"}, Entries: [][2]string{{"a", "1"}, {"a", "2"}}}},
		{"an empty name", cm, formField{Path: []string{"metadata", "name"}, Value: " "}},
		{"a field not in the form", cm, formField{Path: []string{"metadata", "labels"}, Entries: [][2]string{{"a", "1"}}}},
		{"a negative number", deploy, formField{Path: []string{"spec", "replicas"}, Value: "-1"}},
	} {
		code, out := write(bad.file, bad.field)
		g.Expect(code).To(Equal(http.StatusUnprocessableEntity), bad.name)
		g.Expect(out.YAML).To(BeEmpty(), bad.name)
	}
	g.Expect(api.requests()).To(BeEmpty(), "forms read and write no API object")
}
