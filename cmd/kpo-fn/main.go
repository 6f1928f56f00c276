// Command kpo-fn is a multi-call KRM function binary holding kpo's built-in
// catalog functions: `kpo-fn <name>` reads a ResourceList on stdin, runs the
// built-in <name> (set-namespace, set-labels, starlark, …), and writes the
// resulting ResourceList, results included, on stdout. When the function fails
// it still writes the ResourceList, prints the error on stderr and exits 1.
//
// It serves benchmarks comparing in-process and exec evaluation, and container
// images for the job evaluator.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"kpo.dev/kpo/internal/fn/builtin"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one function and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" {
		_, _ = fmt.Fprintf(stderr, "usage: kpo-fn <function> < resource-list.yaml\nfunctions: %s\n", strings.Join(builtin.Names(), ", "))
		return 2
	}
	p, ok := builtin.Lookup(args[0])
	if !ok {
		_, _ = fmt.Fprintf(stderr, "kpo-fn: unknown function %q; available: %s\n", args[0], strings.Join(builtin.Names(), ", "))
		return 2
	}
	if s, ok := p.(builtin.StderrSetter); ok {
		s.SetStderr(stderr)
	}
	rw := &kio.ByteReadWriter{Reader: stdin, Writer: stdout, KeepReaderAnnotations: true}
	if err := framework.Execute(p, rw); err != nil {
		_, _ = fmt.Fprintf(stderr, "%s: %v\n", args[0], err)
		return 1
	}
	return 0
}
