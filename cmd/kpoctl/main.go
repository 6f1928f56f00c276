// Command kpoctl is kpo's command-line client: porchctl's repo and rpkg verbs against the
// cluster of your kubeconfig.
package main

import (
	"context"
	"os"
	"os/signal"

	"kpo.dev/kpo/internal/kpoctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := kpoctl.Run(ctx, os.Args[1:], kpoctl.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}
