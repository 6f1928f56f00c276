// Package ui is kpo's web UI: a small HTTP server on the user's machine that serves embedded,
// hand-written HTML, CSS and JavaScript, and makes every Kubernetes call with the user's own
// kubeconfig identity. It proxies a short list of API paths (kpo.dev kinds, ConfigMaps,
// SelfSubjectAccessReviews) to the kube-apiserver through the user's rest.Config transport,
// as `kubectl proxy` would, so RBAC and kpo's admission policies decide exactly as they do
// for kubectl, and renders packages in process for the live preview.
//
// The server holds the user's credentials, so every API request must carry the per-start
// token (first in the URL it prints, then in an HttpOnly SameSite=Strict cookie), name the
// bound address in its Host header (no DNS rebinding) and, when it changes anything, come from
// the UI's own origin (no cross-site request forgery). It sends no CORS headers.
package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

//go:embed assets
var assets embed.FS

// cookiePrefix names the cookie that holds the token once the browser has opened the printed
// URL; the port follows, as browsers share cookies between the ports of a host and two UIs
// (two kubeconfigs) may run side by side.
const cookiePrefix = "kpo-ui-token-"

// Options configure a Server.
type Options struct {
	// Config is the user's rest.Config: every API call is made with it.
	Config *rest.Config
	// Namespace is the namespace the UI opens on (the kubeconfig context's).
	Namespace string
	// Token is the secret the browser must present; empty means a new random one. Unused
	// with UserTokens.
	Token string
	// UserTokens is the in-cluster mode: each user signs in with their own bearer token
	// (pasted into the page, then kept in an HttpOnly cookie) or an authenticating proxy
	// forwards it in the Authorization header; every API call is made with that token alone.
	// Config then only says where the API server is and which CA signs it: its own
	// credentials (a service account's token, a client certificate, impersonation) are never
	// used, so without a user's token nothing is done for anyone.
	UserTokens bool
	// PublicURL is the address users open in UserTokens mode (https://kpo.example.com): the
	// Host and Origin every request must name. Required with UserTokens.
	PublicURL string
}

// Server is the UI's HTTP handler, bound to one listening address.
type Server struct {
	opts   Options
	cookie string
	host   string // host:port the browser must name in its Host header
	hosts  []string
	// origin is the one origin allowed to change anything in UserTokens mode; locally it is
	// http:// and the Host header.
	origin  string
	proxy   *httputil.ReverseProxy
	client  client.Client
	handler http.Handler
}

// New returns the UI server for a listener on addr (host:port, as the listener reports it).
func New(opts Options, addr string) (*Server, error) {
	if opts.Token == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("making the UI token: %w", err)
		}
		opts.Token = hex.EncodeToString(b)
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	cfg := rest.CopyConfig(opts.Config)
	var mapper meta.RESTMapper
	var public *url.URL
	if opts.UserTokens {
		var err error
		if public, err = publicOrigin(opts.PublicURL); err != nil {
			return nil, err
		}
		// Where the API server is and its CA, nothing else: each request carries its user's token.
		cfg = rest.AnonymousClientConfig(cfg)
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return userTokenTransport{rt} })
		// Discovery would be anonymous: the kinds the UI uses are listed instead.
		mapper = staticMapper()
	}
	cfg.UserAgent = "kpoctl-ui"
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the API server transport: %w", err)
	}
	target, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("reading the API server address: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: newScheme(), Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server %s: %w", cfg.Host, err)
	}
	_, port, _ := net.SplitHostPort(addr)
	s := &Server{opts: opts, cookie: cookiePrefix + port, host: addr, hosts: allowedHosts(addr), client: c}
	if opts.UserTokens {
		s.cookie, s.host, s.hosts = signInCookie, public.Host, []string{public.Host}
		s.origin = public.Scheme + "://" + public.Host
	}
	s.proxy = &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path = strings.TrimSuffix(target.Path, "/") + strings.TrimPrefix(r.In.URL.Path, proxyPrefix)
			r.Out.URL.RawPath = ""
			// The browser's cookies, origin and any credentials it sent stay here: the
			// API server sees the user's kubeconfig identity alone.
			for _, h := range []string{"Cookie", "Authorization", "Origin", "Referer", "Impersonate-User", "Impersonate-Group", "Impersonate-Uid"} {
				r.Out.Header.Del(h)
			}
			for k := range r.Out.Header {
				if strings.HasPrefix(k, "Impersonate-Extra-") {
					r.Out.Header.Del(k)
				}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "the API server could not be reached: "+err.Error())
		},
	}
	s.handler = s.routes()
	return s, nil
}

// publicOrigin parses the URL users open in UserTokens mode. It must be an origin alone: the
// UI serves its page and API from / (an Ingress may not mount it under a path). A scheme's
// default port is dropped, as browsers drop it from the Host and Origin headers they send.
func publicOrigin(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("the in-cluster UI needs the public URL users open, e.g. https://kpo.example.com (got %q)", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the public URL %q must be a scheme and host alone, e.g. https://kpo.example.com: the UI is served from /", raw)
	}
	if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
		u.Host = strings.TrimSuffix(u.Host, ":"+p)
	}
	return &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}, nil
}

// allowedHosts are the Host headers a browser sends for addr: the address itself, and
// localhost for a loopback address.
func allowedHosts(addr string) []string {
	hosts := []string{addr}
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			hosts = append(hosts, net.JoinHostPort("localhost", port))
		}
	}
	return hosts
}

// URL is the address to open, with the token (in UserTokens mode, the public URL: users sign
// in there).
func (s *Server) URL() string {
	if s.opts.UserTokens {
		return s.origin + "/"
	}
	return "http://" + s.host + "/?token=" + url.QueryEscape(s.opts.Token)
}

// ServeHTTP applies the security rules, then routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
		// For the kubelet's probes, which name the pod's address: it says nothing but ok.
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	if !s.hostAllowed(r.Host) {
		open := "http://" + s.host
		if s.opts.UserTokens {
			open = s.origin
		}
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not this server's address: open %s", r.Host, open))
		return
	}
	s.handler.ServeHTTP(w, r)
}

func (s *Server) hostAllowed(host string) bool {
	for _, h := range s.hosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

// Serve serves the UI on l until ctx ends, then lets the requests in flight finish (for a
// few seconds at most) before it returns: in a pod, the kubelet's SIGTERM ends ctx.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(l); err != http.ErrServerClosed {
		return err
	}
	<-stopped
	return nil
}

// routes maps the UI's paths. Pages and assets need no token (they hold no data); the API
// paths need the token and, when they change anything, the UI's origin.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", s.index)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	mux.Handle(proxyPrefix+"/", s.guard(http.HandlerFunc(s.proxyAPI)))
	if s.opts.UserTokens {
		mux.HandleFunc("GET /ui/session", s.userSession)
		mux.HandleFunc("POST /ui/signin", s.signIn)
		mux.HandleFunc("POST /ui/signout", s.signOut)
	} else {
		mux.Handle("GET /ui/session", s.guard(http.HandlerFunc(s.session)))
	}
	// Every route that reads or writes anything needs the user's credentials; none that
	// writes is a GET.
	for pattern, h := range map[string]http.HandlerFunc{
		"POST /ui/render":          s.render,
		"GET /ui/content":          s.getContent,
		"PUT /ui/content":          s.putContent,
		"POST /ui/content/request": s.requestContentHandler,
		"POST /ui/diff":            s.diff,
		"POST /ui/lifecycle":       s.moveLifecycle,
		"POST /ui/delete":          s.deleteRevision,
		"POST /ui/drafts":          s.createDraft,
		"POST /ui/resolve":         s.resolveConflicts,
		"POST /ui/upgrade":         s.upgrade,
		"POST /ui/rollback":        s.rollback,
		"POST /ui/form/read":       s.form(false),
		"POST /ui/form/write":      s.form(true),
	} {
		mux.Handle(pattern, s.guard(h))
	}
	return mux
}

// index serves the page; with ?token= it checks the token, stores it in the cookie and
// redirects to the bare URL, so the token leaves the address bar and the history.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if t := r.URL.Query().Get("token"); t != "" && !s.opts.UserTokens {
		if !s.tokenMatches(t) {
			writeError(w, http.StatusUnauthorized, "wrong token: open the URL that `kpoctl ui` printed")
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: s.cookie, Value: s.opts.Token, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode,
		})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

func (s *Server) tokenMatches(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.opts.Token)) == 1
}

// guard requires the token cookie on every API request, and the UI's own origin on every
// request that may change something.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.UserTokens {
			token := userToken(r, s.cookie)
			if token == "" {
				writeError(w, http.StatusUnauthorized, "not signed in: sign in with your bearer token, or through the authenticating proxy")
				return
			}
			r = r.WithContext(withUserToken(r.Context(), token))
		} else if c, err := r.Cookie(s.cookie); err != nil || !s.tokenMatches(c.Value) {
			writeError(w, http.StatusUnauthorized, "not signed in: open the URL that `kpoctl ui` printed (it carries a token that changes at each start)")
			return
		}
		if !s.sameOrigin(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses requests from other sites (Sec-Fetch-Site), whatever the method (a GET
// changes nothing, but its answer holds the user's data), and requests that may change
// something from any origin but the UI's own.
func (s *Server) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		writeError(w, http.StatusForbidden, "requests from other sites ("+site+") may not use this server")
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		own := s.origin
		if own == "" {
			own = "http://" + r.Host
		}
		if origin := r.Header.Get("Origin"); origin != own {
			writeError(w, http.StatusForbidden, fmt.Sprintf("origin %q may not change anything here: only pages of %s may", origin, own))
			return false
		}
	}
	return true
}

// session tells the page the namespace it starts on.
func (s *Server) session(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"namespace": s.opts.Namespace})
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(kpov1.AddToScheme(s))
	return s
}
