// Command kpoctl is kpo's command-line client: porchctl's repo and rpkg verbs against the
// cluster of your kubeconfig.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"

	"kpo.dev/kpo/internal/kpoctl"
)

func main() {
	// kpoctl runs for a fraction of a second on packages that fit in memory many times over:
	// collecting garbage less often makes fn render on a large package markedly faster.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := kpoctl.Run(ctx, os.Args[1:], kpoctl.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}
