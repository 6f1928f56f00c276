package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

const resourceList = `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: nginx # the web server
    annotations:
      internal.config.kubernetes.io/path: deployment.yaml
  spec:
    replicas: 3
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata:
    name: reader
functionConfig:
  apiVersion: v1
  kind: ConfigMap
  metadata:
    name: my-config
  data:
    namespace: staging
`

// buildKpoFn builds the binary into a temporary directory.
func buildKpoFn(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kpo-fn")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestKpoFn_setNamespace_pipesResourceListThroughFunction(t *testing.T) {
	g := NewWithT(t)
	bin := buildKpoFn(t)
	cmd := exec.Command(bin, "set-namespace")
	cmd.Stdin = strings.NewReader(resourceList)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	g.Expect(cmd.Run()).To(Succeed(), stderr.String())

	g.Expect(stdout.String()).To(ContainSubstring("kind: ResourceList"))
	g.Expect(stdout.String()).To(ContainSubstring("      internal.config.kubernetes.io/path: deployment.yaml\n    namespace: staging\n"))
	g.Expect(stdout.String()).NotTo(ContainSubstring("name: reader\n    namespace:"), "cluster-scoped resources keep no namespace")
	g.Expect(stdout.String()).To(ContainSubstring(`namespace [default] updated to "staging", 1 value(s) changed`))
	g.Expect(stderr.String()).To(BeEmpty())
}

func TestKpoFn_failingFunction_exitsOneWithErrorOnStderr(t *testing.T) {
	g := NewWithT(t)
	bin := buildKpoFn(t)
	cmd := exec.Command(bin, "set-namespace")
	cmd.Stdin = strings.NewReader(strings.Replace(resourceList, "namespace: staging", "nameSpace: staging", 1))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	err := cmd.Run()

	var exitErr *exec.ExitError
	g.Expect(errors.As(err, &exitErr)).To(BeTrue(), "want an exit error, got %v", err)
	g.Expect(exitErr.ExitCode()).To(Equal(1))
	g.Expect(stderr.String()).To(ContainSubstring("set-namespace: invalid function config: `data.namespace` should not be empty"))
	g.Expect(stdout.String()).To(ContainSubstring("severity: error"), "the results still reach stdout")
}

func TestKpoFn_unknownFunction_exitsTwoAndListsFunctions(t *testing.T) {
	g := NewWithT(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{"kubeconform"}, strings.NewReader(resourceList), &stdout, &stderr)
	g.Expect(code).To(Equal(2))
	g.Expect(stderr.String()).To(ContainSubstring(`unknown function "kubeconform"; available: apply-replacements`))
}

func TestKpoFn_starlarkPrint_goesToStderr(t *testing.T) {
	g := NewWithT(t)
	input := `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items: []
functionConfig:
  apiVersion: fn.kpt.dev/v1alpha1
  kind: StarlarkRun
  metadata:
    name: hello
  source: |
    print("hello from starlark")
`
	var stdout, stderr bytes.Buffer
	code := run([]string{"starlark"}, strings.NewReader(input), &stdout, &stderr)
	g.Expect(code).To(Equal(0), stderr.String())
	g.Expect(stderr.String()).To(Equal("hello from starlark\n"))
}

func TestKpoFn_memoryLimit_endsAnAllocationPastItWithOutOfMemory(t *testing.T) {
	g := NewWithT(t)
	bin := buildKpoFn(t)
	cmd := exec.Command(bin, "--memory-limit=256Mi", "starlark")
	cmd.Stdin = strings.NewReader(`apiVersion: config.kubernetes.io/v1
kind: ResourceList
items: []
functionConfig:
  apiVersion: fn.kpt.dev/v1alpha1
  kind: StarlarkRun
  metadata:
    name: hostile
  source: |
    s = "b" * 400000000
`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	err := cmd.Run()

	var exitErr *exec.ExitError
	g.Expect(errors.As(err, &exitErr)).To(BeTrue(), "want an exit error, got %v", err)
	g.Expect(exitErr.ExitCode()).To(Equal(2))
	g.Expect(stderr.String()).To(ContainSubstring("fatal error: out of memory"))
}

func TestKpoFn_timeout_boundsTheStarlarkScript(t *testing.T) {
	g := NewWithT(t)
	input := `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items: []
functionConfig:
  apiVersion: fn.kpt.dev/v1alpha1
  kind: StarlarkRun
  metadata:
    name: loop
  source: |
    while True:
      pass
`
	var stdout, stderr bytes.Buffer
	code := run([]string{"--timeout=50ms", "starlark"}, strings.NewReader(input), &stdout, &stderr)
	g.Expect(code).To(Equal(1))
	g.Expect(stderr.String()).To(ContainSubstring("stopped after running for 50ms"))
}

func TestKpoFn_badFlags_exitTwoWithUsage(t *testing.T) {
	for _, args := range [][]string{{"--memory-limit=lots", "starlark"}, {"--nope", "starlark"}, {"--timeout=1s"}, {}} {
		g := NewWithT(t)
		var stdout, stderr bytes.Buffer
		g.Expect(run(args, strings.NewReader(resourceList), &stdout, &stderr)).To(Equal(2), "%v", args)
		g.Expect(stderr.String()).To(ContainSubstring("kpo-fn"))
	}
}
