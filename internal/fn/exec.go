package fn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// ErrExecNotAllowed is returned for an image or exec function that has no binary listed.
var ErrExecNotAllowed = errors.New("no local binary is allowed for this function")

// maxStderr bounds the stderr kept from a function: the tail, where the error usually is.
const maxStderr = 4 << 10

// ExecEvaluator runs functions as local binaries (development and tests): the serialized
// ResourceList on stdin, the resulting ResourceList read from stdout.
type ExecEvaluator struct {
	// Binaries maps an image name (builtin.ImageName: no registry, no tag) to the binary that
	// implements it. A Kptfile exec function runs only when its exec string is a key here,
	// and then runs the binary it maps to: nothing else is ever executed.
	Binaries map[string]string
	// Timeout bounds one run; zero means no limit beyond the context's.
	Timeout time.Duration
}

// Evaluate runs the binary for fn over rl. A non-zero exit is a *render.FunctionError with the
// exit code, the results the function wrote, and the tail of its stderr; running past Timeout
// is an error wrapping render.ErrTimeout.
func (e ExecEvaluator) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	bin, name, err := e.binary(fn)
	if err != nil {
		return err
	}
	in, err := render.FunctionInput(rl)
	if err != nil {
		return fmt.Errorf("serializing the input of %s: %w", name, err)
	}

	runCtx := ctx
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: maxStderr}
	cmd := exec.CommandContext(runCtx, bin) //nolint:gosec // G204: bin comes from the manager's own Binaries allowlist (see binary), never from the package
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, stderr
	cmd.WaitDelay = time.Second
	runErr := cmd.Run()
	if runCtx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: %s ran longer than %s", render.ErrTimeout, name, e.Timeout)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	items, results, parseErr := render.ParseFunctionOutput(stdout.Bytes())
	var exitErr *exec.ExitError
	switch {
	case errors.As(runErr, &exitErr):
		if parseErr == nil {
			rl.Results = results
		}
		return &render.FunctionError{Image: name, ExitCode: exitErr.ExitCode(), Stderr: stderr.String(), Results: results, Err: runErr}
	case runErr != nil:
		return fmt.Errorf("running %s (%s): %w", name, bin, runErr)
	case parseErr != nil:
		return &render.FunctionError{Image: name, ExitCode: 0, Stderr: stderr.String(), Err: fmt.Errorf("reading its output: %w", parseErr)}
	}
	rl.Items, rl.Results = items, results
	_, _ = render.StderrWriter(ctx).Write([]byte(stderr.String()))
	return nil
}

// binary resolves fn to a listed binary and a display name.
func (e ExecEvaluator) binary(fn kptfile.Function) (bin, name string, err error) {
	if fn.Image != "" {
		if bin, ok := e.Binaries[builtin.ImageName(fn.Image)]; ok {
			return bin, fn.Image, nil
		}
		return "", fn.Image, fmt.Errorf("%w: image %s (%s)", ErrExecNotAllowed, fn.Image, builtin.ImageName(fn.Image))
	}
	if bin, ok := e.Binaries[fn.Exec]; ok {
		return bin, fn.Exec, nil
	}
	return "", fn.Exec, fmt.Errorf("%w: exec %q", ErrExecNotAllowed, fn.Exec)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max       int
	buf       []byte
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if t.truncated {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}
