package content

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestResourceDiff_matchesResourcesWhereverTheyLive(t *testing.T) {
	g := NewWithT(t)
	from := map[string][]byte{
		"all.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  greeting: hello\n---\n" +
			"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: web\nspec:\n  replicas: 1\n"),
		"gone.yaml": []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: app\n"),
		"README.md": []byte("# app\n"),
	}
	to := map[string][]byte{
		// The ConfigMap moved to its own file, unchanged; the Deployment changed.
		"configmap.yaml":  []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  greeting: hello\n"),
		"deployment.yaml": []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: web\nspec:\n  replicas: 3\n"),
		"new.yaml":        []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n"),
		"README.md":       []byte("# app\n"),
	}
	changes, same, err := ResourceDiff(from, to)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(same).To(Equal(2), "the ConfigMap and the README")
	g.Expect(changes).To(HaveLen(3))
	byID := map[string]ResourceChange{}
	for _, c := range changes {
		byID[c.ID] = c
	}
	g.Expect(byID).To(HaveKey("Deployment web/app (apps)"))
	g.Expect(byID["Deployment web/app (apps)"].Change).To(Equal(ResourceChanged))
	g.Expect(byID["Deployment web/app (apps)"].File).To(Equal("deployment.yaml"))
	g.Expect(byID["Deployment web/app (apps)"].Diff).To(ContainSubstring("-  replicas: 1\n+  replicas: 3\n"))
	g.Expect(byID["Service app"].Change).To(Equal(ResourceRemoved))
	g.Expect(byID["Service app"].File).To(Equal("gone.yaml"))
	g.Expect(byID["Secret token"].Change).To(Equal(ResourceAdded))
}

func TestResourceDiff_comparesUnparsableAndOtherFilesWhole(t *testing.T) {
	g := NewWithT(t)
	changes, same, err := ResourceDiff(map[string][]byte{"bad.yaml": []byte("a: [\n"), "x.sh": []byte("echo 1\n")},
		map[string][]byte{"bad.yaml": []byte("a: [b\n"), "x.sh": []byte("echo 1\n")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(same).To(Equal(1))
	g.Expect(changes).To(HaveLen(1))
	g.Expect(changes[0].ID).To(Equal("file bad.yaml"))
}
