// Command kpo-fn-wrapper runs a KRM function inside a pod of the job evaluator: a Job's pod, or
// a warm pod of its pool.
//
// Three roles, one binary, so a single small image serves them all:
//
//	kpo-fn-wrapper run --input FILE --output-dir DIR -- ENTRYPOINT [ARGS...]
//	    in the function's container: runs the function with the input ResourceList on stdin
//	    and writes its stdout, the tail of its stderr and its exit code into DIR, then DIR/done.
//	    It needs no credentials; the function container gets no service-account token.
//	kpo-fn-wrapper serve [--listen ADDR] -- ENTRYPOINT [ARGS...]
//	    in a warm function pod: serves POST /run, each request one run of the function with the
//	    body on stdin, answered with the same outcome (JSON); GET /healthz. No credentials either.
//	kpo-fn-wrapper upload --dir DIR --namespace NS --configmap NAME
//	    in the uploader container (which has the pod's narrow token): waits for DIR/done and
//	    writes the files into the output ConfigMap.
package main

import (
	"fmt"
	"os"

	"kpo.dev/kpo/internal/fn/job/wrapper"
)

func main() {
	if err := wrapper.Main(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kpo-fn-wrapper:", err)
		os.Exit(2)
	}
}
