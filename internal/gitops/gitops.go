// Package gitops reads what the GitOps tools in a cluster applied from Git: Flux
// Kustomizations (with their GitRepository sources) and Config Sync RootSyncs and RepoSyncs. It
// turns each into the repository, directory and ref it last applied and its health, so kpo can
// show on a published revision where it is deployed. It is pure: objects in, facts out.
package gitops

import (
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The kinds read, by the versions their tools serve today.
var (
	GitRepositoryGVK = schema.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"}
	KustomizationGVK = schema.GroupVersionKind{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Kind: "Kustomization"}
	RootSyncGVK      = schema.GroupVersionKind{Group: "configsync.gke.io", Version: "v1beta1", Kind: "RootSync"}
	RepoSyncGVK      = schema.GroupVersionKind{Group: "configsync.gke.io", Version: "v1beta1", Kind: "RepoSync"}
)

// Applied is what one GitOps object last applied, and how it is doing.
type Applied struct {
	Kind, Namespace, Name string
	// RepoURL and Dir are the Git repository and the directory in it (no leading ./ or
	// trailing /; "" for the root).
	RepoURL, Dir string
	// Refs are the full ref names the applied revision may be (refs/tags/…, refs/heads/…);
	// empty when it was applied by commit.
	Refs []string
	// Commit is the commit applied, when the object names it.
	Commit string
	// Revision is the applied revision as the object names it.
	Revision string
	// Ready and Message are its health.
	Ready   metav1.ConditionStatus
	Message string
}

// AppliedRef reports whether the object applied the revision held at ref (a full ref name)
// at commit: by its ref when it names one, by the commit when it was applied by commit.
func (a Applied) AppliedRef(ref, commit string) bool {
	if a.Revision == "" {
		return false // nothing applied yet
	}
	for _, r := range a.Refs {
		if r == ref {
			return true
		}
	}
	return len(a.Refs) == 0 && a.Commit != "" && a.Commit == commit
}

// fluxRevision is Flux's applied revision: <ref name>@sha1:<hash>, or sha1:<hash> for a commit.
var fluxRevision = regexp.MustCompile(`^(?:(.*)@)?sha1:([0-9a-f]{40})$`)

// FromKustomization is what Flux Kustomization k applied from source, its GitRepository.
// ok is false when k does not apply a GitRepository.
func FromKustomization(k, source *unstructured.Unstructured) (Applied, bool) {
	kind, _, _ := unstructured.NestedString(k.Object, "spec", "sourceRef", "kind")
	if kind != GitRepositoryGVK.Kind || source == nil {
		return Applied{}, false
	}
	a := Applied{Kind: KustomizationGVK.Kind, Namespace: k.GetNamespace(), Name: k.GetName()}
	a.RepoURL, _, _ = unstructured.NestedString(source.Object, "spec", "url")
	path, _, _ := unstructured.NestedString(k.Object, "spec", "path")
	a.Dir = NormalizeDir(path)
	a.Revision, _, _ = unstructured.NestedString(k.Object, "status", "lastAppliedRevision")
	if m := fluxRevision.FindStringSubmatch(a.Revision); m != nil {
		a.Commit = m[2]
		if name := m[1]; name != "" {
			a.Refs = fluxRefs(source, name)
		}
	}
	a.Ready, a.Message = conditionStatus(k, "Ready")
	if a.Ready == metav1.ConditionTrue {
		a.Message = ""
	}
	return a, true
}

// fluxRefs is the full ref name of name, the ref part of a revision from source: a tag for a
// GitRepository following a tag or a semver range, a branch for one following a branch, name
// itself when it is a full ref.
func fluxRefs(source *unstructured.Unstructured, name string) []string {
	if strings.HasPrefix(name, "refs/") {
		return []string{name}
	}
	ref, _, _ := unstructured.NestedStringMap(source.Object, "spec", "ref")
	switch {
	case ref["tag"] != "" || ref["semver"] != "":
		return []string{"refs/tags/" + name}
	case ref["branch"] != "":
		return []string{"refs/heads/" + name}
	}
	return []string{"refs/tags/" + name, "refs/heads/" + name}
}

// FromSync is what Config Sync's RootSync or RepoSync obj applied. ok is false when it does
// not sync from Git.
func FromSync(obj *unstructured.Unstructured) (Applied, bool) {
	a := Applied{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
	if t, _, _ := unstructured.NestedString(obj.Object, "spec", "sourceType"); t != "" && t != "git" {
		return Applied{}, false
	}
	a.RepoURL, _, _ = unstructured.NestedString(obj.Object, "spec", "git", "repo")
	if a.RepoURL == "" {
		return Applied{}, false
	}
	dir, _, _ := unstructured.NestedString(obj.Object, "spec", "git", "dir")
	a.Dir = NormalizeDir(dir)
	a.Commit, _, _ = unstructured.NestedString(obj.Object, "status", "sync", "commit")
	a.Revision = a.Commit
	revision, _, _ := unstructured.NestedString(obj.Object, "spec", "git", "revision")
	switch {
	case revision == "" || revision == "HEAD":
		branch, _, _ := unstructured.NestedString(obj.Object, "spec", "git", "branch")
		if branch == "" {
			branch = "master" // Config Sync's default
		}
		a.Refs = []string{"refs/heads/" + branch}
	case strings.HasPrefix(revision, "refs/"):
		a.Refs = []string{revision}
	case !isCommit(revision):
		a.Refs = []string{"refs/tags/" + revision, "refs/heads/" + revision}
	}
	a.Ready, a.Message = syncHealth(obj)
	return a, true
}

// syncHealth is Config Sync's health of obj: True when its Syncing condition is False (done)
// with no errors, False with the first error, Unknown while it syncs.
func syncHealth(obj *unstructured.Unstructured) (metav1.ConditionStatus, string) {
	for _, stage := range []string{"source", "rendering", "sync"} {
		errs, _, _ := unstructured.NestedSlice(obj.Object, "status", stage, "errors")
		if len(errs) > 0 {
			msg, _, _ := unstructured.NestedString(asMap(errs[0]), "errorMessage")
			return metav1.ConditionFalse, stage + ": " + msg
		}
	}
	status, msg := conditionStatus(obj, "Syncing")
	switch status {
	case metav1.ConditionFalse:
		return metav1.ConditionTrue, ""
	case metav1.ConditionTrue:
		return metav1.ConditionUnknown, "syncing: " + msg
	}
	return metav1.ConditionUnknown, "not synced yet"
}

// conditionStatus is the status and message of obj's condition of type typ (Unknown and no
// message when absent).
func conditionStatus(obj *unstructured.Unstructured, typ string) (metav1.ConditionStatus, string) {
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		m := asMap(c)
		if t, _ := m["type"].(string); t != typ {
			continue
		}
		status, _ := m["status"].(string)
		msg, _ := m["message"].(string)
		switch metav1.ConditionStatus(status) {
		case metav1.ConditionTrue, metav1.ConditionFalse:
			return metav1.ConditionStatus(status), msg
		}
		return metav1.ConditionUnknown, msg
	}
	return metav1.ConditionUnknown, ""
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func isCommit(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NormalizeDir is a directory of a repository as kpo compares them: no leading "./" or "/",
// no trailing "/", "" for the root.
func NormalizeDir(dir string) string {
	dir = strings.TrimPrefix(strings.TrimSpace(dir), "./")
	dir = strings.Trim(dir, "/")
	if dir == "." {
		return ""
	}
	return dir
}

// SameRepository reports whether two Git URLs name one repository: scheme and host compared
// without case, user info, a trailing "/" and ".git" ignored.
func SameRepository(a, b string) bool {
	return repoKey(a) == repoKey(b)
}

func repoKey(u string) string {
	u = strings.TrimSpace(u)
	u = strings.TrimSuffix(strings.TrimSuffix(u, "/"), ".git")
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	host, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = host[at+1:]
	}
	return strings.ToLower(scheme) + "://" + strings.ToLower(host) + "/" + path
}
