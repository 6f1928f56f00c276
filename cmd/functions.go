package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/render"
)

// functionFlags configure how KRM functions that kpo does not build in are evaluated.
type functionFlags struct {
	namespace, wrapperImage, serviceAccount string
	allowlist, execFunctions, entrypoints   string
	timeout                                 time.Duration
	cacheSize                               int
}

func (f *functionFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.namespace, "function-namespace", "kpo-fn", "Namespace of function Jobs.")
	fs.StringVar(&f.wrapperImage, "function-wrapper-image", "kpo-fn-wrapper:latest", "Image holding /kpo-fn-wrapper, copied into function pods.")
	fs.StringVar(&f.serviceAccount, "function-service-account", "kpo-fn-uploader", "Service account of the container that uploads a function's output.")
	fs.StringVar(&f.allowlist, "function-image-allowlist", "", "Comma-separated images that may run as Jobs; a trailing * matches a prefix. Empty: none.")
	fs.StringVar(&f.execFunctions, "exec-functions", "", "Comma-separated image=binary pairs run as local processes (development).")
	fs.StringVar(&f.entrypoints, "function-entrypoints", "", "Comma-separated image=entrypoint pairs for images whose function is not at "+job.DefaultEntrypoint+".")
	fs.DurationVar(&f.timeout, "function-timeout", 2*time.Minute, "Time limit of one function run.")
	fs.IntVar(&f.cacheSize, "function-cache-size", render.DefaultCacheSize, "Function results kept in memory; a negative value disables the cache.")
}

// selector builds the evaluator selection the flags describe.
func (f *functionFlags) selector(c client.Client, reader client.Reader) (*fn.Selector, error) {
	execs, err := pairs(f.execFunctions)
	if err != nil {
		return nil, fmt.Errorf("--exec-functions: %w", err)
	}
	entrypoints, err := pairs(f.entrypoints)
	if err != nil {
		return nil, fmt.Errorf("--function-entrypoints: %w", err)
	}
	var exec *render.ExecEvaluator
	if len(execs) > 0 {
		exec = &render.ExecEvaluator{Binaries: execs, Timeout: f.timeout}
	}
	jobs := &job.Evaluator{
		Client: c, Reader: reader, Namespace: f.namespace, WrapperImage: f.wrapperImage,
		ServiceAccount: f.serviceAccount, Allowlist: list(f.allowlist), Entrypoints: entrypoints, Timeout: f.timeout,
	}
	return fn.NewSelector(exec, jobs, f.cacheSize), nil
}

func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func pairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range list(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not name=value", kv)
		}
		out[render.ImageName(k)] = v
	}
	return out, nil
}
