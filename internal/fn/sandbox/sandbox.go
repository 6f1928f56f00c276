// Package sandbox runs the built-in functions that execute user-provided code (starlark) in
// a child process, kpo-fn, under a memory and a time budget. Starlark bounds a script's steps
// and can cancel it, but it cannot bound what one operation allocates ("b" * 400000000), so
// only a separate process keeps a hostile or careless script from taking the manager's memory:
// the child limits its own address space before it reads its input (LimitMemory), the
// manager kills its whole process group when it runs too long, and an out-of-memory death
// becomes a clear function failure (MemoryError) instead of the manager's.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// Defaults of an Evaluator's zero fields.
const (
	// DefaultMemory is the memory budget of one function run: its whole process.
	DefaultMemory int64 = 512 << 20
	// DefaultTimeout is the time budget of one function run.
	DefaultTimeout = 30 * time.Second
	// DefaultParallelism bounds the function processes running at once, so that their
	// budgets together stay well inside the manager container's memory limit.
	DefaultParallelism = 2
	// DefaultMaxOutput bounds the ResourceList a function may write back: the manager parses
	// it, so it is bounded too.
	DefaultMaxOutput int64 = 64 << 20
)

// BinaryName is the file name of the multi-call function binary (cmd/kpo-fn).
const BinaryName = "kpo-fn"

// Flags of kpo-fn through which the Evaluator hands a run its budgets.
const (
	// MemoryFlag takes the memory budget (a quantity: bytes, or 512Mi); see LimitMemory.
	MemoryFlag = "memory-limit"
	// TimeoutFlag takes the time budget (a duration) of the function itself: starlark stops
	// its script when it is spent.
	TimeoutFlag = "timeout"
)

// Exit codes: the Go runtime's on a fatal error or an unhandled panic, and a shell's for a
// process killed by SIGKILL.
const (
	goCrashExitCode = 2
	killedExitCode  = 128 + 9
)

// killGrace is how long after its time budget a child that did not stop by itself is
// killed: the budget is the script's, the grace covers writing its output.
const killGrace = 2 * time.Second

// UserCodeFunctions are the built-ins that run code from the package (a starlark script)
// rather than kpo's own: what an Evaluator runs unless told otherwise. The other built-ins are
// kpo's Go code, whose work grows with their input and config, and stay in process.
var UserCodeFunctions = []string{"starlark"}

// MemoryError is a function run that needed more memory than its budget: the process ran
// out of memory under its limit and was stopped. Match it with errors.As.
type MemoryError struct {
	// Function is the built-in's name (starlark).
	Function string
	// Budget is the memory budget in bytes.
	Budget int64
}

// Error says which function exceeded which budget.
func (e *MemoryError) Error() string {
	return fmt.Sprintf("function %s exceeded its memory budget of %s", e.Function, FormatBytes(e.Budget))
}

// Evaluator runs built-ins in kpo-fn child processes, each under a memory and a time budget.
// Input and output are ResourceLists, as for any exec function; comments are restored by the
// caller (it is not a render.CommentPreserver). Safe for concurrent use.
type Evaluator struct {
	// Binary is the kpo-fn binary (see Locate).
	Binary string
	// Memory is the memory budget of one run in bytes: DefaultMemory when zero.
	Memory int64
	// Timeout is the time budget of one run: DefaultTimeout when zero. The function is told
	// it; a process still running shortly after is killed with its process group.
	Timeout time.Duration
	// Parallelism bounds the runs at once: DefaultParallelism when zero. Others wait.
	Parallelism int
	// MaxOutput bounds the bytes a run may write on stdout: DefaultMaxOutput when zero.
	MaxOutput int64
	// Functions are the built-ins (image names, see builtin.ImageName) this Evaluator runs:
	// UserCodeFunctions when nil.
	Functions []string

	once  sync.Once
	slots chan struct{}
}

// Runs reports whether this Evaluator is the one to run image: a built-in it sandboxes.
func (e *Evaluator) Runs(image string) bool {
	if image == "" {
		return false
	}
	functions := e.Functions
	if functions == nil {
		functions = UserCodeFunctions
	}
	return slices.Contains(functions, builtin.ImageName(image))
}

// Evaluate runs the built-in for fn.Image in a child process over rl. A function that fails
// is a *render.FunctionError (its Err a *MemoryError when it exceeded its memory budget);
// one still running after its time budget is killed, with an error wrapping
// render.ErrTimeout.
func (e *Evaluator) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	name := builtin.ImageName(fn.Image)
	if _, ok := builtin.Lookup(fn.Image); fn.Image == "" || !ok {
		return fmt.Errorf("%w: image %q", builtin.ErrNotBuiltin, fn.Image)
	}
	in, err := render.FunctionInput(rl)
	if err != nil {
		return fmt.Errorf("serializing the input of %s: %w", name, err)
	}

	release, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()

	memory, timeout := e.memory(), e.timeout()
	runCtx, cancel := context.WithTimeout(ctx, timeout+killGrace)
	defer cancel()
	stdout := &cappedBuffer{max: e.maxOutput()}
	stderr := &stderrRecorder{}
	cmd := exec.CommandContext(runCtx, e.Binary, //nolint:gosec // G204: the kpo-fn binary the manager was configured with; name is a builtin checked by Lookup
		"--"+MemoryFlag+"="+strconv.FormatInt(memory, 10), "--"+TimeoutFlag+"="+timeout.String(), name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), stdout, stderr
	// Nothing of the manager's environment is the function's business; tracebacks of a
	// crash are noise in its stderr.
	cmd.Env = []string{"GOTRACEBACK=none"}
	cmd.WaitDelay = time.Second
	ownProcessGroup(cmd)
	runErr := cmd.Run()
	if runCtx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: function %s ran longer than its time budget of %s", render.ErrTimeout, name, timeout)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// fail reports a failure the function could not report itself, as a result too.
	fail := func(exitCode int, stderr string, err error) error {
		rl.Results = append(rl.Results, &framework.Result{Message: err.Error(), Severity: framework.Error})
		return &render.FunctionError{Image: fn.Image, ExitCode: exitCode, Stderr: stderr, Results: rl.Results, Err: err}
	}
	if stdout.overflow {
		return fail(1, stderr.String(), fmt.Errorf("function %s wrote more than %s of output", name, FormatBytes(stdout.max)))
	}
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) {
		code := exitErr.ExitCode()
		switch {
		case code == goCrashExitCode && stderr.outOfMemory():
			return fail(code, stderr.beforeCrash(), &MemoryError{Function: name, Budget: memory})
		case code == goCrashExitCode && stderr.crashed():
			return fail(code, stderr.beforeCrash(), fmt.Errorf("function %s crashed: %s", name, stderr.crash()))
		case killed(exitErr):
			return fail(killedExitCode, stderr.String(), fmt.Errorf("function %s was killed, most likely because the container ran out of memory", name))
		}
		// The function failed the ordinary way: its results (and stderr) say why.
		if _, results, err := render.ParseFunctionOutput(stdout.Bytes()); err == nil {
			rl.Results = results
		}
		return &render.FunctionError{Image: fn.Image, ExitCode: code, Stderr: stderr.String(), Results: rl.Results}
	}
	if runErr != nil {
		return fmt.Errorf("running %s (%s): %w", name, e.Binary, runErr)
	}
	items, results, err := render.ParseFunctionOutput(stdout.Bytes())
	if err != nil {
		return fail(1, stderr.String(), fmt.Errorf("reading the output of %s: %w", name, err))
	}
	rl.Items, rl.Results = items, results
	// As the in-process built-in (fn.BuiltinEvaluator): the catalog's functions end their
	// diagnostics without a newline, as kpt records them.
	_, _ = render.StderrWriter(ctx).Write([]byte(strings.TrimSuffix(stderr.String(), "\n")))
	return nil
}

// acquire waits for a free run slot, or for ctx to end.
func (e *Evaluator) acquire(ctx context.Context) (release func(), err error) {
	e.once.Do(func() {
		n := e.Parallelism
		if n <= 0 {
			n = DefaultParallelism
		}
		e.slots = make(chan struct{}, n)
	})
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *Evaluator) memory() int64 {
	if e.Memory > 0 {
		return e.Memory
	}
	return DefaultMemory
}

func (e *Evaluator) timeout() time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return DefaultTimeout
}

func (e *Evaluator) maxOutput() int64 {
	if e.MaxOutput > 0 {
		return e.MaxOutput
	}
	return DefaultMaxOutput
}

// Locate returns the kpo-fn binary next to the running executable (as the image and
// `make build` ship it), or an error wrapping fs.ErrNotExist when there is none.
func Locate() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	bin := filepath.Join(filepath.Dir(exe), BinaryName)
	if err := CheckBinary(bin); err != nil {
		return "", err
	}
	return bin, nil
}

// CheckBinary reports whether path is an executable regular file.
func CheckBinary(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file: %w", path, fs.ErrPermission)
	}
	return nil
}

// FormatBytes writes a byte count in the largest binary unit that divides it: 512 MiB.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// cappedBuffer keeps at most max bytes; a write beyond fails, which ends the copy from the
// child's stdout (and so the child, on a broken pipe). It has no ReadFrom, so that every
// write goes through Write.
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int64
	overflow bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if int64(b.buf.Len()+len(p)) > b.max {
		b.overflow = true
		return 0, errors.New("output too large")
	}
	return b.buf.Write(p)
}

// Bytes returns what was written.
func (b *cappedBuffer) Bytes() []byte { return b.buf.Bytes() }
