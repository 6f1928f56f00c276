package merge

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/kptfile"
)

// Scenarios 13-16 of the conformance README call kpt's ReplaceNonKRMFiles directly: YAML files
// (new.yaml) added upstream are not its business, and only non-KRM files move.
func TestReplaceNonKRMFiles_directCall(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "datasets")
	dataset := func(name string) map[string][]byte { return readDataset(t, dir, name) }
	withNewYAML := func(files map[string][]byte) map[string][]byte {
		files = maps.Clone(files)
		files["new.yaml"] = []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: new\n")
		return files
	}
	rewritten := func(files map[string][]byte) map[string][]byte {
		files = maps.Clone(files)
		files["somefunction.py"] = []byte("print(\"edited locally\")\n")
		return files
	}
	for _, tc := range []struct {
		name                     string
		updated, original, local map[string][]byte
		want                     map[string][]byte
	}{
		{"13-deleted-upstream-removed", withNewYAML(dataset("dataset2")), dataset("dataset5"), dataset("dataset5"), dataset("dataset2")},
		{"14-added-upstream-appear", withNewYAML(dataset("dataset5")), dataset("dataset2"), dataset("dataset2"), dataset("dataset5")},
		{"15-local-additions-kept", withNewYAML(dataset("dataset2")), dataset("dataset2"), dataset("dataset5"), dataset("dataset5")},
		{"16-local-edit-kept", withNewYAML(dataset("dataset5")), dataset("dataset5"), rewritten(dataset("dataset5")), rewritten(dataset("dataset5"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local := maps.Clone(tc.local)
			replaceNonKRMFiles(local, tc.original, tc.updated)
			NewWithT(t).Expect(local).To(Equal(tc.want))
		})
	}
}

func TestUpdate_unknownStrategy_isRefused(t *testing.T) {
	g := NewWithT(t)
	_, err := Update(Input{Local: map[string][]byte{"Kptfile": []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: a\n")}, Strategy: "foo"})
	g.Expect(err).To(MatchError(ErrInvalidInput))
	g.Expect(err.Error()).To(ContainSubstring(`unrecognized update strategy "foo"`))
}

func TestUpdate_pathOutsidePackage_isRefused(t *testing.T) {
	_, err := Update(Input{Local: map[string][]byte{"Kptfile": nil, "../escape.yaml": nil}})
	NewWithT(t).Expect(err).To(MatchError(ErrInvalidInput))
}

func TestUpdate_subpackageAddedOnBothSides_isRefused(t *testing.T) {
	kf := func(name string) []byte {
		return []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: " + name + "\n")
	}
	_, err := Update(Input{
		Origin:   map[string][]byte{},
		Upstream: map[string][]byte{"db/Kptfile": kf("db")},
		Local:    map[string][]byte{"Kptfile": kf("app"), "db/Kptfile": kf("db")},
	})
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring(`package "db" was added both upstream and locally`)))
}

func TestUpdate_duplicateResources_isRefused(t *testing.T) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n"
	files := map[string][]byte{
		"Kptfile": []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: a\n"),
		"cm.yaml": []byte(cm + "---\n" + cm),
	}
	_, err := Update(Input{Origin: files, Upstream: files, Local: files})
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring(`found duplicate "original" resources in file "cm.yaml"`)))
}

// benchmarkPackage builds a package of n Deployments (five to a file) with an image and a
// replica count taken from the arguments.
func benchmarkPackage(n int, image func(i int) string, replicas func(i int) int) map[string][]byte {
	files := map[string][]byte{
		kptfile.FileName: []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: big\n"),
	}
	for f := 0; f < n/5; f++ {
		var b []byte
		for j := 0; j < 5; j++ {
			i := f*5 + j
			if j > 0 {
				b = append(b, "---\n"...)
			}
			b = fmt.Appendf(b, `apiVersion: apps/v1
kind: Deployment
metadata: # kpt-merge: default/app-%[1]d
  name: app-%[1]d
  namespace: default
  labels:
    app: app-%[1]d
  annotations:
    internal.kpt.dev/upstream-identifier: 'apps|Deployment|default|app-%[1]d'
spec:
  replicas: %[3]d
  selector:
    matchLabels:
      app: app-%[1]d
  template:
    metadata:
      labels:
        app: app-%[1]d
    spec:
      containers:
      - name: app
        image: %[2]s
        ports:
        - containerPort: 8080
        env:
        - name: MODE
          value: production
        resources:
          limits:
            memory: 256Mi
`, i, image(i), replicas(i))
		}
		files[fmt.Sprintf("apps/app-%03d.yaml", f)] = b
	}
	return files
}

// BenchmarkUpdate_500Resources50LocalChanges is the benchmark: resource-merge of a
// 500-resource package with 50 resources changed locally, to an upstream release that changed
// 100 resources (20 of them also changed locally). Target: 200 ms per update.
func BenchmarkUpdate_500Resources50LocalChanges(b *testing.B) {
	benchmarkUpdate(b, func(i int) bool { return i%5 == 0 })
}

// BenchmarkUpdate_500Resources50LocalChanges_allChangedUpstream is the worst case: upstream
// changed every resource, so every one is walked field by field.
func BenchmarkUpdate_500Resources50LocalChanges_allChangedUpstream(b *testing.B) {
	benchmarkUpdate(b, func(int) bool { return true })
}

func benchmarkUpdate(b *testing.B, changedUpstream func(i int) bool) {
	const n = 500
	origin := benchmarkPackage(n, func(int) string { return "app:v1" }, func(int) int { return 1 })
	upstream := benchmarkPackage(n, func(i int) string {
		if changedUpstream(i) {
			return "app:v2"
		}
		return "app:v1"
	}, func(int) int { return 1 })
	local := benchmarkPackage(n, func(int) string { return "app:v1" }, func(i int) int {
		if i%10 == 0 {
			return 3 // 50 local changes
		}
		return 1
	})
	local[kptfile.FileName] = []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: big\n" +
		"upstream:\n  type: git\n  git:\n    repo: r\n    directory: /\n    ref: v1\n")
	in := Input{Origin: origin, Upstream: upstream, Local: local}

	res, err := Update(in)
	if err != nil {
		b.Fatal(err)
	}
	if got := string(res.Files["apps/app-000.yaml"]); !containsAll(got, "replicas: 3", "image: app:v2") {
		b.Fatalf("unexpected merge result:\n%s", got)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Update(in); err != nil {
			b.Fatal(err)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func TestUpdate_conflictsCarryTheirFieldAndBothValues(t *testing.T) {
	g := NewWithT(t)
	kf := "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n"
	cm := func(size, color string) []byte {
		return []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: prod\ndata:\n  size: " + size + "\n  color: " + color + "\n")
	}
	res, err := Update(Input{
		Origin:   map[string][]byte{"Kptfile": []byte(kf), "app.yaml": cm("small", "blue")},
		Upstream: map[string][]byte{"Kptfile": []byte(kf), "app.yaml": cm("large", "red")},
		Local:    map[string][]byte{"Kptfile": []byte(kf), "app.yaml": cm("medium", "green")},
	})
	g.Expect(err).To(MatchError(ErrConflicts))
	g.Expect(res.Conflicts).To(HaveLen(2))
	size := res.Conflicts[1]
	g.Expect(size.Field).To(Equal("data.size"))
	g.Expect(size.Ref).To(Equal(FieldRef{File: "app.yaml", APIVersion: "v1", Kind: "ConfigMap", Namespace: "prod", Name: "app", Path: []string{"data", "size"}}))
	g.Expect(size.Local).To(Equal("medium"))
	g.Expect(size.Upstream).To(Equal("large"))

	got, err := GetField(res.Files, size.Ref)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal("large"), "the merge result has upstream's value")
	files, err := SetField(res.Files, size.Ref, size.Local)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(GetField(files, size.Ref)).To(Equal("medium"))
	g.Expect(GetField(files, res.Conflicts[0].Ref)).To(Equal("red"), "the other field is untouched")
	g.Expect(GetField(res.Files, size.Ref)).To(Equal("large"), "the input is not modified")
}

func TestSetField_createsRemovesAndSetsStructuredValues(t *testing.T) {
	g := NewWithT(t)
	files := map[string][]byte{"d.yaml": []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: a:1\n")}
	ref := func(path ...string) FieldRef {
		return FieldRef{File: "d.yaml", APIVersion: "apps/v1", Kind: "Deployment", Name: "app", Path: path}
	}
	image := ref("spec", "template", "spec", "containers", "[name=app]", "image")
	out, err := SetField(files, image, "b:2")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out["d.yaml"])).To(ContainSubstring("image: b:2"))

	out, err = SetField(out, ref("spec", "template", "spec", "containers", "[name=side]"), "{name: side, image: s:1}")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out["d.yaml"])).To(ContainSubstring("- name: side\n        image: s:1\n"), "set in block style")

	out, err = SetField(out, ref("spec", "replicas"), "3")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(GetField(out, ref("spec", "replicas"))).To(Equal("3"))

	out, err = SetField(out, image, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(GetField(out, image)).To(Equal(""), "removed")

	_, err = SetField(out, FieldRef{File: "d.yaml", APIVersion: "v1", Kind: "Service", Name: "app", Path: []string{"spec"}}, "x")
	g.Expect(err).To(MatchError(ErrFieldNotFound))
	_, err = SetField(out, ref(), "x")
	g.Expect(err).To(MatchError(ErrInvalidInput))
}
