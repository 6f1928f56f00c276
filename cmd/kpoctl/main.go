// Command kpoctl is kpo's command-line client: porchctl's repo and rpkg verbs against the
// cluster of your kubeconfig.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"kpo.dev/kpo/internal/kpoctl"
)

func main() {
	// kpoctl runs for a fraction of a second on packages that fit in memory many times over:
	// collecting garbage less often makes fn render on a large package markedly faster.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// SIGTERM too: the kubelet stops kpoctl ui's pod (config/ui) with it, and the server then
	// finishes the requests in flight.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := kpoctl.Run(ctx, os.Args[1:], kpoctl.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}
