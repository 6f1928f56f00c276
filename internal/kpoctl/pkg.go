package kpoctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/merge"
)

// newPkgCommand is kpt's `pkg` group on local directories: fetch a package from Git and
// update it, with no cluster involved.
func newPkgCommand(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pkg",
		Short: "Fetch and update local packages from Git, as kpt pkg does",
		Example: `  kpoctl pkg get https://github.com/example/blueprints.git/basens@basens/v1 my-ns
  kpoctl pkg update my-ns@basens/v2`,
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newPkgGetCommand(o), newPkgUpdateCommand(o))
	return cmd
}

// pkgGitOptions are the credentials flags of pkg get and update.
type pkgGitOptions struct {
	username, password string
}

func (g *pkgGitOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&g.username, "repo-basic-username", "", "Username for the Git repository (basic auth); userinfo in the URL works too.")
	cmd.Flags().StringVar(&g.password, "repo-basic-password", "", "Password for the Git repository (basic auth).")
}

// gitSource is a package in a Git repository: REPO_URI[.git]/PKG_PATH[@VERSION].
type gitSource struct {
	repo, directory, ref string
}

// parseGitSource reads kpt's package argument. The repository ends at ".git" when the
// argument has it; otherwise the whole path is the repository and the package is its root.
func parseGitSource(arg string) (gitSource, error) {
	var src gitSource
	// @VERSION is the last "@" after the host (and after ".git" when there is one), so that
	// userinfo in the URL and refs with slashes (basens/v1) both work.
	start := 0
	if i := strings.Index(arg, "://"); i >= 0 {
		start = len(arg)
		if j := strings.Index(arg[i+3:], "/"); j >= 0 {
			start = i + 3 + j
		}
	}
	if i := strings.Index(arg, ".git"); i > start {
		start = i
	}
	if at := strings.LastIndex(arg, "@"); at > start {
		src.ref, arg = arg[at+1:], arg[:at]
	}
	if i := strings.Index(arg, ".git/"); i >= 0 {
		src.repo, src.directory = arg[:i+len(".git")], arg[i+len(".git/"):]
	} else {
		src.repo = strings.TrimSuffix(arg, "/")
	}
	src.directory = "/" + strings.Trim(path.Clean("/"+src.directory), "/")
	if src.repo == "" {
		return src, fmt.Errorf("%q names no repository: use REPO_URI[.git]/PKG_PATH[@VERSION]", arg)
	}
	return src, nil
}

// openGit opens the repository in a fresh cache under a temporary directory and fetches it;
// done removes the directory.
func openGit(ctx context.Context, repoURL string, g *pkgGitOptions) (repo *git.Repo, done func(), err error) {
	dir, err := os.MkdirTemp("", "kpoctl-git-")
	if err != nil {
		return nil, nil, err
	}
	done = func() { _ = os.RemoveAll(dir) }
	repo, err = git.NewCache(dir).Open(ctx, "pkg", repoURL, git.Credentials{Username: g.username, Password: g.password})
	if err == nil {
		err = repo.Fetch(ctx)
	}
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("fetching %s: %w", git.RedactURL(repoURL), err)
	}
	return repo, done, nil
}

// resolveRef resolves ref, or when empty the default branch (main, then master), as kpt
// defaults to the remote's default branch.
func resolveRef(repo *git.Repo, ref string) (resolvedRef, commit string, err error) {
	if ref != "" {
		commit, err = repo.Resolve(ref)
		return ref, commit, err
	}
	for _, b := range []string{"main", "master"} {
		if commit, err = repo.Resolve(b); err == nil {
			return b, commit, nil
		}
	}
	return "", "", fmt.Errorf("the repository has neither a main nor a master branch: name a ref with @VERSION: %w", err)
}

func newPkgGetCommand(o *globalOptions) *cobra.Command {
	g := &pkgGitOptions{}
	strategy := ""
	cmd := &cobra.Command{
		Use:   "get REPO_URI[.git]/PKG_PATH[@VERSION] [LOCAL_DEST_DIRECTORY]",
		Short: "Fetch a package from a Git repository into a new local directory (kpt pkg get)",
		Long: `get copies the package at PKG_PATH of the Git repository, at VERSION (a branch, tag or
commit; default the main or master branch), into LOCAL_DEST_DIRECTORY (default: the package's
name in the current directory), which must not exist. The Kptfile records the upstream and the
commit it was fetched at, for pkg update; every resource gets kpt's merge comment.`,
		Example: `  kpoctl pkg get https://github.com/example/blueprints.git/basens@basens/v1 my-ns`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := parseGitSource(args[0])
			if err != nil {
				return err
			}
			dest := path.Base(src.directory)
			if dest == "/" || dest == "." {
				dest = strings.TrimSuffix(path.Base(src.repo), ".git")
			}
			if len(args) == 2 {
				dest = args[1]
			}
			return runPkgGet(cmd.Context(), o.streams.Out, g, src, dest, kptfile.UpdateStrategy(strategy))
		},
	}
	g.addFlags(cmd)
	cmd.Flags().StringVar(&strategy, "strategy", string(kptfile.ResourceMerge), "Update strategy recorded in the Kptfile for later updates: resource-merge, fast-forward, force-delete-replace or copy-merge.")
	return cmd
}

func runPkgGet(ctx context.Context, out io.Writer, g *pkgGitOptions, src gitSource, dest string, strategy kptfile.UpdateStrategy) error {
	if err := checkStrategy(strategy); err != nil {
		return err
	}
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("destination directory %q already exists", dest)
	}
	repo, done, err := openGit(ctx, src.repo, g)
	if err != nil {
		return err
	}
	defer done()
	ref, commit, err := resolveRef(repo, src.ref)
	if err != nil {
		return err
	}
	files, err := repo.ReadTree(commit, strings.TrimPrefix(src.directory, "/"))
	if err != nil {
		return fmt.Errorf("reading %s at %s: %w", src.directory, ref, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("%s has no package at %s (ref %s)", git.RedactURL(src.repo), src.directory, ref)
	}
	if files, err = merge.AddMergeComments(files); err != nil {
		return err
	}
	kf := kptfile.NewInit(filepath.Base(dest), "", nil, "")
	if data, ok := files[kptfile.FileName]; ok {
		if kf, err = kptfile.Decode(data); err != nil {
			return fmt.Errorf("the upstream package's Kptfile: %w", err)
		}
	}
	kf.Metadata.Name = filepath.Base(dest)
	kf.Upstream = &kptfile.Upstream{Type: kptfile.GitOrigin, UpdateStrategy: strategy,
		Git: &kptfile.Git{Repo: git.RedactURL(src.repo), Directory: src.directory, Ref: ref}}
	kf.UpstreamLock = &kptfile.UpstreamLock{Type: kptfile.GitOrigin,
		Git: &kptfile.GitLock{Repo: git.RedactURL(src.repo), Directory: src.directory, Ref: ref, Commit: commit}}
	data, err := kptfile.Encode(kf)
	if err != nil {
		return err
	}
	files[kptfile.FileName] = data
	if err := writeLocalPackage(dest, nil, files); err != nil {
		return err
	}
	fmt.Fprintf(out, "Fetched %s (%s at %s) into %s\n", src.directory, ref, shortCommit(commit), dest)
	return nil
}

func checkStrategy(s kptfile.UpdateStrategy) error {
	switch s {
	case kptfile.ResourceMerge, kptfile.FastForward, kptfile.ForceDeleteReplace, kptfile.CopyMerge:
		return nil
	}
	return fmt.Errorf("unrecognized update strategy %q: use resource-merge, fast-forward, force-delete-replace or copy-merge", s)
}

func newPkgUpdateCommand(o *globalOptions) *cobra.Command {
	g := &pkgGitOptions{}
	strategy := ""
	cmd := &cobra.Command{
		Use:   "update [LOCAL_PKG_DIRECTORY][@VERSION]",
		Short: "Merge upstream changes into a local package (kpt pkg update)",
		Long: `update brings the changes of the package's upstream, from the commit it was last fetched or
updated at to VERSION (default: the ref the Kptfile's upstream names), into the local package,
with kpt's strategies: resource-merge (three-way, local edits kept; the default), fast-forward
(refused when the package was edited locally), force-delete-replace (upstream wins) and
copy-merge. A field changed on both sides takes upstream's value, as with kpt, and is reported.`,
		Example: `  kpoctl pkg update my-ns@basens/v2
  kpoctl pkg update my-ns --strategy force-delete-replace`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := "."
			if len(args) == 1 {
				arg = args[0]
			}
			dir, version, _ := strings.Cut(arg, "@")
			if dir == "" {
				dir = "."
			}
			return runPkgUpdate(cmd.Context(), o.streams, g, dir, version, kptfile.UpdateStrategy(strategy))
		},
	}
	g.addFlags(cmd)
	cmd.Flags().StringVar(&strategy, "strategy", "", "Update strategy (default: the Kptfile's upstream.updateStrategy, else resource-merge).")
	return cmd
}

func runPkgUpdate(ctx context.Context, streams IOStreams, g *pkgGitOptions, dir, version string, strategy kptfile.UpdateStrategy) error {
	local, err := readLocalPackage(dir)
	if err != nil {
		return err
	}
	kfData, ok := local[kptfile.FileName]
	if !ok {
		return fmt.Errorf("%s is not a kpt package: it has no Kptfile", dir)
	}
	kf, err := kptfile.Decode(kfData)
	if err != nil {
		return fmt.Errorf("%s/Kptfile: %w", dir, err)
	}
	if kf.Upstream == nil || kf.Upstream.Git == nil {
		return fmt.Errorf("package %s has no upstream: fetch it with pkg get first", dir)
	}
	if strategy == "" {
		strategy = kf.Upstream.UpdateStrategy
	}
	if strategy == "" {
		strategy = kptfile.ResourceMerge
	}
	if err := checkStrategy(strategy); err != nil {
		return err
	}
	up := *kf.Upstream.Git
	if version != "" {
		up.Ref = version
	}
	repo, done, err := openGit(ctx, up.Repo, g)
	if err != nil {
		return err
	}
	defer done()
	directory := strings.TrimPrefix(up.Directory, "/")
	var origin map[string][]byte
	if kf.UpstreamLock != nil && kf.UpstreamLock.Git != nil && kf.UpstreamLock.Git.Commit != "" {
		if origin, err = repo.ReadTree(kf.UpstreamLock.Git.Commit, directory); err != nil {
			return fmt.Errorf("reading the package at the commit it was fetched at (%s): %w", shortCommit(kf.UpstreamLock.Git.Commit), err)
		}
	}
	ref, commit, err := resolveRef(repo, up.Ref)
	if err != nil {
		return err
	}
	upstream, err := repo.ReadTree(commit, directory)
	if err != nil {
		return fmt.Errorf("reading %s at %s: %w", up.Directory, ref, err)
	}
	up.Ref = ref
	newUpstream := &kptfile.Upstream{Type: kptfile.GitOrigin, Git: &up, UpdateStrategy: kf.Upstream.UpdateStrategy}
	newLock := &kptfile.UpstreamLock{Type: kptfile.GitOrigin, Git: &kptfile.GitLock{Repo: up.Repo, Directory: up.Directory, Ref: ref, Commit: commit}}
	res, err := merge.Update(merge.Input{Origin: origin, Upstream: upstream, Local: local, Strategy: strategy,
		NewUpstream: newUpstream, NewLock: newLock})
	if err != nil && !errors.Is(err, merge.ErrConflicts) {
		return err
	}
	if werr := writeLocalPackage(dir, local, res.Files); werr != nil {
		return werr
	}
	for _, c := range res.Conflicts {
		fmt.Fprintf(streams.ErrOut, "conflict (upstream's value kept): %s\n", c)
	}
	fmt.Fprintf(streams.Out, "Updated %s to %s (%s) with %s\n", dir, ref, shortCommit(commit), strategy)
	return nil
}
