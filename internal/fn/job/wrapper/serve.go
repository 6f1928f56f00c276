package wrapper

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Paths of the warm pod's server.
const (
	// RunPath takes a POST whose body is the input ResourceList and answers with the outcome:
	// a JSON object of the keys Execute returns (values base64, as JSON encodes bytes).
	RunPath = "/run"
	// HealthPath answers 200 once the server listens.
	HealthPath = "/healthz"
)

// TokenEnv names the environment variable that gives serve the bearer token every request to
// RunPath must carry: the pool makes one per pod, so that nothing else that reaches the pod's
// address (another pod, where no NetworkPolicy is enforced) can run the function or hold up
// the pod. serve removes it from its environment before any function runs.
const TokenEnv = "KPO_FN_TOKEN" //nolint:gosec // G101: the name of a variable, not a credential

// MaxInput bounds a request's ResourceList (the manager's packages are ConfigMaps, under 1 MiB;
// this leaves room for what a pipeline adds).
const MaxInput = 32 << 20

func serveCmd(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", ":9446", "address to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: kpo-fn-wrapper serve [--listen ADDR] -- ENTRYPOINT [ARGS...]")
	}
	token := os.Getenv(TokenEnv)
	if token == "" {
		return fmt.Errorf("serve needs the bearer token of its requests in $%s", TokenEnv)
	}
	if err := os.Unsetenv(TokenEnv); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: RequireToken(token, Handler(fs.Args(), PodScratch)), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Scratch is what a warm pod's function container may write besides its own process (the root
// filesystem and the wrapper's volume are read-only): serve empties it after each run, so that
// one run (of one namespace's package) leaves nothing for the next.
type Scratch struct {
	// Dirs are emptied (kept themselves); Files are truncated.
	Dirs, Files []string
}

// PodScratch is a warm pod's: its memory-backed /dev/shm and the termination message file the
// kubelet mounts.
var PodScratch = Scratch{Dirs: []string{"/dev/shm"}, Files: []string{"/dev/termination-log"}}

// empty removes what the directories hold and truncates the files, as far as this process may.
func (s Scratch) empty() {
	for _, dir := range s.Dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	for _, f := range s.Files {
		_ = os.Truncate(f, 0) // absent outside a pod
	}
}

// RequireToken serves h's RunPath only to requests that carry token as their bearer token;
// HealthPath stays open (it runs nothing).
func RequireToken(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != HealthPath && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, "a run needs the pod's bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Handler is the warm pod's server: each POST to RunPath runs command once with the body on
// stdin, one run at a time (the pool sends a pod one request at a time; this keeps a stray
// second one from sharing its CPU and memory limits), and then empties scratch. A request cancelled by the client (its timeout) kills the
// function. It checks no token: serve puts RequireToken in front.
func Handler(command []string, scratch Scratch) http.Handler {
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc(HealthPath, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc(RunPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST a ResourceList", http.StatusMethodNotAllowed)
			return
		}
		input, err := io.ReadAll(io.LimitReader(r.Body, MaxInput+1))
		if err != nil {
			http.Error(w, fmt.Sprintf("reading the ResourceList: %v", err), http.StatusBadRequest)
			return
		}
		if len(input) > MaxInput {
			http.Error(w, fmt.Sprintf("the ResourceList is over %d bytes", MaxInput), http.StatusRequestEntityTooLarge)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		out := Execute(r.Context(), bytes.NewReader(input), command)
		scratch.empty()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}
