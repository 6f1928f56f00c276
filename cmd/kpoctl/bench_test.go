package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/kpoctl"
)

// BenchmarkBulkUpgrade_100Downstreams measures `kpoctl rpkg upgrade --all-downstreams`: 100
// published downstream packages of one deployment repository, each cloned from upstream v1 and
// changed locally (and with a set-labels pipeline), are upgraded to upstream v2 until every
// upgrade draft is merged, rendered, committed and Ready. It reports the total (ns/op, total-s,
// and ms/draft: the total over n) and each draft's latency from its PackageDraft's creation to
// Ready, queueing behind the others included (p50-draft-ms and p99-draft-ms, polled every
// 10 ms). Allocations include the in-process manager's. Registering the repositories and waiting for the downstreams to show they
// are behind is setup, outside the timer.
func BenchmarkBulkUpgrade_100Downstreams(b *testing.B) {
	const n = 100
	var totals, perDraft []time.Duration
	for b.Loop() {
		b.StopTimer()
		kubeconfig, ns := bulkUpgradeSetup(b, n)
		args := []string{"--kubeconfig", kubeconfig, "rpkg", "upgrade", "--all-downstreams", "blueprints.app.v2", "--timeout", "15m"}
		var stdout, stderr bytes.Buffer
		watch := watchDrafts(ns)
		b.StartTimer()

		start := time.Now()
		code := kpoctl.Run(context.Background(), args, kpoctl.IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr})
		total := time.Since(start)

		b.StopTimer()
		times := watch()
		if code != 0 {
			b.Fatalf("kpoctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args[2:], " "), code, stdout.String(), stderr.String())
		}
		if got := strings.Count(stdout.String(), " created ("); got != n {
			b.Fatalf("%d upgrade drafts created, want %d:\n%s", got, n, stdout.String())
		}
		totals = append(totals, total)
		perDraft = append(perDraft, times...)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(totals)
	b.ReportMetric(totals[len(totals)/2].Seconds(), "total-s")
	slices.Sort(perDraft)
	pct := func(p float64) float64 {
		return float64(perDraft[int(p*float64(len(perDraft)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-draft-ms")
	b.ReportMetric(pct(0.99), "p99-draft-ms")
	b.ReportMetric(float64(totals[len(totals)/2].Milliseconds())/n, "ms/draft")
}

// bulkUpgradeSetup makes a namespace with a blueprints repository (package app, v1 and v2) and a
// deployments repository of n published clones of app v1, each with a local change, and waits
// until every clone shows it is behind v2. It returns a kubeconfig for the namespace.
func bulkUpgradeSetup(b *testing.B, n int) (kubeconfig, namespace string) {
	b.Helper()
	g := NewWithT(b)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kpoctl-bench-"}}
	g.Expect(adminClient.Create(ctx, ns)).To(Succeed())
	b.Cleanup(func() { _ = adminClient.Delete(context.Background(), ns) })

	srv, err := gitserver.Start(gitserver.Options{Root: b.TempDir(), Username: gitUser, Password: gitPassword})
	g.Expect(err).NotTo(HaveOccurred())
	b.Cleanup(func() { _ = srv.Close() })
	blueprints, err := srv.CreateRepo("blueprints")
	g.Expect(err).NotTo(HaveOccurred())
	upstream := func(size string) map[string]string {
		return map[string]string{
			"app/Kptfile": "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\n" +
				"info:\n  description: an app\npipeline:\n  mutators:\n  - image: ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2.0\n    configMap:\n      tier: app\n",
			"app/app.yaml": appConfigMap(size, ""),
		}
	}
	v1, err := blueprints.Commit("main", gitserver.Change{Message: "app v1", Files: upstream("small")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(blueprints.Tag("app/v1", v1)).To(Succeed())
	v2, err := blueprints.Commit("main", gitserver.Change{Message: "app v2", Files: upstream("large")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(blueprints.Tag("app/v2", v2)).To(Succeed())

	// The clones, as `kpoctl rpkg clone blueprints.app.v1` and an edit would leave them, written
	// to Git directly: n published packages take seconds this way instead of minutes.
	deployments, err := srv.CreateRepo("deployments")
	g.Expect(err).NotTo(HaveOccurred())
	files := map[string]string{}
	for i := range n {
		pkg := fmt.Sprintf("app-%03d", i)
		files[pkg+"/Kptfile"] = fmt.Sprintf(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: %[1]s
  annotations:
    config.kubernetes.io/local-config: "true"
upstream:
  type: git
  git:
    repo: %[2]s
    directory: /app
    ref: app/v1
  updateStrategy: resource-merge
upstreamLock:
  type: git
  git:
    repo: %[2]s
    directory: /app
    ref: app/v1
    commit: %[3]s
info:
  description: an app
pipeline:
  mutators:
  - image: ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2.0
    configMap:
      tier: app
`, pkg, blueprints.URL(), v1)
		files[pkg+"/app.yaml"] = appConfigMap("small", pkg)
	}
	commit, err := deployments.Commit("main", gitserver.Change{Message: "clones of app v1", Files: files})
	g.Expect(err).NotTo(HaveOccurred())
	for i := range n {
		g.Expect(deployments.Tag(fmt.Sprintf("app-%03d/v1", i), commit)).To(Succeed())
	}

	dir := b.TempDir()
	kc := kubeconfigTemplate.DeepCopy()
	kc.Contexts["envtest"].Namespace = ns.Name
	kubeconfig = filepath.Join(dir, "kubeconfig")
	g.Expect(clientcmd.WriteToFile(*kc, kubeconfig)).To(Succeed())
	for _, args := range [][]string{
		{"repo", "reg", blueprints.URL()},
		{"repo", "reg", deployments.URL(), "--deployment"},
	} {
		args = append([]string{"--kubeconfig", kubeconfig}, args...)
		args = append(args, "--repo-basic-username", gitUser, "--repo-basic-password", gitPassword, "--timeout", "5m")
		var out bytes.Buffer
		code := kpoctl.Run(ctx, args, kpoctl.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
		g.Expect(code).To(Equal(0), "kpoctl %s:\n%s", strings.Join(args[2:], " "), out.String())
	}
	g.Eventually(func(g Gomega) {
		list := &kpov1.PackageRevisionList{}
		g.Expect(adminClient.List(ctx, list, client.InNamespace(ns.Name), client.MatchingLabels{
			kpov1.RepositoryLabel: "deployments", kpov1.UpstreamBehindLabel: "true", kpov1.LatestRevisionLabel: "true",
		})).To(Succeed())
		g.Expect(list.Items).To(HaveLen(n))
		for _, pr := range list.Items {
			g.Expect(pr.Status.UpstreamRevision).To(Equal("blueprints.app.v1"))
		}
	}, 5*time.Minute, 200*time.Millisecond).Should(Succeed())
	return kubeconfig, ns.Name
}

// appConfigMap is the app's resource; a downstream adds its own key, a local change the
// upgrade keeps.
func appConfigMap(size, region string) string {
	s := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  color: blue\n  size: " + size + "\n"
	if region != "" {
		s += "  region: " + region + "\n"
	}
	return s
}

// watchDrafts polls the PackageDrafts of ns every 10 ms until the returned function is called,
// which returns, for every PackageDraft that became Ready, the time from when it was first seen
// to when it was first seen Ready.
func watchDrafts(ns string) func() []time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	seen, ready := map[string]time.Time{}, map[string]time.Time{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list := &kpov1.PackageDraftList{}
			if err := adminClient.List(ctx, list, client.InNamespace(ns)); err == nil {
				now := time.Now()
				mu.Lock()
				for _, d := range list.Items {
					if _, ok := seen[d.Name]; !ok {
						seen[d.Name] = now
					}
					if _, ok := ready[d.Name]; ok {
						continue
					}
					for _, c := range d.Status.Conditions {
						if c.Type == kpov1.ReadyCondition && c.Status == metav1.ConditionTrue && c.ObservedGeneration >= d.Generation {
							ready[d.Name] = now
						}
					}
				}
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() []time.Duration {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		var out []time.Duration
		for _, name := range slices.Sorted(maps.Keys(ready)) {
			out = append(out, ready[name].Sub(seen[name]))
		}
		return out
	}
}
