package controller_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

// BenchmarkPackageVariantSet measures a fan-out: a PackageVariantSet selecting 100 deployment
// Repositories (registered beforehand, not timed), from its creation until its 100
// PackageVariants are Ready with their drafts cloned, customised (a prepended set-labels
// mutator whose config is a CEL expression) and rendered. The target is 60 s on the
// 2-core development machine.
func BenchmarkPackageVariantSet(b *testing.B) {
	const n = 100
	b.StopTimer()
	ns := newNamespace(b)
	srv := newGitServer(b)
	newCredentials(b, ns, "git-creds", gitPassword)
	newEmptyRepository(b, srv, ns, "blueprints")
	newDraft(b, ns, "base-v1", "blueprints", "base", "v1", initSource("base"))
	v1 := waitDraft(b, ns, "base-v1")
	editContent(b, ns, v1, func(d map[string]string) { d["app.yaml"] = appConfigMap })
	waitFor(b, func(g Gomega) {
		g.Expect(contentOf(g, ns, v1).Data["app.yaml"]).To(Equal(appConfigMap))
		g.Expect(findCondition(getRevision(g, ns, v1).Status.Conditions, kpov1.ReadyCondition).Status).To(BeEquivalentTo("True"))
	})
	publish(b, ns, v1)
	for i := range n {
		newEmptyRepository(b, srv, ns, fmt.Sprintf("edge-%03d", i), func(r *kpov1.Repository) {
			r.Spec.Deployment = true
			r.Labels = map[string]string{"fleet": "edge"}
		})
	}
	b.StartTimer()
	for i := 0; b.Loop(); i++ {
		set := fmt.Sprintf("fan%d", i)
		start := time.Now()
		NewWithT(b).Expect(k8sClient.Create(context.Background(), &kpov1.PackageVariantSet{
			ObjectMeta: metav1.ObjectMeta{Name: set, Namespace: ns},
			Spec: kpov1.PackageVariantSetSpec{
				Upstream: kpov1.UpstreamPackage{Repo: "blueprints", Package: "base", Revision: "v1"},
				Targets: []kpov1.Target{{
					RepositorySelector: &metav1.LabelSelector{MatchLabels: map[string]string{"fleet": "edge"}},
					Template: &kpov1.PackageVariantTemplate{
						Downstream: &kpov1.DownstreamTemplate{Package: set},
						Pipeline: &kpov1.PipelineTemplate{Mutators: []kpov1.FunctionTemplate{{
							Function:       kpov1.Function{Name: "site", Image: "ghcr.io/kptdev/krm-functions-catalog/set-labels:latest"},
							ConfigMapExprs: []kpov1.MapExpr{{Key: ptr("site"), ValueExpr: ptr("repoDefault")}},
						}}},
					},
				}},
			},
		})).To(Succeed())
		NewWithT(b).Eventually(func(g Gomega) {
			s := &kpov1.PackageVariantSet{}
			g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: set}, s)).To(Succeed())
			g.Expect(s.Status.ReadyVariants).To(BeEquivalentTo(n))
			g.Expect(findCondition(s.Status.Conditions, kpov1.ReadyCondition).Status).To(BeEquivalentTo("True"))
		}, 10*time.Minute, 100*time.Millisecond).Should(Succeed())
		elapsed := time.Since(start)
		b.StopTimer()
		list := &kpov1.PackageVariantList{}
		NewWithT(b).Expect(k8sClient.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{kpov1.PackageVariantSetLabel: set})).To(Succeed())
		NewWithT(b).Expect(list.Items).To(HaveLen(n))
		for _, pv := range list.Items {
			NewWithT(b).Expect(pv.Status.DownstreamTargets).To(HaveLen(1))
			NewWithT(b).Expect(pv.Status.DownstreamTargets[0].RenderStatus).To(Equal(kpov1.RenderSucceededReason), pv.Name)
		}
		b.ReportMetric(elapsed.Seconds(), "s-to-100-rendered")
		b.StartTimer()
	}
}
