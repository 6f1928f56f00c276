package controller

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/gitserver"
)

// BenchmarkGitSteps measures the Git work of each authoring step as the reconcilers do it,
// without the API server, in repositories of 100 and 1,000 packages with 3 published revisions
// each (300 and 3,000 tags) and a draft branch for every tenth package, served over HTTP by
// the test Git server. Per iteration, on a new draft of one package (made untimed): the
// clone opened and fetched before each step (open), a content edit committed and pushed
// (edit), the move to proposed (propose), the approval (approve: commit on main, tag, proposed
// branch deleted, in one push), and after each of the three the package re-read from the clone
// as the sync does it (reread: its refs, commits and trees). It reports the mean of each step
// in ms; a step whose cost does not depend on the size of the repository shows the same
// numbers at both sizes.
func BenchmarkGitSteps(b *testing.B) {
	for _, packages := range []int{100, 1000} {
		b.Run(fmt.Sprintf("packages=%d,tags=3", packages), func(b *testing.B) {
			benchGitSteps(b, packages)
		})
	}
}

func benchGitSteps(b *testing.B, packages int) {
	ctx := context.Background()
	const user, password = "bench", "bench-password"
	srv, err := gitserver.Start(gitserver.Options{Root: b.TempDir(), Username: user, Password: password})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Close() }()
	if _, err := srv.GenerateCatalog("catalog", gitserver.Catalog{Packages: packages, Tags: 3, Drafts: packages / 10}); err != nil {
		b.Fatal(err)
	}
	repo := &kpov1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: "bench"}}
	repo.Spec.Git.Repo, repo.Spec.Git.Branch = srv.RepoURL("catalog"), "main"
	cache := git.NewCache(b.TempDir())
	creds := git.Credentials{Username: user, Password: password}
	open := func() *git.Repo {
		src, err := cache.Open(ctx, "bench", repo.Spec.Git.Repo, creds)
		if err == nil {
			err = src.Fetch(ctx)
		}
		if err != nil {
			b.Fatal(err)
		}
		return src
	}
	src := open() // the first fetch clones: not measured

	spent := map[string]time.Duration{}
	count := map[string]int{}
	measure := func(step string, f func() error) {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", step, err)
		}
		spent[step] += time.Since(start)
		count[step]++
	}
	openStep := func() error { src = open(); return nil }
	reread := func(pkg, ws string) func() error {
		return func() error { return rereadPackage(src, repo, pkg, ws) }
	}
	reconciler := &PackageRevisionReconciler{}

	for i := 0; b.Loop(); i++ {
		pkg := gitserver.CatalogPackage(i % packages)
		ws := fmt.Sprintf("bench-%d", i)
		draftRef, proposedRef := git.DraftRef(pkg, ws), git.ProposedRef(pkg, ws)
		b.StopTimer()
		head, _ := src.Ref(git.BranchRef("main"))
		files, err := src.ReadTree(head, pkg)
		if err != nil {
			b.Fatal(err)
		}
		first, err := src.CreateCommit(git.NewCommit{Parents: []string{head}, Dir: pkg, Files: files, AllowEmpty: true,
			Message: commitMessage("Copy "+pkg, pkg, ws, 0, "copy", "")})
		if err == nil {
			err = src.PushRefs(ctx, []git.RefUpdate{{Name: draftRef, New: first}})
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		files["cm.yaml"] = fmt.Appendf(nil, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  edit: \"%d\"\n", pkg, i)
		var edited string
		measure("open", openStep)
		measure("edit", func() error {
			edited, err = commitEdit(ctx, src, draftRef, git.NewCommit{Dir: pkg, Files: files,
				Message: commitMessage("Edit "+pkg, pkg, ws, 0, "edit", "")})
			return err
		})
		measure("reread", reread(pkg, ws))
		measure("open", openStep)
		measure("propose", func() error { return moveRef(ctx, src, draftRef, proposedRef, edited) })
		measure("reread", reread(pkg, ws))
		pr := &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Name: ws, Annotations: map[string]string{
			kpov1.ApprovedByAnnotation: "approver", kpov1.ApprovedCommitAnnotation: edited}}}
		pr.Spec.PackageName, pr.Spec.WorkspaceName = pkg, ws
		measure("open", openStep)
		measure("approve", func() error { return reconciler.approve(ctx, src, repo, pr, pkg) })
		measure("reread", reread(pkg, ws))
	}

	steps := make([]string, 0, len(spent))
	for step := range spent {
		steps = append(steps, step)
	}
	sort.Strings(steps)
	for _, step := range steps {
		b.ReportMetric(float64(spent[step].Microseconds())/1000/float64(count[step]), step+"-ms")
	}
}

// rereadPackage does the Git reads of syncPackage for package pkg: discovery of its revisions
// (its refs, the commits of its tags, whether the branch holds it), the tree hash of each, and
// the files of workspace ws and of the package on the branch, whose trees changed.
func rereadPackage(src *git.Repo, repo *kpov1.Repository, pkg, ws string) error {
	revs, err := discovery.Discover(src, discovery.Options{Branch: branchOf(repo), Directory: repo.Spec.Git.Directory, Package: pkg})
	if err != nil {
		return err
	}
	for _, rev := range revs {
		if _, err := src.TreeHash(rev.Commit, rev.Path); err != nil {
			return err
		}
		if rev.Workspace == ws || rev.Revision < 0 {
			if _, err := src.ReadTree(rev.Commit, rev.Path); err != nil {
				return err
			}
		}
	}
	return nil
}
