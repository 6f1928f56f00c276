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
	// Container holds what kpt fn eval's --network, --mount, --env and --as-current-user ask
	// of the functions that run as processes.
	Container ContainerOptions
}

// ContainerOptions are the run options of a function process (kpt fn eval's flags). Env also
// applies to exec functions; the rest to images run by a container runtime. Built-ins need none
// of them: they reach no network, file or environment.
type ContainerOptions struct {
	// Network gives the container the host's network instead of none.
	Network bool
	// Mounts are kpt's --mount values (type=bind|volume|tmpfs,src=…,dst=…[,rw=true]): read-only
	// unless rw=true. ParseMount checks one.
	Mounts []string
	// Env are KEY=VALUE pairs, or KEY for the value of this process's environment.
	Env []string
	// User runs the container as UID:GID (--as-current-user) instead of the image's user.
	User string
}

// ParseMount checks a kpt --mount value and returns it as the container runtime's --mount
// takes it: type, source and target set, read-only unless rw=true.
func ParseMount(spec string) (string, error) {
	fields := map[string]string{}
	for _, part := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("mount %q: %q is not key=value", spec, part)
		}
		switch k {
		case "src":
			k = "source"
		case "dst", "destination":
			k = "target"
		}
		fields[k] = v
	}
	switch fields["type"] {
	case "bind", "volume", "tmpfs":
	default:
		return "", fmt.Errorf("mount %q: type must be bind, volume or tmpfs", spec)
	}
	if fields["target"] == "" || (fields["type"] != "tmpfs" && fields["source"] == "") {
		return "", fmt.Errorf("mount %q: give src and dst (dst only for tmpfs)", spec)
	}
	out := "type=" + fields["type"]
	if src := fields["source"]; src != "" {
		if fields["type"] == "bind" {
			abs, err := filepath.Abs(src)
			if err != nil {
				return "", fmt.Errorf("mount %q: %w", spec, err)
			}
			src = abs
		}
		out += ",source=" + src
	}
	out += ",target=" + fields["target"]
	switch fields["rw"] {
	case "", "false":
		if fields["type"] != "tmpfs" {
			out += ",readonly"
		}
	case "true":
	default:
		return "", fmt.Errorf("mount %q: rw must be true or false", spec)
	}
	for k := range fields {
		switch k {
		case "type", "source", "target", "rw":
		default:
			return "", fmt.Errorf("mount %q: unknown field %q (kpt's are type, src, dst and rw)", spec, k)
		}
	}
	return out, nil
}

// environment resolves Env: a bare KEY takes this process's value (left out when unset).
func (o ContainerOptions) environment() ([]string, error) {
	var env []string
	for _, e := range o.Env {
		k, _, ok := strings.Cut(e, "=")
		if k == "" {
			return nil, fmt.Errorf("environment variable %q has no name", e)
		}
		if !ok {
			v, set := os.LookupEnv(k)
			if !set {
				continue
			}
			e = k + "=" + v
		}
		env = append(env, e)
	}
	return env, nil
}

// Evaluator is a render.Options.Evaluator.
func (l LocalEvaluator) Evaluator(fn kptfile.Function) (render.Evaluator, error) {
	switch {
	case fn.Exec != "":
		if !l.AllowExec {
			return nil, ErrExecNotAllowedLocally
		}
		env, err := l.Container.environment()
		if err != nil {
			return nil, err
		}
		return commandEvaluator{env: env}, nil
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
	args, err := l.runArgs(image)
	if err != nil {
		return nil, err
	}
	return containerEvaluator{runtime: runtime, image: image, args: args}, nil
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

// runArgs are the container runtime's arguments to run image as kpt does: removed after, stdin
// open, no network unless asked, no privilege escalation, the mounts and environment asked for.
func (l LocalEvaluator) runArgs(image string) ([]string, error) {
	network := "none"
	if l.Container.Network {
		network = "host"
	}
	args := []string{"run", "--rm", "-i", "--network", network, "--security-opt=no-new-privileges"}
	if l.PullPolicy != "" {
		args = append(args, "--pull", l.PullPolicy)
	}
	if l.Container.User != "" {
		args = append(args, "--user", l.Container.User)
	}
	for _, m := range l.Container.Mounts {
		mount, err := ParseMount(m)
		if err != nil {
			return nil, err
		}
		args = append(args, "--mount", mount)
	}
	env, err := l.Container.environment()
	if err != nil {
		return nil, err
	}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	return append(args, image), nil
}

// commandEvaluator runs an exec function: the command line of fn.Exec (split as a shell
// splits words, without expansion), relative paths resolved against the working directory,
// with env added to this process's environment.
type commandEvaluator struct {
	env []string
}

func (c commandEvaluator) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	argv, err := SplitCommand(fn.Exec)
	if err != nil || len(argv) == 0 {
		return fmt.Errorf("exec %q: not a command line: %v", fn.Exec, err)
	}
	if strings.Contains(argv[0], string(filepath.Separator)) {
		if abs, err := filepath.Abs(argv[0]); err == nil {
			argv[0] = abs
		}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...) //nolint:gosec // G204: the user allowed exec functions with --allow-exec
	if len(c.env) > 0 {
		cmd.Env = append(os.Environ(), c.env...)
	}
	return runProcess(ctx, fn.Exec, cmd, rl)
}

// containerEvaluator runs an image with a local container runtime, as kpt does, with stdin
// and stdout carrying the ResourceList (args: see runArgs).
type containerEvaluator struct {
	runtime, image string
	args           []string
}

func (c containerEvaluator) Evaluate(ctx context.Context, _ kptfile.Function, rl *framework.ResourceList) error {
	return runProcess(ctx, c.image, exec.CommandContext(ctx, c.runtime, c.args...), rl) //nolint:gosec // G204: the runtime comes from PATH, the image from the package the user renders
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
