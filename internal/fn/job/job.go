// Package job evaluates KRM functions as Kubernetes Jobs: the input ResourceList goes in a
// ConfigMap, the function runs in its own image with kpo-fn-wrapper copied in by an init
// container, and an uploader container writes the outcome into an output ConfigMap.
package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/fn/job/wrapper"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// Sentinel errors.
var (
	// ErrImageNotAllowed: the image is not on the allowlist; no Job was created.
	ErrImageNotAllowed = errors.New("image not allowed")
	// ErrTimeout: the function did not finish in time.
	ErrTimeout = render.ErrTimeout
)

// Labels on the objects the evaluator creates, so they can be found and cleaned up.
const (
	// FunctionLabel marks Jobs and ConfigMaps of function runs.
	FunctionLabel = "kpo.dev/function-run"
	// RoleLabel says what a ConfigMap is: input or output.
	RoleLabel = "kpo.dev/function-role"
)

// Paths inside the Job's pod.
const (
	wrapperDir   = "/kpo/bin"
	wrapperPath  = wrapperDir + "/kpo-fn-wrapper"
	inputDir     = "/kpo/input"
	inputKey     = "resourcelist.yaml"
	outputDir    = "/kpo/out"
	functionName = "function"
	uploaderName = "upload"
)

// DefaultEntrypoint is where the KRM functions catalog's images keep their function.
const DefaultEntrypoint = "/usr/local/bin/function"

// Evaluator runs functions as Jobs in Namespace.
type Evaluator struct {
	Client client.Client
	// Reader reads the output ConfigMap (uncached).
	Reader client.Reader
	// Namespace where Jobs and their ConfigMaps live.
	Namespace string
	// WrapperImage holds /kpo-fn-wrapper (built from this repository).
	WrapperImage string
	// ServiceAccount of the uploader container: it may only patch ConfigMaps in Namespace.
	ServiceAccount string
	// Allowlist of image patterns: an exact image, or a prefix ending in '*'. Empty allows none.
	Allowlist []string
	// Entrypoints maps an image name (builtin.ImageName) to its entrypoint; others use
	// DefaultEntrypoint.
	Entrypoints map[string]string
	// Timeout of one function run (default 2m).
	Timeout time.Duration
	// PollInterval for the output (default 100ms).
	PollInterval time.Duration
}

// Allowed tells whether image may run as a Job.
func (e *Evaluator) Allowed(image string) bool {
	for _, p := range e.Allowlist {
		if p == image || (strings.HasSuffix(p, "*") && strings.HasPrefix(image, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}

// Evaluate runs fn as a Job over rl and replaces rl's items and results with its output.
// The Job and both ConfigMaps are deleted whatever happens.
func (e *Evaluator) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	input, err := e.input(fn, rl)
	if err != nil {
		return err
	}
	timeout := e.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	run := runName()
	in, out, job := e.objects(run, fn.Image, input, timeout)
	defer e.cleanup(run)
	for _, obj := range []client.Object{in, out, job} {
		if err := e.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s for function %q: %w", obj.GetName(), fn.Image, err)
		}
	}
	result, err := e.waitForOutput(ctx, out, job)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &render.FunctionError{Image: fn.Image, ExitCode: -1, Err: fmt.Errorf("%w after %s", ErrTimeout, timeout)}
		}
		return err
	}
	return apply(fn.Image, result, rl)
}

// input checks that fn may run here and returns its input ResourceList.
func (e *Evaluator) input(fn kptfile.Function, rl *framework.ResourceList) ([]byte, error) {
	if fn.Image == "" {
		return nil, fmt.Errorf("the job evaluator runs images, not exec functions (%q)", fn.Exec)
	}
	if !e.Allowed(fn.Image) {
		return nil, fmt.Errorf("%w: %q is not on the function image allowlist: add it to the manager's --function-image-allowlist, or use a built-in function", ErrImageNotAllowed, fn.Image)
	}
	input, err := render.FunctionInput(rl)
	if err != nil {
		return nil, fmt.Errorf("writing the input ResourceList: %w", err)
	}
	return input, nil
}

// timeout is the limit of one run.
func (e *Evaluator) timeout() time.Duration {
	if e.Timeout == 0 {
		return 2 * time.Minute
	}
	return e.Timeout
}

// objects builds the input and (empty) output ConfigMaps and the Job of one run.
func (e *Evaluator) objects(run, image string, input []byte, timeout time.Duration) (*corev1.ConfigMap, *corev1.ConfigMap, *batchv1.Job) {
	labels := map[string]string{FunctionLabel: run}
	meta := func(name, role string) metav1.ObjectMeta {
		l := map[string]string{FunctionLabel: run, RoleLabel: role}
		return metav1.ObjectMeta{Name: name, Namespace: e.Namespace, Labels: l}
	}
	in := &corev1.ConfigMap{ObjectMeta: meta(run+"-in", "input"), Data: map[string]string{inputKey: string(input)}}
	out := &corev1.ConfigMap{ObjectMeta: meta(run+"-out", "output")}

	entrypoint := e.entrypoint(image)
	restricted, limits := restrictedContext(), functionResources()
	mount := func(name, at string, ro bool) corev1.VolumeMount {
		return corev1.VolumeMount{Name: name, MountPath: at, ReadOnly: ro}
	}
	serviceAccountMount := "/var/run/secrets/kubernetes.io/serviceaccount"
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: run, Namespace: e.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   ptr.To(int64(timeout.Seconds()) + 30),
			TTLSecondsAfterFinished: ptr.To[int32](60),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					ServiceAccountName:           e.ServiceAccount,
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext:              podSecurityContext(),
					InitContainers:               []corev1.Container{e.installWrapper()},
					Containers: []corev1.Container{
						{
							Name: functionName, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
							Command:         []string{wrapperPath, "run", "--input", path.Join(inputDir, inputKey), "--output-dir", outputDir, "--", entrypoint},
							SecurityContext: restricted, Resources: limits,
							VolumeMounts: []corev1.VolumeMount{mount("bin", wrapperDir, true), mount("input", inputDir, true), mount("out", outputDir, false)},
						},
						{
							Name: uploaderName, Image: e.WrapperImage, ImagePullPolicy: corev1.PullIfNotPresent,
							Command: []string{"/kpo-fn-wrapper", "upload", "--dir", outputDir, "--namespace", e.Namespace,
								"--configmap", out.Name, "--timeout", timeout.String()},
							SecurityContext: restricted, Resources: limits,
							VolumeMounts: []corev1.VolumeMount{mount("out", outputDir, true), mount("token", serviceAccountMount, true)},
						},
					},
					Volumes: []corev1.Volume{
						{Name: "bin", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "out", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "input", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: in.Name}}}},
						// Only the uploader mounts a token: a short-lived one of the narrow account.
						{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
							{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](600)}},
							{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
								Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
							{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
								{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
						}}}},
					},
				},
			},
		},
	}
	return in, out, job
}

// restrictedContext is the security context of every container of a function pod. The group
// is set as well as the user: an image that declares no user would otherwise run its processes
// with group root (GID 0), as a real node showed (internal/e2e/node).
func restrictedContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](65532),
		RunAsGroup:               ptr.To[int64](65532),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// podSecurityContext is the pod-level half of restrictedContext.
func podSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
		FSGroup:        ptr.To[int64](65532),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// functionResources are the requests and limits of every container of a function pod.
func functionResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
}

// installWrapper is the init container that copies kpo-fn-wrapper into the "bin" volume, for
// the function's container (whose image need not hold it).
func (e *Evaluator) installWrapper() corev1.Container {
	return corev1.Container{
		Name: "install-wrapper", Image: e.WrapperImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"/kpo-fn-wrapper", "install", wrapperPath},
		SecurityContext: restrictedContext(), Resources: functionResources(),
		VolumeMounts: []corev1.VolumeMount{{Name: "bin", MountPath: wrapperDir}},
	}
}

// entrypoint is where image keeps its function.
func (e *Evaluator) entrypoint(image string) string {
	if ep, ok := e.Entrypoints[builtin.ImageName(image)]; ok {
		return ep
	}
	return DefaultEntrypoint
}

// waitForOutput polls the output ConfigMap until the uploader filled it, or the Job failed.
func (e *Evaluator) waitForOutput(ctx context.Context, out *corev1.ConfigMap, job *batchv1.Job) (map[string][]byte, error) {
	interval := e.PollInterval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	for {
		cm := &corev1.ConfigMap{}
		if err := e.Reader.Get(ctx, client.ObjectKeyFromObject(out), cm); err == nil {
			if _, done := cm.BinaryData[wrapper.ExitCodeKey]; done {
				return cm.BinaryData, nil
			}
			if msg, failed := cm.BinaryData[wrapper.ErrorKey]; failed {
				return nil, &render.FunctionError{Image: job.Spec.Template.Spec.Containers[0].Image, ExitCode: -1, Err: errors.New(string(msg))}
			}
		}
		j := &batchv1.Job{}
		if err := e.Reader.Get(ctx, client.ObjectKeyFromObject(job), j); err == nil {
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
					return nil, &render.FunctionError{Image: job.Spec.Template.Spec.Containers[0].Image, ExitCode: -1,
						Err: fmt.Errorf("job %s failed: %s: %s", j.Name, c.Reason, c.Message)}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// apply turns the uploaded outcome into rl, or into a FunctionError.
func apply(image string, out map[string][]byte, rl *framework.ResourceList) error {
	code, err := strconv.Atoi(strings.TrimSpace(string(out[wrapper.ExitCodeKey])))
	if err != nil {
		return fmt.Errorf("function %q: unreadable exit code %q", image, out[wrapper.ExitCodeKey])
	}
	stderr := string(out[wrapper.StderrKey])
	if msg, ok := out[wrapper.ErrorKey]; ok {
		return &render.FunctionError{Image: image, ExitCode: code, Stderr: stderr, Err: errors.New(string(msg))}
	}
	items, results, parseErr := render.ParseFunctionOutput(out[wrapper.StdoutKey])
	if code != 0 {
		fe := &render.FunctionError{Image: image, ExitCode: code, Stderr: stderr}
		if parseErr == nil {
			fe.Results = results
		}
		return fe
	}
	if parseErr != nil {
		return &render.FunctionError{Image: image, Stderr: stderr, Err: fmt.Errorf("its output is not a ResourceList: %w", parseErr)}
	}
	rl.Items, rl.Results = items, results
	return nil
}

// cleanup deletes the Job (and its pods) and both ConfigMaps of a run.
func (e *Evaluator) cleanup(run string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sel := client.MatchingLabels{FunctionLabel: run}
	_ = e.Client.DeleteAllOf(ctx, &batchv1.Job{}, client.InNamespace(e.Namespace), sel, client.PropagationPolicy(metav1.DeletePropagationBackground))
	_ = e.Client.DeleteAllOf(ctx, &corev1.ConfigMap{}, client.InNamespace(e.Namespace), sel)
}

func runName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "kpo-fn-" + hex.EncodeToString(b)
}
