package kpoctl

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"kpo.dev/kpo/internal/ui"
)

// uiOptions are the flags of kpoctl ui.
type uiOptions struct {
	address string
	port    int
	noOpen  bool
	// inCluster serves the UI from a pod to users who sign in with their own bearer token.
	inCluster bool
	publicURL string
	apiCAFile string
}

func newUICommand(o *globalOptions) *cobra.Command {
	u := &uiOptions{}
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve kpo's web UI on this machine, acting with your kubeconfig identity",
		Long: `ui serves kpo's web UI on 127.0.0.1 and opens it in your browser. Every action the UI takes
is an API call made with your kubeconfig's identity, as kubectl makes it: RBAC and kpo's
admission policies decide, and the UI never holds more rights than you. The URL it prints
carries a token that changes at each start; keep it to yourself.`,
		Example: `  kpoctl ui
  kpoctl ui --port 9000 --no-open

  # In a pod (config/ui): every user signs in with their own token
  kpoctl ui --in-cluster --address 0.0.0.0 --port 8080 --public-url https://kpo.example.com -n team-a`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return u.run(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&u.address, "address", "127.0.0.1", "Address to listen on; keep a loopback address: the UI acts with your credentials.")
	f.IntVar(&u.port, "port", 8765, "Port to listen on (0 picks a free one).")
	f.BoolVar(&u.noOpen, "no-open", false, "Print the URL without opening a browser.")
	f.BoolVar(&u.inCluster, "in-cluster", false, "Serve the UI from a pod (config/ui): users sign in with their own bearer token, or an authenticating proxy forwards it in the Authorization header; the pod's own credentials are never used.")
	f.StringVar(&u.publicURL, "public-url", "", "With --in-cluster: the URL users open (e.g. https://kpo.example.com); requests must name its host and origin.")
	f.StringVar(&u.apiCAFile, "api-ca-file", "/var/run/kube-root-ca/ca.crt", "With --in-cluster: the CA bundle of the API server (the kube-root-ca.crt ConfigMap, mounted).")
	return cmd
}

func (u *uiOptions) run(cmd *cobra.Command, o *globalOptions) error {
	opts, err := u.options(o)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(u.address, strconv.Itoa(u.port)))
	if err != nil {
		return fmt.Errorf("listening on %s:%d: %w (pick another with --port)", u.address, u.port, err)
	}
	srv, err := ui.New(opts, l.Addr().String())
	if err != nil {
		_ = l.Close()
		return err
	}
	if ip := net.ParseIP(u.address); !u.inCluster && (ip == nil || !ip.IsLoopback()) {
		fmt.Fprintf(o.streams.ErrOut, "warning: the UI listens on %s, not a loopback address: anyone who reaches it with the token acts as you\n", u.address)
	}
	fmt.Fprintf(o.streams.Out, "kpo UI: %s\n", srv.URL())
	if !u.noOpen && !u.inCluster {
		openBrowser(srv.URL())
	}
	return srv.Serve(cmd.Context(), l)
}

// options are the UI server's options: the kubeconfig's identity on a desk, or in a pod the
// API server's address and CA alone (users bring their own tokens).
func (u *uiOptions) options(o *globalOptions) (ui.Options, error) {
	if !u.inCluster {
		cfg, ns, err := o.restConfig()
		if err != nil {
			return ui.Options{}, err
		}
		return ui.Options{Config: cfg, Namespace: ns}, nil
	}
	if u.publicURL == "" {
		return ui.Options{}, errors.New("--in-cluster needs --public-url, the URL users open (e.g. https://kpo.example.com)")
	}
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return ui.Options{}, errors.New("--in-cluster runs in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
	}
	if _, err := os.Stat(u.apiCAFile); err != nil {
		return ui.Options{}, fmt.Errorf("the API server's CA bundle (--api-ca-file): %w", err)
	}
	ns := o.namespace
	if ns == "" {
		ns = "default"
	}
	cfg := &rest.Config{Host: "https://" + net.JoinHostPort(host, port), TLSClientConfig: rest.TLSClientConfig{CAFile: u.apiCAFile}}
	return ui.Options{Config: cfg, Namespace: ns, UserTokens: true, PublicURL: u.publicURL}, nil
}

// openBrowser opens url in the desktop's browser, when there is one; the URL is printed
// either way.
func openBrowser(url string) {
	var c *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		c = exec.Command("open", url)
	case "windows":
		c = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		c = exec.Command("xdg-open", url)
	}
	if c.Start() == nil {
		go func() { _ = c.Wait() }()
	}
}
