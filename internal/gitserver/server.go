// Package gitserver runs a real Git smart-HTTP server on loopback by putting the system
// `git http-backend` behind net/http/cgi. Tests use it as the remote of a Repository, and a
// development command uses it to serve a sample repository. It depends only on the standard
// library and the git binary; it never imports go-git, so it cannot mask bugs in the code
// under test that does.
package gitserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi" //nolint:gosec // G504: httpoxy (CVE-2016-5386) was fixed in Go 1.6.3; this module needs Go 1.26
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// readHeaderTimeout bounds how long a client may take to send its request headers, so a
// stalled connection does not hold a server goroutine forever.
const readHeaderTimeout = 30 * time.Second

// Options configures a Server.
type Options struct {
	// Root is the directory holding the bare repositories. When empty, a temporary directory
	// is created and removed by Close.
	Root string
	// Username and Password, when Username is not empty, are the only credentials accepted
	// (HTTP basic auth) for every request, fetches included.
	Username, Password string
	// Addr is the listen address; "127.0.0.1:0" (a free loopback port) when empty.
	Addr string
}

// Server is a running Git smart-HTTP server. It is safe for concurrent use.
type Server struct {
	root     string
	ownsRoot bool
	opts     Options
	git      string
	backend  string
	listener net.Listener
	http     *http.Server
	served   chan error

	closeOnce sync.Once
	closeErr  error
}

// Start starts a server for the repositories below opts.Root and returns once it accepts
// connections.
func Start(opts Options) (*Server, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git binary not found: %w", err)
	}
	out, err := exec.Command(gitPath, "--exec-path").Output() //nolint:gosec // G204: the git binary found on PATH, with a fixed argument
	if err != nil {
		return nil, fmt.Errorf("git --exec-path: %w", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		return nil, fmt.Errorf("git http-backend not available: %w", err)
	}

	s := &Server{opts: opts, git: gitPath, backend: backend, root: opts.Root}
	if s.root == "" {
		if s.root, err = os.MkdirTemp("", "kpo-gitserver-"); err != nil {
			return nil, err
		}
		s.ownsRoot = true
	} else if err := os.MkdirAll(s.root, 0o750); err != nil {
		return nil, err
	}
	if s.root, err = filepath.Abs(s.root); err != nil {
		s.removeRoot()
		return nil, err
	}

	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if s.listener, err = net.Listen("tcp", addr); err != nil {
		s.removeRoot()
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: readHeaderTimeout}
	s.served = make(chan error, 1)
	go func() { s.served <- s.http.Serve(s.listener) }()
	return s, nil
}

// URL returns the base URL of the server, http://127.0.0.1:PORT, without a trailing slash.
func (s *Server) URL() string {
	return "http://" + s.listener.Addr().String()
}

// RepoURL returns the clone URL of the repository name: URL() + "/" + name + ".git".
func (s *Server) RepoURL(name string) string {
	return s.URL() + "/" + name + ".git"
}

// Root returns the directory holding the bare repositories.
func (s *Server) Root() string {
	return s.root
}

// Close stops accepting connections, waits for in-flight requests to finish and removes
// the root directory if Start created it.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		err := s.http.Shutdown(context.Background())
		if serveErr := <-s.served; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		if s.ownsRoot {
			err = errors.Join(err, os.RemoveAll(s.root))
		}
		s.closeErr = err
	})
	return s.closeErr
}

func (s *Server) removeRoot() {
	if s.ownsRoot {
		_ = os.RemoveAll(s.root)
	}
}

// gitProtocolPattern bounds what a client may pass through the Git-Protocol header into the
// environment of http-backend (it enables protocol v2).
var gitProtocolPattern = regexp.MustCompile(`^[a-zA-Z0-9=:._-]+$`)

// ServeHTTP authenticates the request, answers 404 for anything that is not a repository
// below the root and hands the rest to git http-backend.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Username != "" && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="kpo-gitserver", charset="UTF-8"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if !s.repoExists(r.URL.Path) {
		http.NotFound(w, r)
		return
	}

	// net/http/cgi refuses chunked request bodies, and git sends pushes larger than its
	// http.postBuffer (1 MiB) chunked: spool the body so the CGI gets a CONTENT_LENGTH.
	if r.Body != nil && r.Body != http.NoBody {
		body, size, err := spool(r.Body)
		if err != nil {
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		defer func() {
			_ = body.Close()
			_ = os.Remove(body.Name())
		}()
		r.Body = body
		r.ContentLength = size
		r.TransferEncoding = nil
		r.Header.Del("Transfer-Encoding")
	}

	env := append(gitConfigEnv(),
		"GIT_PROJECT_ROOT="+s.root,
		"GIT_HTTP_EXPORT_ALL=1",
		// http-backend enables receive-pack only for authenticated users unless configured.
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.receivepack",
		"GIT_CONFIG_VALUE_0=true",
	)
	if p := r.Header.Get("Git-Protocol"); p != "" && gitProtocolPattern.MatchString(p) {
		env = append(env, "GIT_PROTOCOL="+p)
	}
	if s.opts.Username != "" {
		env = append(env, "REMOTE_USER="+s.opts.Username)
	}
	h := &cgi.Handler{
		Path:   s.backend,
		Dir:    s.root,
		Env:    env,
		Stderr: io.Discard,
	}
	h.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(s.opts.Username)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.Password)) == 1
	return userOK && passOK
}

// repoExists reports whether the URL path names a bare repository below the root: the
// first path element ending in ".git" ends the repository name.
func (s *Server) repoExists(urlPath string) bool {
	if strings.Contains(urlPath, "..") {
		return false
	}
	parts := strings.Split(strings.TrimPrefix(path.Clean("/"+urlPath), "/"), "/")
	for i, p := range parts {
		if strings.HasSuffix(p, ".git") && p != ".git" {
			dir := filepath.Join(s.root, filepath.FromSlash(strings.Join(parts[:i+1], "/")))
			fi, err := os.Stat(filepath.Join(dir, "HEAD"))
			return err == nil && fi.Mode().IsRegular()
		}
	}
	return false
}

func spool(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "kpo-gitserver-body-")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, body)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, 0, err
	}
	return f, n, nil
}

// gitEnv returns the process environment without any GIT_* variable, plus settings that
// keep the developer's own git configuration out of every git this package runs.
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, gitConfigEnv()...)
}

// gitConfigEnv keeps system and global git configuration away from a git process.
func gitConfigEnv() []string {
	return []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0"}
}
