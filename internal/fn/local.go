package fn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// ErrExecNotAllowedLocally is returned for an exec function when the user did not pass
// --allow-exec; the text is kpt's.
var ErrExecNotAllowedLocally = errors.New("must run with `--allow-exec` option to allow running function binaries")

// ErrNoContainerRuntime is returned for an image that is not built in when no container
// runtime (docker, podman, nerdctl) is installed to run it.
var ErrNoContainerRuntime = errors.New("no container runtime found")

// LocalEvaluator picks how a function runs on a developer's machine (kpoctl fn render and
// fn eval): built-ins in process; exec functions as local commands when AllowExec is set;
// any other image through a local container runtime when there is one.
type LocalEvaluator struct {
	// AllowExec lets exec functions run (kpt's --allow-exec).
	AllowExec bool
	// ImagePrefix qualifies short image names (render.DefaultImagePrefix when empty).
	ImagePrefix string
	// Runtime is the container runtime binary for images kpo does not build in; empty means
	// look for $KPT_FN_RUNTIME, then docker, podman and nerdctl on $PATH.
	Runtime string
	// PullPolicy is passed to the container runtime as --pull (always, missing, never);
	// empty is the runtime's default.
	PullPolicy string
}

// Evaluator is a render.Options.Evaluator.
func (l LocalEvaluator) Evaluator(fn kptfile.Function) (render.Evaluator, error) {
	switch {
	case fn.Exec != "":
		if !l.AllowExec {
			return nil, ErrExecNotAllowedLocally
		}
		return commandEvaluator{}, nil
	case fn.Image == "":
		return nil, errors.New("the function names neither an image nor an exec")
	}
	if _, ok := builtin.Lookup(fn.Image); ok {
		return BuiltinEvaluator{}, nil
	}
	image := render.QualifyImage(fn.Image, l.ImagePrefix)
	runtime, err := l.runtime()
	if err != nil {
		return nil, fmt.Errorf("image %s is not built into kpo and %w to run it (install docker, podman or nerdctl, or set KPT_FN_RUNTIME); built in: %s",
			image, err, strings.Join(builtin.Names(), ", "))
	}
	return containerEvaluator{runtime: runtime, image: image, pull: l.PullPolicy}, nil
}

func (l LocalEvaluator) runtime() (string, error) {
	candidates := []string{"docker", "podman", "nerdctl"}
	if l.Runtime != "" {
		candidates = []string{l.Runtime}
	} else if env := os.Getenv("KPT_FN_RUNTIME"); env != "" {
		candidates = []string{env}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", ErrNoContainerRuntime
}

// commandEvaluator runs an exec function: the command line of fn.Exec (split as a shell
// splits words, without expansion), relative paths resolved against the working directory.
type commandEvaluator struct{}

func (commandEvaluator) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	argv, err := SplitCommand(fn.Exec)
	if err != nil || len(argv) == 0 {
		return fmt.Errorf("exec %q: not a command line: %v", fn.Exec, err)
	}
	if strings.Contains(argv[0], string(filepath.Separator)) {
		if abs, err := filepath.Abs(argv[0]); err == nil {
			argv[0] = abs
		}
	}
	return runProcess(ctx, fn.Exec, exec.CommandContext(ctx, argv[0], argv[1:]...), rl) //nolint:gosec // G204: the user allowed exec functions with --allow-exec
}

// containerEvaluator runs an image with a local container runtime, as kpt does: no network,
// stdin and stdout carrying the ResourceList.
type containerEvaluator struct {
	runtime, image, pull string
}

func (c containerEvaluator) Evaluate(ctx context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
	args := []string{"run", "--rm", "-i", "--network", "none", "--security-opt=no-new-privileges"}
	if c.pull != "" {
		args = append(args, "--pull", c.pull)
	}
	args = append(args, c.image)
	return runProcess(ctx, c.image, exec.CommandContext(ctx, c.runtime, args...), rl) //nolint:gosec // G204: the runtime comes from PATH, the image from the package the user renders
}

// runProcess runs a function process over rl and reads its output as exec and the sandbox do.
func runProcess(ctx context.Context, name string, cmd *exec.Cmd, rl *framework.ResourceList) error {
	in, err := render.FunctionInput(rl)
	if err != nil {
		return fmt.Errorf("serializing the input of %s: %w", name, err)
	}
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: maxStderr}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, stderr
	runErr := cmd.Run()
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
		return &render.FunctionError{Image: name, ExitCode: exitErr.ExitCode(), Stderr: stderr.String(), Results: results}
	case runErr != nil:
		return fmt.Errorf("running %s: %w", name, runErr)
	case parseErr != nil:
		return &render.FunctionError{Image: name, Stderr: stderr.String(), Err: fmt.Errorf("reading its output: %w", parseErr)}
	}
	rl.Items, rl.Results = items, results
	_, _ = render.StderrWriter(ctx).Write([]byte(stderr.String()))
	return nil
}

// SplitCommand splits a command line into words as a POSIX shell does for quoting (single
// and double quotes, backslash escapes), without any expansion.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
