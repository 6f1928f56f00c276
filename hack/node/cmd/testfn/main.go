// Command testfn is the entrypoint (/usr/local/bin/function) of the node tier's function
// images; its behaviour is fixed at build time with -ldflags "-X main.mode=...":
//
//	run:NAME   exec /usr/local/bin/kpo-fn NAME (a built-in compiled as a standalone function)
//	fail       write a few lines to stderr and exit 1 (a function that fails on purpose)
//	sleep      sleep for an hour (a function that exceeds any timeout)
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// mode is set with -ldflags.
var mode = "run:set-namespace"

// kpoFn is where the image holds kpo-fn (set with -ldflags for a variant run on the host).
var kpoFn = "/usr/local/bin/kpo-fn"

// FailureLines are what the failing function writes to stderr; the last one is the tail the
// tests look for.
var FailureLines = []string{"testfn: reading the input", "testfn: giving up", "testfn: failing on purpose"}

func main() {
	switch {
	case strings.HasPrefix(mode, "run:"):
		err := syscall.Exec(kpoFn, []string{kpoFn, strings.TrimPrefix(mode, "run:")}, os.Environ()) //nolint:gosec // G204: a test function; kpoFn and mode are fixed when it is built
		fmt.Fprintln(os.Stderr, "testfn:", err)
		os.Exit(2)
	case mode == "fail":
		_, _ = io.Copy(io.Discard, os.Stdin)
		for _, l := range FailureLines {
			fmt.Fprintln(os.Stderr, l)
		}
		os.Exit(1)
	case mode == "sleep":
		time.Sleep(time.Hour)
	default:
		fmt.Fprintf(os.Stderr, "testfn: unknown mode %q\n", mode)
		os.Exit(2)
	}
}
