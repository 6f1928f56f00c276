package controller_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/gitserver"
)

// BenchmarkLifecycle measures the authoring loop against the real API server and Git server:
// a content edit until it is committed and Ready, and an approval until it is tagged, for a
// 50-resource package in repositories of 10, 100 and 1,000 packages. It reports p50 and p99.
func BenchmarkLifecycle(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("packages=%d/edit", n), func(b *testing.B) {
			ns, name := benchPackage(b, n)
			var times []time.Duration
			for i := 0; b.Loop(); i++ {
				before := getRevision(NewWithT(b), ns, name).Status.Commit
				start := time.Now()
				editContent(b, ns, name, func(d map[string]string) {
					d["resource-0.yaml"] = resource(0, fmt.Sprintf("edit-%d", i))
				})
				waitFor(b, func(g Gomega) {
					pr := getRevision(g, ns, name)
					g.Expect(pr.Status.Commit).NotTo(Equal(before))
					g.Expect(findCondition(pr.Status.Conditions, kpov1.ReadyCondition).Status).To(BeEquivalentTo("True"))
				})
				times = append(times, time.Since(start))
			}
			reportPercentiles(b, times)
		})
		b.Run(fmt.Sprintf("packages=%d/approve", n), func(b *testing.B) {
			ns, name := benchPackage(b, n)
			published := publish(b, ns, name)
			var times []time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				d := fmt.Sprintf("a%d", i)
				newDraft(b, ns, d, "catalog", "bench", d, copySource(published.Name))
				draft := waitDraft(b, ns, d)
				NewWithT(b).Expect(setLifecycle(k8sClient, ns, draft, kpov1.LifecycleProposed)).To(Succeed())
				waitLifecycle(b, ns, draft, kpov1.LifecycleProposed)
				b.StartTimer()
				start := time.Now()
				NewWithT(b).Expect(setLifecycle(k8sClient, ns, draft, kpov1.LifecyclePublished)).To(Succeed())
				waitFor(b, func(g Gomega) { g.Expect(getRevision(g, ns, draft).Status.Revision).To(BeNumerically(">", 0)) })
				times = append(times, time.Since(start))
			}
			reportPercentiles(b, times)
		})
	}
}

// benchPackage registers a repository holding n packages, one of them a 50-resource draft, and
// returns the draft's namespace and PackageRevision name.
func benchPackage(b *testing.B, n int) (string, string) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	ns := newNamespace(b)
	srv := newGitServer(b)
	newCredentials(b, ns, "git-creds", gitPassword)
	gitRepo, err := srv.CreateRepo("catalog")
	NewWithT(b).Expect(err).NotTo(HaveOccurred())
	files := map[string]string{}
	for i := range n - 1 {
		files[fmt.Sprintf("pkg-%04d/Kptfile", i)] = kptfile(fmt.Sprintf("pkg-%04d", i))
		files[fmt.Sprintf("pkg-%04d/cm.yaml", i)] = resource(i, "filler")
	}
	_, err = gitRepo.Commit("main", gitserver.Change{Message: "Fill", Files: files})
	NewWithT(b).Expect(err).NotTo(HaveOccurred())
	newRepository(b, ns, "catalog", srv.RepoURL("catalog"), "git-creds")
	NewWithT(b).Eventually(func(g Gomega) {
		g.Expect(listRevisions(g, ns, "catalog")).To(HaveLen(n - 1))
	}, 5*time.Minute, 200*time.Millisecond).Should(Succeed())

	newDraft(b, ns, "bench", "catalog", "bench", "w", initSource("benchmark package"))
	name := waitDraft(b, ns, "bench")
	editContent(b, ns, name, func(d map[string]string) {
		for i := range 50 {
			d[fmt.Sprintf("resource-%d.yaml", i)] = resource(i, "initial")
		}
	})
	waitFor(b, func(g Gomega) {
		g.Expect(contentOf(g, ns, name).Annotations[kpov1.ContentDigestAnnotation]).NotTo(BeEmpty())
	})
	waitLifecycle(b, ns, name, kpov1.LifecycleDraft)
	return ns, name
}

func resource(i int, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%d\ndata:\n  value: %s\n", i, value)
}

// waitFor polls tightly, so the measured latency is the manager's, not the poll interval's.
func waitFor(b *testing.B, f func(g Gomega)) {
	b.Helper()
	NewWithT(b).Eventually(func(g Gomega) { f(g) }, time.Minute, 2*time.Millisecond).Should(Succeed())
}

func reportPercentiles(b *testing.B, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	pct := func(p float64) float64 {
		return float64(times[int(p*float64(len(times)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkAuthoring measures the authoring steps end to end, through the API server, in
// repositories of 100 and 1,000 packages with 3 published revisions each (300 and 3,000 tags,
// 400 and 4,000 PackageRevisions besides the drafts): a content edit until it is committed and
// Ready, the move to Proposed, and the approval until it is tagged, each on a new draft copied
// from a published revision. It reports p50 and p99 per step; flat numbers across the two
// sizes mean the steps do not grow with the repository.
func BenchmarkAuthoring(b *testing.B) {
	for _, packages := range []int{100, 1000} {
		b.Run(fmt.Sprintf("packages=%d,tags=3", packages), func(b *testing.B) {
			b.StopTimer()
			ns := newNamespace(b)
			srv := newGitServer(b)
			newCredentials(b, ns, "git-creds", gitPassword)
			_, err := srv.GenerateCatalog("catalog", gitserver.Catalog{Packages: packages, Tags: 3, Drafts: packages / 10})
			NewWithT(b).Expect(err).NotTo(HaveOccurred())
			newRepository(b, ns, "catalog", srv.RepoURL("catalog"), "git-creds")
			NewWithT(b).Eventually(func(g Gomega) {
				g.Expect(listRevisions(g, ns, "catalog")).To(HaveLen(packages*4 + packages/10))
			}, 10*time.Minute, time.Second).Should(Succeed())
			b.StartTimer()

			var edits, proposals, approvals []time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				pkg := gitserver.CatalogPackage(i * 7 % packages)
				d := fmt.Sprintf("author-%d", i)
				newDraft(b, ns, d, "catalog", pkg, d, copySource(fmt.Sprintf("catalog.%s.v3", pkg)))
				name := waitDraft(b, ns, d)
				before := waitLifecycle(b, ns, name, kpov1.LifecycleDraft).Status.Commit
				b.StartTimer()

				start := time.Now()
				editContent(b, ns, name, func(data map[string]string) { data["cm.yaml"] = resource(i, "edited") })
				waitFor(b, func(g Gomega) {
					pr := getRevision(g, ns, name)
					g.Expect(pr.Status.Commit).NotTo(Equal(before))
					g.Expect(findCondition(pr.Status.Conditions, kpov1.ReadyCondition).Status).To(BeEquivalentTo("True"))
				})
				edits = append(edits, time.Since(start))

				start = time.Now()
				NewWithT(b).Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecycleProposed)).To(Succeed())
				waitFor(b, func(g Gomega) {
					g.Expect(getRevision(g, ns, name).Status.Lifecycle).To(Equal(kpov1.LifecycleProposed))
				})
				proposals = append(proposals, time.Since(start))

				start = time.Now()
				NewWithT(b).Expect(setLifecycle(k8sClient, ns, name, kpov1.LifecyclePublished)).To(Succeed())
				waitFor(b, func(g Gomega) { g.Expect(getRevision(g, ns, name).Status.Revision).To(BeNumerically(">", 0)) })
				approvals = append(approvals, time.Since(start))
			}
			reportStep(b, "edit", edits)
			reportStep(b, "propose", proposals)
			reportStep(b, "approve", approvals)
		})
	}
}

// reportStep reports the p50 and p99 of one step's latencies.
func reportStep(b *testing.B, step string, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	pct := func(p float64) float64 {
		return float64(times[int(p*float64(len(times)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), step+"-p50-ms")
	b.ReportMetric(pct(0.99), step+"-p99-ms")
}
