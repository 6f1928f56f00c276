package kpoctl

import (
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strconv"

	"github.com/spf13/cobra"

	"kpo.dev/kpo/internal/ui"
)

// uiOptions are the flags of kpoctl ui.
type uiOptions struct {
	address string
	port    int
	noOpen  bool
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
  kpoctl ui --port 9000 --no-open`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return u.run(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&u.address, "address", "127.0.0.1", "Address to listen on; keep a loopback address: the UI acts with your credentials.")
	f.IntVar(&u.port, "port", 8765, "Port to listen on (0 picks a free one).")
	f.BoolVar(&u.noOpen, "no-open", false, "Print the URL without opening a browser.")
	return cmd
}

func (u *uiOptions) run(cmd *cobra.Command, o *globalOptions) error {
	cfg, ns, err := o.restConfig()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(u.address, strconv.Itoa(u.port)))
	if err != nil {
		return fmt.Errorf("listening on %s:%d: %w (pick another with --port)", u.address, u.port, err)
	}
	srv, err := ui.New(ui.Options{Config: cfg, Namespace: ns}, l.Addr().String())
	if err != nil {
		_ = l.Close()
		return err
	}
	if ip := net.ParseIP(u.address); ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(o.streams.ErrOut, "warning: the UI listens on %s, not a loopback address: anyone who reaches it with the token acts as you\n", u.address)
	}
	fmt.Fprintf(o.streams.Out, "kpo UI: %s\n", srv.URL())
	if !u.noOpen {
		openBrowser(srv.URL())
	}
	return srv.Serve(cmd.Context(), l)
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
