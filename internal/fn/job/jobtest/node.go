// Package jobtest plays the node for the job evaluator in tests: no kubelet runs on these
// machines, so Node watches the evaluator's Jobs and runs their containers' commands — the
// real kpo-fn-wrapper with a local function binary in place of the image — as local
// processes. Everything on the API-server side stays real.
package jobtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Node runs the Jobs of one namespace.
type Node struct {
	// Client reads Jobs and input ConfigMaps.
	Client client.Client
	// Namespace of the Jobs.
	Namespace string
	// Kubeconfig is given to the uploader process.
	Kubeconfig string
	// Wrapper is the path of a built kpo-fn-wrapper.
	Wrapper string
	// Functions maps a function image to the local command that stands for its entrypoint.
	// Jobs of other images never run (as with an image that cannot be pulled).
	Functions map[string][]string

	mu   sync.Mutex
	seen map[string]bool
	// Ran counts the Jobs run, by image.
	Ran map[string]int
}

// Start runs Jobs until ctx ends.
func (n *Node) Start(ctx context.Context) {
	n.seen, n.Ran = map[string]bool{}, map[string]int{}
	go func() {
		for ctx.Err() == nil {
			jobs := &batchv1.JobList{}
			if err := n.Client.List(ctx, jobs, client.InNamespace(n.Namespace)); err == nil {
				for i := range jobs.Items {
					job := jobs.Items[i]
					n.mu.Lock()
					isNew := !n.seen[job.Name]
					n.seen[job.Name] = true
					n.mu.Unlock()
					if isNew {
						go n.run(ctx, &job)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
}

// Runs returns how many Jobs of image ran.
func (n *Node) Runs(image string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.Ran[image]
}

func (n *Node) run(ctx context.Context, job *batchv1.Job) {
	spec := job.Spec.Template.Spec
	if len(spec.Containers) != 2 {
		return
	}
	fn, upload := spec.Containers[0], spec.Containers[1]
	local, ok := n.Functions[fn.Image]
	if !ok {
		return
	}
	n.mu.Lock()
	n.Ran[fn.Image]++
	n.mu.Unlock()

	root, err := os.MkdirTemp("", "kpo-jobtest-")
	if err != nil {
		return
	}
	defer os.RemoveAll(root)
	mounts := map[string]string{}
	for _, v := range spec.Volumes {
		dir := filepath.Join(root, v.Name)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return
		}
		if v.ConfigMap != nil {
			cm := &corev1.ConfigMap{}
			if err := n.Client.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: v.ConfigMap.Name}, cm); err != nil {
				return
			}
			for k, data := range cm.Data {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(data), 0o600); err != nil {
					return
				}
			}
		}
		mounts[v.Name] = dir
	}
	fnCmd := n.localize(fn, mounts, local)
	upCmd := n.localize(upload, mounts, nil)
	fnProc := exec.CommandContext(ctx, fnCmd[0], fnCmd[1:]...) //nolint:gosec // G204: the test node runs the commands of the Jobs under test, as a kubelet would
	upProc := exec.CommandContext(ctx, upCmd[0], upCmd[1:]...) //nolint:gosec // G204: likewise, the uploader container's command
	upProc.Env = append(os.Environ(), "KUBECONFIG="+n.Kubeconfig)
	// Both containers run at once, as in a pod.
	if err := upProc.Start(); err != nil {
		return
	}
	if out, err := fnProc.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "jobtest: function container of %s: %v: %s\n", job.Name, err, out)
	}
	_ = upProc.Wait()
}

// localize rewrites a container's command for this machine: the wrapper's path, the volume
// mount paths, and — for the function container — the entrypoint after "--".
func (n *Node) localize(c corev1.Container, mounts map[string]string, entrypoint []string) []string {
	var out []string
	for i, arg := range c.Command {
		if arg == "--" && entrypoint != nil {
			out = append(out, "--")
			out = append(out, entrypoint...)
			break
		}
		if i == 0 {
			out = append(out, n.Wrapper)
			continue
		}
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(arg, m.MountPath) {
				arg = mounts[m.Name] + strings.TrimPrefix(arg, m.MountPath)
				break
			}
		}
		out = append(out, arg)
	}
	return out
}
