package crash_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/testenv"
)

// checkerFixture is a consistent state the checker must accept: package p of repository alpha
// with r1 published as v1 (marker m1), r2 a draft (marker m2), and r3 deleted by the test;
// PackageVariant wv of p, whose downstream package pv has packagevariant-1 published as v1,
// based on p v1; PackageVariants wd (deletionPolicy delete, downstream pd) and wo (orphan,
// downstream po), deleted by the test, with nothing left; package q with r1, published as v1,
// then proposed for deletion and deleted (its tag gone: a gap), and r2 published as v2.
type checkerFixture struct {
	repo    *gitserver.Repo
	objects map[string]client.Object // by kind/name
	worker  *worker
	pkg     *pkgModel
	// q1 and q2 are the commits q's revisions were published at.
	q1, q2 string
}

func newCheckerFixture(t *testing.T) *checkerFixture {
	t.Helper()
	g := NewWithT(t)
	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir()})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = srv.Close() })
	repo, err := srv.CreateRepo("alpha")
	g.Expect(err).NotTo(HaveOccurred())
	kptfile := "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: p\n"
	v1, err := repo.Commit("main", gitserver.Change{
		Files:   map[string]string{"p/Kptfile": kptfile, "p/" + markersFile: "m1\n"},
		Message: "Approve p v1\n\n" + git.KptCommit{Package: "p", WorkspaceName: "r1", Revision: 1}.Line() + "\n",
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Tag("p/v1", v1)).To(Succeed())
	r2, err := repo.Commit("drafts/p/r2", gitserver.Change{Files: map[string]string{"p/Kptfile": kptfile, "p/" + markersFile: "m2\n"}})
	g.Expect(err).NotTo(HaveOccurred())
	downstream := "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: pv\nupstreamLock:\n  type: git\n  git:\n" +
		"    repo: http://git.example.com/alpha.git\n    directory: /p\n    ref: p/v1\n    commit: " + v1 + "\n"
	dv1, err := repo.Commit("main", gitserver.Change{
		Files:   map[string]string{"pv/Kptfile": downstream, "pv/" + markersFile: "m1\n"},
		Message: "Approve pv v1\n\n" + git.KptCommit{Package: "pv", WorkspaceName: "packagevariant-1", Revision: 1}.Line() + "\n",
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Tag("pv/v1", dv1)).To(Succeed())
	f := &checkerFixture{repo: repo, objects: map[string]client.Object{}}
	qKptfile := strings.ReplaceAll(kptfile, "name: p", "name: q")
	f.q1, err = repo.Commit("main", gitserver.Change{
		Files:   map[string]string{"q/Kptfile": qKptfile, "q/" + markersFile: "n1\n"},
		Message: "Approve q v1\n\n" + git.KptCommit{Package: "q", WorkspaceName: "r1", Revision: 1}.Line() + "\n",
	})
	g.Expect(err).NotTo(HaveOccurred())
	f.q2, err = repo.Commit("main", gitserver.Change{
		Files:   map[string]string{"q/" + markersFile: "n1\nn2\n"},
		Message: "Approve q v2\n\n" + git.KptCommit{Package: "q", WorkspaceName: "r2", Revision: 2}.Line() + "\n",
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(repo.Tag("q/v2", f.q2)).To(Succeed())

	f.pkg = &pkgModel{repo: "alpha", name: "p", nextWS: 3}
	f.pkg.revs = []*revision{
		{pkg: f.pkg, workspace: "r1", name: "alpha.p.r1", draft: "p-r1", lifecycle: kpov1.LifecyclePublished, markers: []string{"m1"}, uid: "uid-r1",
			number: 1, commit: v1},
		{pkg: f.pkg, workspace: "r2", name: "alpha.p.r2", draft: "p-r2", lifecycle: kpov1.LifecycleDraft, markers: []string{"m2"}, uid: "uid-r2"},
		{pkg: f.pkg, workspace: "r3", name: "alpha.p.r3", draft: "p-r3", lifecycle: kpov1.LifecycleDraft,
			deleted: true, draftDeleted: true, deletedUID: "uid-r3", deletedObject: "uid uid-r3"},
	}
	q := &pkgModel{repo: "alpha", name: "q", nextWS: 2, deletable: true}
	q.revs = []*revision{
		{pkg: q, workspace: "r1", name: "alpha.q.r1", draft: "q-r1", lifecycle: kpov1.LifecycleDeletionProposed, markers: []string{"n1"},
			deleted: true, draftDeleted: true, deletedUID: "uid-q-r1", deletedObject: "uid uid-q-r1", number: 1, commit: f.q1},
		{pkg: q, workspace: "r2", name: "alpha.q.r2", draft: "q-r2", lifecycle: kpov1.LifecyclePublished, markers: []string{"n2"},
			number: 2, commit: f.q2},
	}
	f.worker = &worker{pkgs: []*pkgModel{f.pkg, q}, variants: []*variantModel{
		{name: "wv", upstream: f.pkg, repo: "alpha", pkg: "pv", policy: kpov1.DeletionPolicyDelete, uid: "uid-wv", ready: true,
			labels: map[string]string{variantLabel: "wv"}, annotations: map[string]string{variantGeneration: "1"}},
		{name: "wd", upstream: f.pkg, repo: "alpha", pkg: "pd", policy: kpov1.DeletionPolicyDelete, uid: "uid-wd", ready: true, deleted: true},
		{name: "wo", upstream: f.pkg, repo: "alpha", pkg: "po", policy: kpov1.DeletionPolicyOrphan, uid: "uid-wo", ready: true, deleted: true},
	}}

	ready := []metav1.Condition{{Type: kpov1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Test", ObservedGeneration: 1}}
	objMeta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: namespace, Generation: 1, UID: types.UID("uid-" + strings.TrimPrefix(name, "alpha.p."))}
	}
	f.add(&kpov1.Repository{ObjectMeta: objMeta("alpha"), Status: kpov1.RepositoryStatus{Conditions: ready}})
	for _, pr := range []struct {
		pkg, ws, commit string
		lifecycle       kpov1.Lifecycle
		revision        int
		content         bool
	}{
		{"p", "r1", v1, kpov1.LifecyclePublished, 1, true}, // its content requested
		{"p", "r2", r2, kpov1.LifecycleDraft, 0, true},
		{"p", "main", v1, kpov1.LifecyclePublished, -1, false},
		{"q", "r2", f.q2, kpov1.LifecyclePublished, 2, false},
		{"q", "main", f.q2, kpov1.LifecyclePublished, -1, false},
	} {
		name := "alpha." + pr.pkg + "." + pr.ws
		obj := &kpov1.PackageRevision{
			ObjectMeta: objMeta(name),
			Spec:       kpov1.PackageRevisionSpec{Repository: "alpha", PackageName: pr.pkg, WorkspaceName: pr.ws, Lifecycle: pr.lifecycle},
			Status:     kpov1.PackageRevisionStatus{Conditions: ready, Lifecycle: pr.lifecycle, Revision: pr.revision, Commit: pr.commit},
		}
		f.add(obj)
		if !pr.content {
			continue
		}
		obj.Status.ResourcesRef = &corev1.LocalObjectReference{Name: name}
		files := map[string][]byte{"Kptfile": []byte(kptfile)}
		data, _, err := content.ToConfigMap(files)
		g.Expect(err).NotTo(HaveOccurred())
		cm := &corev1.ConfigMap{ObjectMeta: objMeta(name), Data: data}
		cm.Labels = map[string]string{kpov1.ContentLabel: "true", kpov1.LifecycleLabel: string(pr.lifecycle)}
		cm.Annotations = map[string]string{kpov1.ContentDigestAnnotation: content.Digest(files)}
		f.add(cm)
	}
	for _, d := range []string{"p-r1", "p-r2", "q-r2"} {
		f.add(&kpov1.PackageDraft{ObjectMeta: objMeta(d), Status: kpov1.PackageDraftStatus{Conditions: ready}})
	}
	f.add(&kpov1.PackageVariant{ObjectMeta: objMeta("wv"), Status: kpov1.PackageVariantStatus{Conditions: ready, ObservedGeneration: 1}})
	f.add(f.variantRevision("pv", "packagevariant-1", dv1, kpov1.LifecyclePublished, 1, "wv"))
	main := f.variantRevision("pv", "main", dv1, kpov1.LifecyclePublished, -1, "")
	main.Status.UpstreamRevision = ""
	f.add(main)
	return f
}

// variantRevision is revision ws of downstream package pkg, labelled as variant's (when set,
// with its customisations) and based on alpha.p.r1.
func (f *checkerFixture) variantRevision(pkg, ws, commit string, l kpov1.Lifecycle, revision int, variant string) *kpov1.PackageRevision {
	pr := &kpov1.PackageRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "alpha." + pkg + "." + ws, Namespace: namespace, Generation: 1, UID: types.UID("uid-" + pkg + "-" + ws)},
		Spec:       kpov1.PackageRevisionSpec{Repository: "alpha", PackageName: pkg, WorkspaceName: ws, Lifecycle: l},
		Status: kpov1.PackageRevisionStatus{Lifecycle: l, Revision: revision, Commit: commit, UpstreamRevision: "alpha.p.r1",
			Conditions: []metav1.Condition{{Type: kpov1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Test", ObservedGeneration: 1}}},
	}
	if variant != "" {
		pr.Labels = map[string]string{kpov1.PackageVariantLabel: variant, variantLabel: variant}
		pr.Annotations = map[string]string{variantGeneration: "1"}
	}
	return pr
}

// add puts obj in the cluster the checker sees, under "<kind>/<name>".
func (f *checkerFixture) add(obj client.Object) {
	f.objects[kindOf(obj)+"/"+obj.GetName()] = obj
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *kpov1.Repository:
		return "repository"
	case *kpov1.PackageRevision:
		return "packagerevision"
	case *kpov1.PackageDraft:
		return "packagedraft"
	case *kpov1.PackageVariant:
		return "packagevariant"
	}
	return "configmap"
}

func (f *checkerFixture) violations(t *testing.T) []string {
	t.Helper()
	var objs []client.Object
	for _, o := range f.objects {
		objs = append(objs, o)
	}
	c := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(objs...).Build()
	k := &checker{c: c, ns: namespace, gitRepo: map[string]*gitserver.Repo{"alpha": f.repo},
		workers: []*worker{f.worker}, messages: map[string]string{}, blobs: map[string]string{}}
	v, err := k.violations(context.Background())
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return v
}

// TestChecker_reportsEachInvariantOnItsObject keeps the crash test honest: a consistent state
// gives no violation, and each kind of damage gives the violation naming it and its object.
func TestChecker_reportsEachInvariantOnItsObject(t *testing.T) {
	t.Run("consistent", func(t *testing.T) {
		NewWithT(t).Expect(newCheckerFixture(t).violations(t)).To(BeEmpty())
	})
	for _, tc := range []struct {
		name   string
		damage func(*testing.T, *checkerFixture)
		want   string
	}{
		{"gap in tags", func(t *testing.T, f *checkerFixture) {
			NewWithT(t).Expect(f.repo.Tag("p/v3", "p/v1")).To(Succeed())
		}, `consecutive tags: repository alpha package p: tags v1,v3: want v1..v3 without gaps but approved deletions (v2 missing)`},
		{"two tags of one revision", func(t *testing.T, f *checkerFixture) {
			NewWithT(t).Expect(f.repo.Tag("p/v2", "p/v1")).To(Succeed())
		}, `no duplicate tags: repository alpha package p: v1 and v2 both publish workspace "r1"`},
		{"approval never tagged", func(t *testing.T, f *checkerFixture) {
			f.pkg.revs[1].lifecycle = kpov1.LifecyclePublished
		}, `every approval tagged: PackageRevision alpha.p.r2: its approval was accepted, but no tag of p in repository alpha publishes workspace "r2"`},
		{"orphaned branch", func(t *testing.T, f *checkerFixture) {
			NewWithT(t).Expect(f.repo.Branch("proposed/p/r7", "drafts/p/r2")).To(Succeed())
		}, `no orphaned branch: repository alpha: branch proposed/p/r7 has no PackageRevision alpha.p.r7`},
		{"orphaned revision", func(t *testing.T, f *checkerFixture) {
			NewWithT(t).Expect(f.repo.DeleteRef("refs/heads/drafts/p/r2")).To(Succeed())
		}, `no orphaned PackageRevision: PackageRevision alpha.p.r2: Draft, but branch drafts/p/r2 does not exist in repository alpha`},
		{"lost edit", func(t *testing.T, f *checkerFixture) {
			f.pkg.revs[1].markers = append(f.pkg.revs[1].markers, "m3")
		}, `every accepted edit in Git: PackageRevision alpha.p.r2 (drafts/p/r2 at `},
		{"not ready", func(t *testing.T, f *checkerFixture) {
			d := f.objects["packagedraft/p-r2"].(*kpov1.PackageDraft)
			d.Status.Conditions = []metav1.Condition{{Type: kpov1.ReadyCondition, Status: metav1.ConditionFalse,
				Reason: kpov1.DuplicateWorkspaceReason, Message: "taken", ObservedGeneration: 1}}
		}, `everything Ready: PackageDraft p-r2: Ready=False reason DuplicateWorkspace: taken`},
		{"deleted revision back", func(t *testing.T, f *checkerFixture) {
			pr := f.objects["packagerevision/alpha.p.r2"].(*kpov1.PackageRevision).DeepCopy()
			pr.Name, pr.UID, pr.Spec.WorkspaceName = "alpha.p.r3", "uid-new", "r3"
			f.add(pr)
		}, `state the accepted operations ask for: PackageRevision alpha.p.r3: the test deleted it (spec Draft; uid uid-r3), but it came back: uid uid-new`},
		{"user's lifecycle overwritten", func(t *testing.T, f *checkerFixture) {
			f.objects["packagerevision/alpha.p.r2"].(*kpov1.PackageRevision).Spec.Lifecycle = kpov1.LifecycleProposed
		}, `state the accepted operations ask for: PackageRevision alpha.p.r2: the test last set spec.lifecycle Draft, but spec.lifecycle is Proposed and status.lifecycle Draft`},
		{"draft without content", func(t *testing.T, f *checkerFixture) {
			delete(f.objects, "configmap/alpha.p.r2")
		}, `content ConfigMap equals Git: PackageRevision alpha.p.r2 (Draft): content ConfigMap alpha.p.r2 does not exist`},
		{"published content left behind", func(t *testing.T, f *checkerFixture) {
			f.objects["packagerevision/alpha.p.r1"].(*kpov1.PackageRevision).Status.ResourcesRef = nil
		}, `content ConfigMap equals Git: ConfigMap alpha.p.r1: left behind: PackageRevision alpha.p.r1 is Published and its content was not requested`},
		{"uncommitted content", func(t *testing.T, f *checkerFixture) {
			f.objects["configmap/alpha.p.r2"].(*corev1.ConfigMap).Data[markersFile] = "m9\n"
		}, `content ConfigMap equals Git: ConfigMap alpha.p.r2 (PackageRevision alpha.p.r2, Draft): holds content that was never committed`},
		{"variant not ready", func(t *testing.T, f *checkerFixture) {
			f.objects["packagevariant/wv"].(*kpov1.PackageVariant).Status.Conditions = []metav1.Condition{{Type: kpov1.ReadyCondition,
				Status: metav1.ConditionFalse, Reason: kpov1.DraftBehindUpstreamReason, Message: "behind", ObservedGeneration: 1}}
		}, `everything Ready: PackageVariant wv: Ready=False reason DraftBehindUpstream: behind`},
		{"variant generation not observed", func(t *testing.T, f *checkerFixture) {
			f.objects["packagevariant/wv"].(*kpov1.PackageVariant).Generation = 2
		}, `everything Ready: PackageVariant wv: status.observedGeneration 1, but generation is 2`},
		{"variant vanished", func(t *testing.T, f *checkerFixture) {
			delete(f.objects, "packagevariant/wv")
		}, `state the accepted operations ask for: PackageVariant wv: does not exist, but the test never deleted it`},
		{"two open drafts of a variant", func(t *testing.T, f *checkerFixture) {
			f.add(f.variantRevision("pv", "packagevariant-2", "", kpov1.LifecycleDraft, 0, "wv"))
			f.add(f.variantRevision("pv", "packagevariant-3", "", kpov1.LifecycleProposed, 0, "wv"))
		}, `at most one open draft per variant: PackageVariant wv: 2 open revisions of downstream package alpha/pv: alpha.pv.packagevariant-2, alpha.pv.packagevariant-3`},
		{"downstream behind its upstream", func(t *testing.T, f *checkerFixture) {
			up := f.objects["packagerevision/alpha.p.r1"].(*kpov1.PackageRevision).DeepCopy()
			up.Name, up.Spec.WorkspaceName, up.Status.Revision, up.Status.ResourcesRef = "alpha.p.r4", "r4", 2, nil
			f.add(up)
		}, `every variant's downstream follows its upstream: PackageVariant wv: its newest revision alpha.pv.packagevariant-1 (Published) is based on "alpha.p.r1", not on alpha.p.r4`},
		{"downstream Kptfile pins another upstream commit", func(t *testing.T, f *checkerFixture) {
			up := f.objects["packagerevision/alpha.p.r1"].(*kpov1.PackageRevision)
			up.Status.Commit = f.objects["packagerevision/alpha.p.r2"].(*kpov1.PackageRevision).Status.Commit
		}, `every variant's downstream follows its upstream: PackageVariant wv: the Kptfile of alpha.pv.packagevariant-1 (commit `},
		{"upstream edit lost downstream", func(t *testing.T, f *checkerFixture) {
			g := NewWithT(t)
			dv1 := f.objects["packagerevision/alpha.pv.packagevariant-1"].(*kpov1.PackageRevision).Status.Commit
			kf, err := f.repo.ReadFile(dv1, "pv/Kptfile")
			g.Expect(err).NotTo(HaveOccurred())
			dv2, err := f.repo.Commit("main", gitserver.Change{Files: map[string]string{"pv/Kptfile": kf, "pv/" + markersFile: "other\n"},
				Message: "Approve pv v2\n\n" + git.KptCommit{Package: "pv", WorkspaceName: "packagevariant-2", Revision: 2}.Line() + "\n"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(f.repo.Tag("pv/v2", dv2)).To(Succeed())
			f.add(f.variantRevision("pv", "packagevariant-2", dv2, kpov1.LifecyclePublished, 2, "wv"))
		}, `every variant's downstream follows its upstream: PackageVariant wv: alpha.pv.packagevariant-2 lacks 1 edits of its upstream alpha.p.r1: m1`},
		{"customisation missing", func(t *testing.T, f *checkerFixture) {
			delete(f.objects["packagerevision/alpha.pv.packagevariant-1"].(*kpov1.PackageRevision).Annotations, variantGeneration)
		}, `every variant's downstream follows its upstream: PackageVariant wv: its newest revision alpha.pv.packagevariant-1 has annotation crash.example.com/generation="", want "1"`},
		{"stray variant branch", func(t *testing.T, f *checkerFixture) {
			NewWithT(t).Expect(f.repo.Branch("drafts/pv/packagevariant-9", "pv/v1")).To(Succeed())
		}, `no orphaned branch: repository alpha: branch drafts/pv/packagevariant-9 has no PackageRevision alpha.pv.packagevariant-9`},
		{"deletion proposed for a live variant", func(t *testing.T, f *checkerFixture) {
			NewWithT(t).Expect(f.repo.Branch("deletionProposed/pv/v1", "pv/v1")).To(Succeed())
		}, `no orphaned branch: repository alpha: branch deletionProposed/pv/v1: the test never proposed a deletion`},
		{"deleted variant's draft left", func(t *testing.T, f *checkerFixture) {
			f.add(f.variantRevision("pd", "packagevariant-1", "", kpov1.LifecycleDraft, 0, "wd"))
		}, `nothing left of a deleted variant: PackageRevision alpha.pd.packagevariant-1: Draft (spec Draft), but PackageVariant wd was deleted with deletionPolicy delete`},
		{"deleted variant's published revision not proposed for deletion", func(t *testing.T, f *checkerFixture) {
			f.add(f.variantRevision("pd", "packagevariant-1", "", kpov1.LifecyclePublished, 1, "wd"))
		}, `nothing left of a deleted variant: PackageRevision alpha.pd.packagevariant-1: spec Published, status Published, but PackageVariant wd was deleted with deletionPolicy delete: want DeletionProposed`},
		{"deleted variant's PackageDraft left", func(t *testing.T, f *checkerFixture) {
			f.add(&kpov1.PackageDraft{ObjectMeta: metav1.ObjectMeta{Name: "wd-clone-0123456789", Namespace: namespace},
				Spec: kpov1.PackageDraftSpec{Repository: "alpha", PackageName: "pd", WorkspaceName: "packagevariant-1"}})
		}, `nothing left of a deleted variant: PackageDraft wd-clone-0123456789: PackageVariant wd was deleted with deletionPolicy delete, but the PackageDraft is still there`},
		{"approved deletion's tag left", func(t *testing.T, f *checkerFixture) {
			NewWithT(t).Expect(f.repo.Tag("q/v1", f.q1)).To(Succeed())
		}, `an approved deletion leaves nothing behind: repository alpha: tag q/v1 still publishes workspace "r1" of alpha.q.r1, whose deletion the test approved`},
		{"approved deletion's branch left", func(t *testing.T, f *checkerFixture) {
			NewWithT(t).Expect(f.repo.Branch("deletionProposed/q/v1", f.q1)).To(Succeed())
		}, `an approved deletion leaves nothing behind: repository alpha: branch deletionProposed/q/v1 is left behind: the test approved the deletion of PackageRevision alpha.q.r1`},
		{"approved deletion's content left", func(t *testing.T, f *checkerFixture) {
			cm := f.objects["configmap/alpha.p.r2"].(*corev1.ConfigMap).DeepCopy()
			cm.Name = "alpha.q.r1"
			f.add(cm)
		}, `an approved deletion leaves nothing behind: ConfigMap alpha.q.r1: left behind: the test approved the deletion of PackageRevision alpha.q.r1`},
		{"approved deletion's revision left", func(t *testing.T, f *checkerFixture) {
			pr := f.objects["packagerevision/alpha.q.r2"].(*kpov1.PackageRevision).DeepCopy()
			pr.Name, pr.UID, pr.Spec.WorkspaceName = "alpha.q.r1", "uid-q-r1", "r1"
			pr.Spec.Lifecycle, pr.Status.Lifecycle = kpov1.LifecycleDeletionProposed, kpov1.LifecycleDeletionProposed
			f.add(pr)
		}, `state the accepted operations ask for: PackageRevision alpha.q.r1: the test deleted it (spec DeletionProposed; uid uid-q-r1), but it still exists`},
		{"deletion took another revision's tag", func(t *testing.T, f *checkerFixture) {
			NewWithT(t).Expect(f.repo.DeleteRef("refs/tags/q/v2")).To(Succeed())
		}, `every published revision keeps its tag: PackageRevision alpha.q.r2: published as q/v2 at `},
		{"published revision's tag moved", func(t *testing.T, f *checkerFixture) {
			g := NewWithT(t)
			moved, err := f.repo.Commit("elsewhere", gitserver.Change{Files: map[string]string{"q/" + markersFile: "n2\n"},
				Message: "Approve q v2\n\n" + git.KptCommit{Package: "q", WorkspaceName: "r2", Revision: 2}.Line() + "\n"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(f.repo.Tag("q/v2", moved)).To(Succeed())
		}, `every published revision keeps its tag: PackageRevision alpha.q.r2: published as q/v2 at `},
		{"orphaned revision still the variant's", func(t *testing.T, f *checkerFixture) {
			f.add(f.variantRevision("po", "packagevariant-1", "", kpov1.LifecycleDraft, 0, "wo"))
		}, `nothing left of a deleted variant: PackageRevision alpha.po.packagevariant-1: still labelled kpo.dev/package-variant=wo, but the variant was deleted with deletionPolicy orphan`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCheckerFixture(t)
			tc.damage(t, f)
			v := f.violations(t)
			NewWithT(t).Expect(v).To(ContainElement(HavePrefix(tc.want)), strings.Join(v, "\n"))
		})
	}
}
