// Package wrapper is the logic of cmd/kpo-fn-wrapper: run a function with files in and out,
// and upload its outcome to a ConfigMap.
package wrapper

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The files `run` writes into its output directory, and the ConfigMap keys `upload` writes.
const (
	StdoutKey   = "stdout"
	StderrKey   = "stderr"
	ExitCodeKey = "exitCode"
	// ErrorKey holds a failure of the wrapper itself (the function could not be started).
	ErrorKey = "error"
	doneFile = "done"
)

// maxOutput keeps the output ConfigMap under the API server's 1 MiB limit.
const maxOutput = 1000 * 1024

// StderrTail bounds how much of a function's stderr is kept.
const StderrTail = 16 * 1024

// Main dispatches to run or upload.
func Main(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: kpo-fn-wrapper run|serve|upload|install [flags]")
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:])
	case "serve":
		return serveCmd(args[1:])
	case "upload":
		return uploadCmd(args[1:])
	case "install":
		if len(args) != 2 {
			return errors.New("usage: kpo-fn-wrapper install DEST")
		}
		return Install(args[1])
	}
	return fmt.Errorf("unknown command %q: use run, serve, upload or install", args[0])
}

// Install copies this executable to dest, for the function container (the init container's
// job: the function image need not contain the wrapper).
func Install(dest string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(self) //nolint:gosec // G304: this executable, as os.Executable names it
	if err != nil {
		return err
	}
	return os.WriteFile(dest, data, 0o755) //nolint:gosec // G306: an executable; 0600 would drop its execute bit
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	input := fs.String("input", "", "file holding the input ResourceList")
	out := fs.String("output-dir", "", "directory for stdout, stderr, exitCode and done")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *input == "" || *out == "" || fs.NArg() == 0 {
		return errors.New("usage: kpo-fn-wrapper run --input FILE --output-dir DIR -- ENTRYPOINT [ARGS...]")
	}
	return Run(*input, *out, fs.Args())
}

// Run runs command with input on stdin and records its outcome in dir. A function that fails
// is an outcome, not an error: Run fails only when it cannot record anything.
func Run(input, dir string, command []string) error {
	var files map[string][]byte
	in, err := os.Open(input) //nolint:gosec // G304: the input file the Job spec names (a mounted ConfigMap)
	if err != nil {
		files = outcome(nil, nil, -1, fmt.Errorf("opening input: %w", err))
	} else {
		files = Execute(context.Background(), in, command)
		_ = in.Close()
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, doneFile), nil, 0o600)
}

// Execute runs command with stdin and returns its outcome as the files (and ConfigMap keys)
// StdoutKey, StderrKey (its tail), ExitCodeKey and, when it could not be started, ErrorKey.
// Cancelling ctx kills the function. A Job's run and a warm pod's request record the same.
func Execute(ctx context.Context, stdin io.Reader, command []string) map[string][]byte {
	stdout, stderr, code, err := execute(ctx, stdin, command)
	return outcome(stdout, stderr, code, err)
}

func outcome(stdout, stderr []byte, code int, err error) map[string][]byte {
	files := map[string][]byte{
		StdoutKey:   stdout,
		StderrKey:   tail(stderr, StderrTail),
		ExitCodeKey: []byte(strconv.Itoa(code)),
	}
	if err != nil {
		files[ErrorKey] = []byte(err.Error())
	}
	return files
}

func execute(ctx context.Context, stdin io.Reader, command []string) (stdout, stderr []byte, code int, err error) {
	var outBuf, errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, command[0], command[1:]...) //nolint:gosec // G204: running the function's entrypoint is the wrapper's job; the pod spec names it
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &outBuf, &errBuf
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return outBuf.Bytes(), errBuf.Bytes(), exitErr.ExitCode(), nil
	case err != nil:
		return outBuf.Bytes(), errBuf.Bytes(), -1, fmt.Errorf("starting the function %q: %w", command[0], err)
	}
	return outBuf.Bytes(), errBuf.Bytes(), 0, nil
}

func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[len(b)-n:]
}

func uploadCmd(args []string) error {
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory run writes into")
	ns := fs.String("namespace", "", "namespace of the output ConfigMap")
	name := fs.String("configmap", "", "name of the output ConfigMap")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the function")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *ns == "" || *name == "" {
		return errors.New("usage: kpo-fn-wrapper upload --dir DIR --namespace NS --configmap NAME")
	}
	cfg, err := config()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	return Upload(ctx, cs, *dir, *ns, *name)
}

// config is the in-cluster config, or $KUBECONFIG outside a cluster (the test tier).
func config() (*rest.Config, error) {
	if path := os.Getenv("KUBECONFIG"); path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	return rest.InClusterConfig()
}

// Upload waits for dir/done, then writes the outcome files into the ConfigMap ns/name.
func Upload(ctx context.Context, cs kubernetes.Interface, dir, ns, name string) error {
	for {
		if _, err := os.Stat(filepath.Join(dir, doneFile)); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the function: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cm := &corev1.ConfigMap{Data: map[string]string{}, BinaryData: map[string][]byte{}}
	for _, key := range []string{StdoutKey, StderrKey, ExitCodeKey, ErrorKey} {
		data, err := os.ReadFile(filepath.Join(dir, key)) //nolint:gosec // G304: a fixed outcome file in the output directory the Job spec names
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		cm.BinaryData[key] = data
	}
	if size := len(cm.BinaryData[StdoutKey]) + len(cm.BinaryData[StderrKey]); size > maxOutput {
		delete(cm.BinaryData, StdoutKey)
		cm.BinaryData[ErrorKey] = []byte(fmt.Sprintf("the function wrote %d bytes, more than the %d a ConfigMap holds", size, maxOutput))
	}
	patch, err := jsonMergePatch(cm)
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().ConfigMaps(ns).Patch(ctx, name, types.MergePatchType, patch, metav1PatchOptions())
	return err
}
