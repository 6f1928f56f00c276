package node_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/builtin"
)

// latencyRuns is how many renders each case times; the benchmark reports their median.
const latencyRuns = 20

// latencyPackage is a small package (a Deployment and a ConfigMap) whose pipeline runs one
// set-namespace, as image.
func latencyPackage(image, namespace string) map[string][]byte {
	return map[string][]byte{
		"Kptfile": []byte(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: latency
  annotations:
    config.kubernetes.io/local-config: "true"
pipeline:
` + mutator(image, namespace)),
		"app.yaml": []byte(appYAML),
	}
}

// BenchmarkFunctionLatency times one render of the same package through set-namespace, p50
// over latencyRuns runs (run with -benchtime 1x): in process (built-in), as a local process
// (exec evaluator, kpo-fn), and as a Job on the node — warm (its images on the node) and cold
// (the function image removed from the node before each run and loaded again, as a pull would:
// no registry is reachable here, so the run includes `ctr images import` of its tarball); and
// in a warm pod of the pool, warm (the pod running) and cold (a new pod each run, its image on
// the node).
// No function cache: every run evaluates.
func BenchmarkFunctionLatency(b *testing.B) {
	builtinImage := "gcr.io/kpt-fn/set-namespace:v0.4.1"
	hostFn := filepath.Join(nodeDir, "images", "bin", "testfn-set-namespace-host")
	jobs := newJobEvaluator(k8sClient, k8sClient)
	jobs.PollInterval = 20 * time.Millisecond

	b.Run("builtin", func(b *testing.B) {
		latency(b, fn.NewSelector(nil, nil, -1), builtinImage, nil)
	})
	b.Run("exec", func(b *testing.B) {
		exec := &fn.ExecEvaluator{Binaries: map[string]string{builtin.ImageName(setNamespaceImage): hostFn}}
		latency(b, fn.NewSelector(exec, nil, -1), setNamespaceImage, nil)
	})
	b.Run("job-warm", func(b *testing.B) {
		latency(b, fn.NewSelector(nil, jobs, -1), setNamespaceImage, nil)
	})
	b.Run("pool-warm", func(b *testing.B) {
		s := fn.NewSelector(nil, jobs, -1)
		s.Pool = newTestPool(b)
		s.Pool.Jobs = jobs
		// The first run starts the pod; the timed ones find it.
		if _, _, err := s.Render(context.Background(), latencyPackage(setNamespaceImage, "first")); err != nil {
			b.Fatal(err)
		}
		latency(b, s, setNamespaceImage, nil)
	})
	b.Run("pool-cold", func(b *testing.B) {
		s := fn.NewSelector(nil, jobs, -1)
		s.Pool = newTestPool(b)
		s.Pool.Jobs = jobs
		// Each run starts a pod (the image is on the node): the last one is deleted first.
		latency(b, s, setNamespaceImage, func() error { s.Pool.DeleteAll(); return nil })
	})
	b.Run("job-cold", func(b *testing.B) {
		latency(b, fn.NewSelector(nil, jobs, -1), setNamespaceImage, func() error {
			return ctr("images", "rm", "--sync", setNamespaceImage)
		}, func() error {
			return ctr("images", "import", filepath.Join(nodeDir, "images", "fn-set-namespace.tar"))
		})
	})
}

// latency renders latencyRuns times through s and reports the median. Each run first calls
// untimed (not timed), then timed (timed, before the render).
func latency(b *testing.B, s *fn.Selector, image string, untimed func() error, timed ...func() error) {
	var d []time.Duration
	for i := range latencyRuns {
		if untimed != nil {
			if err := untimed(); err != nil {
				b.Fatal(err)
			}
		}
		files := latencyPackage(image, fmt.Sprintf("run-%d", i))
		start := time.Now()
		for _, f := range timed {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := s.Render(context.Background(), files); err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
		d = append(d, time.Since(start))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "ns/op")
	b.ReportMetric(ms(d[len(d)/2]), "p50-ms")
	b.ReportMetric(ms(d[0]), "min-ms")
	b.ReportMetric(ms(d[len(d)-1]), "max-ms")
}

// ctr runs ctr against the node's containerd, in the namespace the kubelet uses.
func ctr(args ...string) error {
	cmd := exec.Command("ctr", append([]string{"--address", filepath.Join(nodeDir, "containerd", "containerd.sock"), "-n", "k8s.io"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr %v: %v: %s", args, err, out)
	}
	return nil
}
