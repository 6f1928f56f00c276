package scale

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	"kpo.dev/kpo/internal/gitserver"
)

func TestParseSizes_readsRxPxTList(t *testing.T) {
	g := NewWithT(t)
	sizes, err := ParseSizes("3x50x3, 10x100x3", 2, 4096)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sizes).To(Equal([]Size{
		{Repositories: 3, Packages: 50, Tags: 3, Drafts: 2, PackageBytes: 4096},
		{Repositories: 10, Packages: 100, Tags: 3, Drafts: 2, PackageBytes: 4096},
	}))
	g.Expect(sizes[1].Published()).To(Equal(3000))
	g.Expect(sizes[1].PackageRevisions()).To(Equal(10 * (100*4 + 2)))

	for _, bad := range []string{"", "3x50", "0x1x1", "3x50x3x1", "3x50x3junk", "a,b"} {
		_, err := ParseSizes(bad, 3, 8192)
		g.Expect(err).To(HaveOccurred(), bad)
	}
}

func TestPackageFiles_areResourcesOfAboutTheSizeAsked(t *testing.T) {
	g := NewWithT(t)
	files := PackageFiles("repo-000", "pkg-0001", 2, 8192)
	total := 0
	for name, content := range files {
		total += len(content)
		var obj map[string]any
		g.Expect(yaml.Unmarshal([]byte(content), &obj)).To(Succeed(), name)
		g.Expect(obj).To(HaveKey("apiVersion"), name)
		g.Expect(obj).To(HaveKey("kind"), name)
	}
	g.Expect(total).To(BeNumerically("~", 8192, 200))
	g.Expect(files["Kptfile"]).To(ContainSubstring("name: pkg-0001"))

	next := PackageFiles("repo-000", "pkg-0001", 3, 8192)
	for name := range files {
		if name == "deployment.yaml" {
			g.Expect(next[name]).NotTo(Equal(files[name]))
		} else {
			g.Expect(next[name]).To(Equal(files[name]), name)
		}
	}
}

func TestGenerateRepository_writesTagsMainAndDrafts(t *testing.T) {
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	g := NewWithT(t)
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = srv.Close() })
	size := Size{Repositories: 1, Packages: 3, Tags: 2, Drafts: 2, PackageBytes: 2048}
	g.Expect(GenerateRepository(context.Background(), srv, "repo-000", size)).To(Succeed())

	repo, err := srv.OpenRepo("repo-000")
	g.Expect(err).NotTo(HaveOccurred())
	refs, err := repo.Refs()
	g.Expect(err).NotTo(HaveOccurred())
	var names []string
	for name := range refs {
		names = append(names, name)
	}
	g.Expect(names).To(ConsistOf(
		"refs/heads/main",
		"refs/tags/pkg-0000/v1", "refs/tags/pkg-0001/v1", "refs/tags/pkg-0002/v1",
		"refs/tags/pkg-0000/v2", "refs/tags/pkg-0001/v2", "refs/tags/pkg-0002/v2",
		"refs/heads/drafts/pkg-0000/bench", "refs/heads/drafts/pkg-0001/bench",
	))
	deploy, err := repo.ReadFile("pkg-0001/v1", "pkg-0001/deployment.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(deploy).To(ContainSubstring(":v1\n"))
	deploy, err = repo.ReadFile("main", "pkg-0002/deployment.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(deploy).To(ContainSubstring(":v2\n"))

	g.Expect(PushTag(repo, "pkg-0001", 3, 2048)).To(Succeed())
	deploy, err = repo.ReadFile("pkg-0001/v3", "pkg-0001/deployment.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(deploy).To(ContainSubstring(":v3\n"))
}

func TestParseMetrics_sumsRequestsByMethod(t *testing.T) {
	g := NewWithT(t)
	text := `# HELP rest_client_requests_total Number of HTTP requests, partitioned by status code, method, and host.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:1",method="GET"} 10
rest_client_requests_total{code="200",host="127.0.0.1:1",method="PATCH"} 7
rest_client_requests_total{code="409",host="127.0.0.1:1",method="PATCH"} 2
rest_client_requests_total{code="201",host="127.0.0.1:1",method="POST"} 3
workqueue_depth{controller="repository",name="repository"} 0
odd_label{path="a\"b,c}"} 1.5e+00
no_labels 42
`
	ss, err := ParseMetrics(strings.NewReader(text))
	g.Expect(err).NotTo(HaveOccurred())
	r := RequestsOf(ss)
	g.Expect(r.ByMethod).To(Equal(map[string]float64{"GET": 10, "PATCH": 9, "POST": 3}))
	g.Expect(r.Conflicts).To(Equal(2.0))
	g.Expect(r.Writes()).To(Equal(12.0))
	g.Expect(r.String()).To(Equal("GET 10, POST 3, PATCH 9 (409: 2)"))
	g.Expect(ss.Sum("odd_label", map[string]string{"path": `a"b,c}`})).To(Equal(1.5))
	g.Expect(ss.Sum("no_labels", nil)).To(Equal(42.0))

	before := Requests{ByMethod: map[string]float64{"GET": 4, "PATCH": 9}, Conflicts: 1}
	g.Expect(r.Sub(before)).To(Equal(Requests{ByMethod: map[string]float64{"GET": 6, "POST": 3}, Conflicts: 1}))
}

func TestSummarizeWrites_countsWritesByVerbAndObject(t *testing.T) {
	g := NewWithT(t)
	lines := []string{
		`{"verb":"get","objectRef":{"resource":"secrets","name":"creds"},"responseStatus":{"code":200}}`,
		`{"verb":"patch","objectRef":{"resource":"packagerevisions","subresource":"status","name":"r.a.v1"},"responseStatus":{"code":200}}`,
		`{"verb":"patch","objectRef":{"resource":"packagerevisions","subresource":"status","name":"r.a.v1"},"responseStatus":{"code":409}}`,
		`{"verb":"patch","objectRef":{"resource":"packagerevisions","subresource":"status","name":"r.b.v1"},"responseStatus":{"code":200}}`,
		`{"verb":"create","objectRef":{"resource":"configmaps","name":"r.a.v2"},"responseStatus":{"code":201}}`,
	}
	path := t.TempDir() + "/audit.log"
	g.Expect(os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"+`{"verb":"partial`), 0o600)).To(Succeed())
	log := &AuditLog{path: path}
	events, err := log.Next()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events).To(HaveLen(5))
	s := SummarizeWrites(events)
	g.Expect(s.Total()).To(Equal(4))
	g.Expect(s.Conflicts).To(Equal(1))
	g.Expect(s.String()).To(Equal("patch packagerevisions/status 3 (r.a.v1 ×2, r.b.v1); create configmaps 1 (r.a.v2); 1 answered 409 Conflict"))

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = fmt.Fprintln(f, `","objectRef":{"resource":"x"}}`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.Close()).To(Succeed())
	events, err = log.Next()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events).To(HaveLen(1))
	g.Expect(events[0].Kind()).To(Equal("partial x"))
}

func TestThousands(t *testing.T) {
	g := NewWithT(t)
	g.Expect(thousands(0)).To(Equal("0"))
	g.Expect(thousands(999)).To(Equal("999"))
	g.Expect(thousands(1000)).To(Equal("1,000"))
	g.Expect(thousands(-1234567)).To(Equal("-1,234,567"))
}
