package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/fn/sandbox"
)

// sandboxOff is the --function-sandbox-binary value that runs user-code built-ins in process.
const sandboxOff = "none"

// functionFlags configure how KRM functions are evaluated: the sandbox of the built-ins that
// run user code, and the functions kpo does not build in.
type functionFlags struct {
	namespace, wrapperImage, serviceAccount string
	allowlist, execFunctions, entrypoints   string
	timeout                                 time.Duration
	cacheSize                               int
	podsPerImage                            int
	podIdleTimeout                          time.Duration

	sandboxBinary      string
	sandboxMemory      resource.Quantity
	sandboxTimeout     time.Duration
	sandboxParallelism int
}

func (f *functionFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.namespace, "function-namespace", "kpo-fn", "Namespace of function Jobs.")
	fs.StringVar(&f.wrapperImage, "function-wrapper-image", "kpo-fn-wrapper:latest", "Image holding /kpo-fn-wrapper, copied into function pods.")
	fs.StringVar(&f.serviceAccount, "function-service-account", "kpo-fn-uploader", "Service account of the container that uploads a function's output.")
	fs.StringVar(&f.allowlist, "function-image-allowlist", "", "Comma-separated images that may run as Jobs; a trailing * matches a prefix. Empty: none.")
	fs.StringVar(&f.execFunctions, "exec-functions", "", "Comma-separated image=binary pairs run as local processes (development).")
	fs.StringVar(&f.entrypoints, "function-entrypoints", "", "Comma-separated image=entrypoint pairs for images whose function is not at "+job.DefaultEntrypoint+".")
	fs.DurationVar(&f.timeout, "function-timeout", 2*time.Minute, "Time limit of one function run.")
	fs.IntVar(&f.podsPerImage, "function-pods-per-image", 0, "Warm function pods kept per allowed image: a run goes to an idle one over HTTP, at its pod address, instead of starting a Job. "+
		"0 (the default, for a manager outside the cluster, which cannot reach pod addresses): every run is a Job. The installed manager runs with "+strconv.Itoa(job.DefaultPodsPerImage)+".")
	fs.DurationVar(&f.podIdleTimeout, "function-pod-idle-timeout", job.DefaultIdleTimeout, "How long a warm function pod waits for work before it is deleted.")
	fs.IntVar(&f.cacheSize, "function-cache-size", fn.DefaultCacheSize, "Function results kept in memory; a negative value disables the cache.")

	fs.StringVar(&f.sandboxBinary, "function-sandbox-binary", "", "The kpo-fn binary that runs built-in functions executing the package's own code (starlark) in a child process, under the budgets below. "+
		"Empty: kpo-fn next to the manager's executable, else in process; \""+sandboxOff+"\": in process (step and time limits only, no memory bound).")
	f.sandboxMemory = *resource.NewQuantity(sandbox.DefaultMemory, resource.BinarySI)
	fs.Var(quantityFlag{&f.sandboxMemory}, "function-sandbox-memory", "Memory budget of one sandboxed function run (its whole process).")
	fs.DurationVar(&f.sandboxTimeout, "function-sandbox-timeout", sandbox.DefaultTimeout, "Time budget of one sandboxed function run.")
	fs.IntVar(&f.sandboxParallelism, "function-sandbox-parallelism", sandbox.DefaultParallelism, "Sandboxed function runs at once; more wait, so their budgets together stay inside the manager's memory limit.")
}

// sandbox builds the function sandbox the flags describe; nil runs user code in process.
func (f *functionFlags) sandbox() (*sandbox.Evaluator, error) {
	if f.sandboxMemory.Value() <= 0 {
		return nil, fmt.Errorf("--function-sandbox-memory must be positive, got %s", f.sandboxMemory.String())
	}
	if f.sandboxTimeout <= 0 {
		return nil, fmt.Errorf("--function-sandbox-timeout must be positive, got %s", f.sandboxTimeout)
	}
	if f.sandboxParallelism <= 0 {
		return nil, fmt.Errorf("--function-sandbox-parallelism must be positive, got %d", f.sandboxParallelism)
	}
	log := ctrl.Log.WithName("setup")
	bin := f.sandboxBinary
	switch bin {
	case sandboxOff:
		log.Info("function sandbox disabled: starlark runs in the manager's process without a memory budget")
		return nil, nil
	case "":
		located, err := sandbox.Locate()
		if errors.Is(err, fs.ErrNotExist) {
			log.Info("no "+sandbox.BinaryName+" next to the manager: starlark runs in the manager's process without a memory budget; ship "+
				sandbox.BinaryName+" with the manager or set --function-sandbox-binary", "error", err.Error())
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("--function-sandbox-binary: locating %s: %w", sandbox.BinaryName, err)
		}
		bin = located
	default:
		if err := sandbox.CheckBinary(bin); err != nil {
			return nil, fmt.Errorf("--function-sandbox-binary: %w", err)
		}
	}
	log.Info("function sandbox", "binary", bin, "memory", sandbox.FormatBytes(f.sandboxMemory.Value()),
		"timeout", f.sandboxTimeout.String(), "parallelism", f.sandboxParallelism, "functions", sandbox.UserCodeFunctions)
	return &sandbox.Evaluator{Binary: bin, Memory: f.sandboxMemory.Value(), Timeout: f.sandboxTimeout, Parallelism: f.sandboxParallelism}, nil
}

// quantityFlag is a flag.Value of a resource quantity (512Mi, 1Gi, or bytes).
type quantityFlag struct{ q *resource.Quantity }

func (v quantityFlag) String() string {
	if v.q == nil {
		return ""
	}
	return v.q.String()
}

func (v quantityFlag) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return err
	}
	*v.q = q
	return nil
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
	var exec *fn.ExecEvaluator
	if len(execs) > 0 {
		exec = &fn.ExecEvaluator{Binaries: execs, Timeout: f.timeout}
	}
	box, err := f.sandbox()
	if err != nil {
		return nil, err
	}
	jobs := &job.Evaluator{
		Client: c, Reader: reader, Namespace: f.namespace, WrapperImage: f.wrapperImage,
		ServiceAccount: f.serviceAccount, Allowlist: list(f.allowlist), Entrypoints: entrypoints, Timeout: f.timeout,
	}
	s := fn.NewSelector(exec, jobs, f.cacheSize)
	s.Sandbox = box
	if f.podsPerImage < 0 {
		return nil, fmt.Errorf("--function-pods-per-image must be 0 (no pool) or more, got %d", f.podsPerImage)
	}
	if f.podsPerImage > 0 && len(jobs.Allowlist) > 0 {
		s.Pool = &job.Pool{Jobs: jobs, PodsPerImage: f.podsPerImage, IdleTimeout: f.podIdleTimeout}
		ctrl.Log.WithName("setup").Info("warm function pods", "namespace", jobs.Namespace, "podsPerImage", f.podsPerImage,
			"idleTimeout", f.podIdleTimeout.String())
	}
	return s, nil
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
		out[builtin.ImageName(k)] = v
	}
	return out, nil
}
