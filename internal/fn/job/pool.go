package job

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"

	"kpo.dev/kpo/internal/fn/job/wrapper"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// Labels and annotations of warm function pods.
const (
	// PoolLabel names the pool a warm pod belongs to (Pool.Name).
	PoolLabel = "kpo.dev/function-pool"
	// PoolInstanceLabel names the process that started it: a pool deletes the pods of other
	// instances of its name when it starts (they belong to a manager that is gone).
	PoolInstanceLabel = "kpo.dev/function-pool-instance"
	// ImageAnnotation is the function image a warm pod serves.
	ImageAnnotation = "kpo.dev/function-image"
)

// ServePort is where a warm pod's kpo-fn-wrapper serves.
const ServePort = 9446

// Pool defaults.
const (
	DefaultPodsPerImage = 2
	DefaultIdleTimeout  = 10 * time.Minute
)

// The warm pods: created, read while they start, deleted when idle or broken, and the ones an
// earlier manager left deleted together.
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;create;delete;deletecollection,namespace=kpo-fn

// Pool runs functions in warm pods: at most PodsPerImage running pods per image, each serving
// one ResourceList at a time over HTTP (kpo-fn-wrapper serve), instead of a Job per run. A pod
// idle for IdleTimeout is deleted. The pods are Jobs' pods without the uploader: the same
// restricted security context, resources and image allowlist, and no service-account token
// at all (the outcome comes back in the HTTP response). Run Start (a manager Runnable) to
// reap idle pods and to delete every pod when the manager stops.
type Pool struct {
	// Jobs holds what the pool shares with the Job path: Client, Reader, Namespace,
	// WrapperImage, Allowlist, Entrypoints and Timeout (which includes starting a pod).
	Jobs *Evaluator
	// Name labels the pool's pods (PoolLabel); default "kpo".
	Name string
	// PodsPerImage bounds the running pods of one image (default DefaultPodsPerImage); more
	// runs at once wait for one of them.
	PodsPerImage int
	// IdleTimeout is how long a pod may wait for work before it is deleted (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// HTTPClient calls the pods (default: no proxy, kept-alive connections).
	HTTPClient *http.Client
	// Port the pods serve on (default ServePort).
	Port int

	once     sync.Once
	mu       sync.Mutex
	instance string
	images   map[string]*imagePods
}

// imagePods are the pods of one image.
type imagePods struct {
	pods     []*warmPod
	starting int
	// changed is closed (and replaced) when a pod is released, removed or has started.
	changed chan struct{}
}

type warmPod struct {
	name, image, addr string
	// token is the bearer token the pod's server requires (wrapper.TokenEnv).
	token     string
	busy      bool
	idleSince time.Time
}

func (p *Pool) init() {
	p.once.Do(func() {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		p.instance = hex.EncodeToString(b)
		p.images = map[string]*imagePods{}
		if p.HTTPClient == nil {
			p.HTTPClient = &http.Client{Transport: &http.Transport{
				Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
				MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second,
			}}
		}
	})
}

func (p *Pool) name() string {
	if p.Name == "" {
		return "kpo"
	}
	return p.Name
}

func (p *Pool) podsPerImage() int {
	if p.PodsPerImage <= 0 {
		return DefaultPodsPerImage
	}
	return p.PodsPerImage
}

func (p *Pool) port() int {
	if p.Port <= 0 {
		return ServePort
	}
	return p.Port
}

func (p *Pool) idleTimeout() time.Duration {
	if p.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return p.IdleTimeout
}

// Evaluate runs fn in a warm pod of its image (started when none is free and the bound allows)
// and replaces rl's items and results with its output. A pod whose call failed or timed out
// is deleted, never reused.
func (p *Pool) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	p.init()
	input, err := p.Jobs.input(fn, rl)
	if err != nil {
		return err
	}
	timeout := p.Jobs.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	timedOut := func() error {
		return &render.FunctionError{Image: fn.Image, ExitCode: -1, Err: fmt.Errorf("%w after %s", ErrTimeout, timeout)}
	}
	for attempt := 1; ; attempt++ {
		pod, err := p.acquire(ctx, fn.Image)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return timedOut()
			}
			return &render.FunctionError{Image: fn.Image, ExitCode: -1, Err: err}
		}
		out, err := p.call(ctx, pod, input)
		if err != nil {
			p.remove(pod)
			if errors.Is(err, context.DeadlineExceeded) {
				return timedOut()
			}
			// A pod that is gone (evicted, deleted) refuses the connection before the function
			// saw anything: the run goes to another pod, once.
			if attempt == 1 && notConnected(err) {
				continue
			}
			return &render.FunctionError{Image: fn.Image, ExitCode: -1, Err: fmt.Errorf("function pod %s: %w", pod.name, err)}
		}
		p.release(pod)
		return apply(fn.Image, out, rl)
	}
}

// notConnected tells whether err means the request never reached a server.
func notConnected(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// acquire returns a free pod of image, marked busy: an idle one, a new one when the bound
// allows, or the first one released.
func (p *Pool) acquire(ctx context.Context, image string) (*warmPod, error) {
	for {
		p.mu.Lock()
		ip := p.images[image]
		if ip == nil {
			ip = &imagePods{changed: make(chan struct{})}
			p.images[image] = ip
		}
		for _, w := range ip.pods {
			if !w.busy {
				w.busy = true
				p.mu.Unlock()
				return w, nil
			}
		}
		if len(ip.pods)+ip.starting < p.podsPerImage() {
			ip.starting++
			p.mu.Unlock()
			w, err := p.startPod(ctx, image)
			p.mu.Lock()
			ip.starting--
			if err == nil {
				w.busy = true
				ip.pods = append(ip.pods, w)
			}
			ip.wake()
			p.mu.Unlock()
			return w, err
		}
		changed := ip.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

func (ip *imagePods) wake() {
	close(ip.changed)
	ip.changed = make(chan struct{})
}

// release makes pod free again.
func (p *Pool) release(pod *warmPod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pod.busy = false
	pod.idleSince = time.Now()
	if ip := p.images[pod.image]; ip != nil {
		ip.wake()
	}
}

// remove forgets pod and deletes it.
func (p *Pool) remove(pod *warmPod) {
	p.mu.Lock()
	if ip := p.images[pod.image]; ip != nil {
		for i, w := range ip.pods {
			if w == pod {
				ip.pods = append(ip.pods[:i], ip.pods[i+1:]...)
				break
			}
		}
		ip.wake()
	}
	p.mu.Unlock()
	p.deletePod(pod.name)
}

func (p *Pool) deletePod(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Jobs.Namespace}}
	_ = p.Jobs.Client.Delete(ctx, pod, client.GracePeriodSeconds(0))
}

// call sends input to pod and returns the outcome it answers.
func (p *Pool) call(ctx context.Context, pod *warmPod, input []byte) (map[string][]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+pod.addr+wrapper.RunPath, bytes.NewReader(input))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("Authorization", "Bearer "+pod.token)
	resp, err := p.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	out := map[string][]byte{}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("its answer is not an outcome: %w", err)
	}
	return out, nil
}

// startPod creates a pod serving image and waits until it answers; a pod that does not is
// deleted.
func (p *Pool) startPod(ctx context.Context, image string) (*warmPod, error) {
	pod := p.podFor(image)
	if err := p.Jobs.Client.Create(ctx, pod); err != nil {
		return nil, fmt.Errorf("creating a function pod: %w", err)
	}
	start := time.Now()
	addr, err := p.waitServing(ctx, pod)
	if err != nil {
		p.deletePod(pod.Name)
		return nil, err
	}
	log.FromContext(ctx).Info("warm function pod serving", "pod", pod.Name, "image", image, "startedIn", time.Since(start).Round(time.Millisecond).String())
	return &warmPod{name: pod.Name, image: image, addr: addr, token: podToken(pod)}, nil
}

// waitServing polls pod until its function container runs and its server answers, and
// returns the server's address.
func (p *Pool) waitServing(ctx context.Context, pod *corev1.Pod) (string, error) {
	interval := p.Jobs.PollInterval
	if interval == 0 || interval > 25*time.Millisecond {
		interval = 25 * time.Millisecond
	}
	var addr string
	for {
		if addr == "" {
			got := &corev1.Pod{}
			if err := p.Jobs.Reader.Get(ctx, client.ObjectKeyFromObject(pod), got); err != nil && !apierrors.IsNotFound(err) {
				return "", fmt.Errorf("reading function pod %s: %w", pod.Name, err)
			}
			ready, err := serving(got)
			if err != nil {
				return "", fmt.Errorf("function pod %s: %w", pod.Name, err)
			}
			if ready {
				addr = net.JoinHostPort(got.Status.PodIP, strconv.Itoa(p.port()))
			}
		}
		if addr != "" && p.healthy(ctx, addr) {
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(interval):
		}
	}
}

// serving tells whether pod's function container runs (so its server is about to answer),
// and fails when it never will.
func serving(pod *corev1.Pod) (bool, error) {
	if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return false, fmt.Errorf("ended (%s): %s", pod.Status.Phase, pod.Status.Message)
	}
	for _, s := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if w := s.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff" ||
			w.Reason == "InvalidImageName" || w.Reason == "CreateContainerConfigError" || w.Reason == "CreateContainerError") {
			return false, fmt.Errorf("container %s: %s: %s", s.Name, w.Reason, w.Message)
		}
		if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
			return false, fmt.Errorf("container %s exited with code %d: %s %s", s.Name, t.ExitCode, t.Reason, t.Message)
		}
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == functionName && s.State.Running != nil && pod.Status.PodIP != "" {
			return true, nil
		}
	}
	return false, nil
}

func (p *Pool) healthy(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+wrapper.HealthPath, nil)
	if err != nil {
		return false
	}
	resp, err := p.HTTPClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// podToken is the bearer token podFor gave pod.
func podToken(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == wrapper.TokenEnv {
				return e.Value
			}
		}
	}
	return ""
}

// podFor is a warm pod of image: a Job's pod without the uploader, serving instead of running
// once, with no service-account token, and a bearer token of its own for its server.
func (p *Pool) podFor(image string) *corev1.Pod {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	token := make([]byte, 24)
	_, _ = rand.Read(token)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kpo-fn-warm-" + hex.EncodeToString(b), Namespace: p.Jobs.Namespace,
			Labels:      map[string]string{PoolLabel: p.name(), PoolInstanceLabel: p.instance},
			Annotations: map[string]string{ImageAnnotation: image},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			EnableServiceLinks:           ptr.To(false),
			SecurityContext:              podSecurityContext(),
			InitContainers:               []corev1.Container{p.Jobs.installWrapper()},
			Containers: []corev1.Container{{
				Name: functionName, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{wrapperPath, "serve", "--listen", ":" + strconv.Itoa(p.port()), "--", p.Jobs.entrypoint(image)},
				Env:             []corev1.EnvVar{{Name: wrapper.TokenEnv, Value: hex.EncodeToString(token)}},
				Ports:           []corev1.ContainerPort{{Name: "serve", ContainerPort: int32(p.port()), Protocol: corev1.ProtocolTCP}}, //nolint:gosec // G115: a port number
				SecurityContext: restrictedContext(), Resources: functionResources(),
				VolumeMounts: []corev1.VolumeMount{{Name: "bin", MountPath: wrapperDir, ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "bin", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

// Start deletes the pods an earlier instance of this pool left (a manager that is gone), then
// deletes pods idle for longer than IdleTimeout until ctx ends, and then deletes every pod of
// this instance. It implements manager.Runnable (under leader election, like the reconcilers
// that use the pool).
func (p *Pool) Start(ctx context.Context) error {
	p.init()
	others, err := labels.NewRequirement(PoolInstanceLabel, selection.NotEquals, []string{p.instance})
	if err != nil {
		return err
	}
	mine, err := labels.NewRequirement(PoolLabel, selection.Equals, []string{p.name()})
	if err != nil {
		return err
	}
	_ = p.Jobs.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(p.Jobs.Namespace),
		client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*mine, *others)}, client.GracePeriodSeconds(0))
	tick := p.idleTimeout() / 4
	if tick > 30*time.Second {
		tick = 30 * time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.DeleteAll()
			return nil
		case now := <-t.C:
			if gone := p.reap(func(w *warmPod) bool { return !w.busy && now.Sub(w.idleSince) >= p.idleTimeout() }); len(gone) > 0 {
				log.FromContext(ctx).Info("deleted idle warm function pods", "pods", gone, "idleTimeout", p.idleTimeout().String())
			}
		}
	}
}

// DeleteAll deletes every pod of this pool instance (busy ones too: their runs fail), in one
// request, so a manager that is stopping is not held up by many pods.
func (p *Pool) DeleteAll() {
	p.init()
	p.mu.Lock()
	for _, ip := range p.images {
		ip.pods = nil
		ip.wake()
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.Jobs.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(p.Jobs.Namespace),
		client.MatchingLabels{PoolLabel: p.name(), PoolInstanceLabel: p.instance}, client.GracePeriodSeconds(0))
}

// reap removes and deletes the pods that match, and returns their names.
func (p *Pool) reap(match func(*warmPod) bool) []string {
	var gone []string
	p.mu.Lock()
	for _, ip := range p.images {
		kept := ip.pods[:0]
		for _, w := range ip.pods {
			if match(w) {
				gone = append(gone, w.name)
				continue
			}
			kept = append(kept, w)
		}
		ip.pods = kept
		ip.wake()
	}
	p.mu.Unlock()
	for _, name := range gone {
		p.deletePod(name)
	}
	return gone
}

// Pods returns the names of the pool's pods by image (for tests and status).
func (p *Pool) Pods() map[string][]string {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]string{}
	for image, ip := range p.images {
		for _, w := range ip.pods {
			out[image] = append(out[image], w.name)
		}
	}
	return out
}
