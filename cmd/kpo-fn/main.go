// Command kpo-fn is a multi-call KRM function binary holding kpo's built-in
// catalog functions: `kpo-fn [flags] <name>` reads a ResourceList on stdin, runs
// the built-in <name> (set-namespace, set-labels, starlark, …), and writes the
// resulting ResourceList, results included, on stdout. When the function fails
// it still writes the ResourceList, prints the error on stderr and exits 1.
//
// Flags bound the run; the manager sets them when it runs user code (starlark)
// in kpo-fn rather than in its own process (package internal/fn/sandbox):
//
//	--memory-limit=512Mi  the process's memory budget: past it, the process dies with
//	                      "fatal error: out of memory" (exit code 2)
//	--timeout=30s         how long a starlark script may run
//
// It also serves benchmarks comparing in-process and exec evaluation, and
// container images for the job evaluator.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/fn/sandbox"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one function and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kpo-fn", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	memory := fs.String(sandbox.MemoryFlag, "", "Memory budget of the process (bytes, or a quantity such as 512Mi); none when empty.")
	timeout := fs.Duration(sandbox.TimeoutFlag, 0, "Time limit of a starlark script; the built-in default when zero.")
	usage := func() int {
		_, _ = fmt.Fprintf(stderr, "usage: kpo-fn [--%s=512Mi] [--%s=30s] <function> < resource-list.yaml\nfunctions: %s\n",
			sandbox.MemoryFlag, sandbox.TimeoutFlag, strings.Join(builtin.Names(), ", "))
		return 2
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return usage()
	}
	name := fs.Arg(0)
	p, ok := builtin.Lookup(name)
	if !ok {
		_, _ = fmt.Fprintf(stderr, "kpo-fn: unknown function %q; available: %s\n", name, strings.Join(builtin.Names(), ", "))
		return 2
	}
	if *memory != "" {
		q, err := resource.ParseQuantity(*memory)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "kpo-fn: --%s: %v\n", sandbox.MemoryFlag, err)
			return 2
		}
		// Before the input is read: everything the function does counts.
		if err := sandbox.LimitMemory(q.Value()); err != nil {
			_, _ = fmt.Fprintf(stderr, "kpo-fn: %v\n", err)
			return 2
		}
	}
	if s, ok := p.(*builtin.Starlark); ok && *timeout > 0 {
		s.Timeout = *timeout
	}
	if s, ok := p.(builtin.StderrSetter); ok {
		s.SetStderr(stderr)
	}
	rw := &kio.ByteReadWriter{Reader: stdin, Writer: stdout, KeepReaderAnnotations: true}
	if err := framework.Execute(p, rw); err != nil {
		_, _ = fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
