package gitops

import (
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func object(t *testing.T, text string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	NewWithT(t).Expect(yaml.Unmarshal([]byte(text), &obj.Object)).To(Succeed())
	return obj
}

const commit = "0123456789abcdef0123456789abcdef01234567"

func TestFromKustomization(t *testing.T) {
	source := func(ref string) *unstructured.Unstructured {
		return object(t, "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: app, namespace: flux-system}\n"+
			"spec:\n  url: http://git.example.com/deployments.git\n  ref: "+ref+"\n")
	}
	kustomization := object(t, `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: app, namespace: flux-system}
spec:
  sourceRef: {kind: GitRepository, name: app}
  path: ./my-app/
status:
  lastAppliedRevision: my-app/v2@sha1:`+commit+`
  conditions:
  - {type: Ready, status: "False", reason: HealthCheckFailed, message: "Deployment/my-app/web not ready"}
`)
	for _, tc := range []struct {
		name, ref string
		want      []string
	}{
		{"a tag", "{tag: my-app/v2}", []string{"refs/tags/my-app/v2"}},
		{"a semver range (tags)", "{semver: '>=1.0.0'}", []string{"refs/tags/my-app/v2"}},
		{"a branch", "{branch: my-app/v2}", []string{"refs/heads/my-app/v2"}},
		{"no ref kind", "{}", []string{"refs/tags/my-app/v2", "refs/heads/my-app/v2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			a, ok := FromKustomization(kustomization, source(tc.ref))
			g.Expect(ok).To(BeTrue())
			g.Expect(a.Refs).To(Equal(tc.want))
			g.Expect(a.Dir).To(Equal("my-app"))
			g.Expect(a.RepoURL).To(Equal("http://git.example.com/deployments.git"))
			g.Expect(a.Commit).To(Equal(commit))
			g.Expect(a.Ready).To(Equal(metav1.ConditionFalse))
			g.Expect(a.Message).To(Equal("Deployment/my-app/web not ready"))
		})
	}

	g := NewWithT(t)
	byCommit := kustomization.DeepCopy()
	g.Expect(unstructured.SetNestedField(byCommit.Object, "sha1:"+commit, "status", "lastAppliedRevision")).To(Succeed())
	a, _ := FromKustomization(byCommit, source("{commit: "+commit+"}"))
	g.Expect(a.Refs).To(BeEmpty())
	g.Expect(a.AppliedRef("refs/tags/my-app/v2", commit)).To(BeTrue(), "applied by commit: matched by commit")
	g.Expect(a.AppliedRef("refs/tags/my-app/v1", "ffff")).To(BeFalse())

	a, _ = FromKustomization(kustomization, source("{tag: my-app/v2}"))
	g.Expect(a.AppliedRef("refs/tags/my-app/v2", "other")).To(BeTrue(), "by ref: the tag names the revision")
	g.Expect(a.AppliedRef("refs/tags/my-app/v1", commit)).To(BeFalse(), "another tag on the same commit is another revision")

	notYet := kustomization.DeepCopy()
	unstructured.RemoveNestedField(notYet.Object, "status")
	a, _ = FromKustomization(notYet, source("{tag: my-app/v2}"))
	g.Expect(a.AppliedRef("refs/tags/my-app/v2", commit)).To(BeFalse(), "nothing applied yet")
	g.Expect(a.Ready).To(Equal(metav1.ConditionUnknown))

	bucket := kustomization.DeepCopy()
	g.Expect(unstructured.SetNestedField(bucket.Object, "Bucket", "spec", "sourceRef", "kind")).To(Succeed())
	_, ok := FromKustomization(bucket, source("{}"))
	g.Expect(ok).To(BeFalse(), "a Kustomization of a Bucket applies no Git repository")
}

func TestFromSync(t *testing.T) {
	sync := func(git, status string) *unstructured.Unstructured {
		return object(t, "apiVersion: configsync.gke.io/v1beta1\nkind: RootSync\nmetadata: {name: root-sync, namespace: config-management-system}\n"+
			"spec:\n  sourceType: git\n  git: "+git+"\nstatus: "+status+"\n")
	}
	done := `{sync: {commit: ` + commit + `}, conditions: [{type: Syncing, status: "False", reason: Sync}]}`
	for _, tc := range []struct {
		name, git, status string
		refs              []string
		ready             metav1.ConditionStatus
		message           string
	}{
		{"a tag or branch", "{repo: 'https://git.example.com/deployments', revision: my-app/v1, dir: my-app}", done,
			[]string{"refs/tags/my-app/v1", "refs/heads/my-app/v1"}, metav1.ConditionTrue, ""},
		{"a branch by default", "{repo: 'https://git.example.com/deployments', dir: /my-app}", done,
			[]string{"refs/heads/master"}, metav1.ConditionTrue, ""},
		{"a commit", "{repo: 'https://git.example.com/deployments', revision: " + commit + ", dir: my-app}", done,
			nil, metav1.ConditionTrue, ""},
		{"still syncing", "{repo: 'https://git.example.com/deployments', revision: my-app/v1, dir: my-app}",
			`{sync: {commit: ` + commit + `}, conditions: [{type: Syncing, status: "True", message: applying}]}`,
			[]string{"refs/tags/my-app/v1", "refs/heads/my-app/v1"}, metav1.ConditionUnknown, "syncing: applying"},
		{"an error", "{repo: 'https://git.example.com/deployments', revision: my-app/v1, dir: my-app}",
			`{sync: {commit: ` + commit + `, errors: [{errorMessage: "KNV2009: failed to apply"}]}, conditions: [{type: Syncing, status: "False"}]}`,
			[]string{"refs/tags/my-app/v1", "refs/heads/my-app/v1"}, metav1.ConditionFalse, "sync: KNV2009: failed to apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			a, ok := FromSync(sync(tc.git, tc.status))
			g.Expect(ok).To(BeTrue())
			g.Expect(a.Kind).To(Equal("RootSync"))
			g.Expect(a.Dir).To(Equal("my-app"))
			g.Expect(a.Refs).To(Equal(tc.refs))
			g.Expect(a.Commit).To(Equal(commit))
			g.Expect(a.Ready).To(Equal(tc.ready))
			g.Expect(a.Message).To(Equal(tc.message))
		})
	}
	_, ok := FromSync(sync("{repo: x}", "{}").DeepCopy())
	NewWithT(t).Expect(ok).To(BeTrue())
	oci := sync("{repo: x}", "{}")
	NewWithT(t).Expect(unstructured.SetNestedField(oci.Object, "oci", "spec", "sourceType")).To(Succeed())
	_, ok = FromSync(oci)
	NewWithT(t).Expect(ok).To(BeFalse(), "an OCI source is no Git repository")
}

func TestSameRepository(t *testing.T) {
	g := NewWithT(t)
	g.Expect(SameRepository("https://Git.Example.com/org/deployments.git", "https://git.example.com/org/deployments/")).To(BeTrue())
	g.Expect(SameRepository("http://user:secret@127.0.0.1:8180/deployments.git", "http://127.0.0.1:8180/deployments")).To(BeTrue())
	g.Expect(SameRepository("https://git.example.com/org/deployments", "https://git.example.com/org/blueprints")).To(BeFalse())
	g.Expect(SameRepository("https://git.example.com/Org/deployments", "https://git.example.com/org/deployments")).To(BeFalse(), "paths keep their case")
	g.Expect(NormalizeDir("./")).To(Equal(""))
	g.Expect(NormalizeDir("./a/b/")).To(Equal("a/b"))
}
