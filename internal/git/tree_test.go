package git

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

// treeEntry is one entry of a commit made by commitEntries: a blob with a file mode, or
// (mode 160000) a submodule commit.
type treeEntry struct {
	mode, path, content string
}

// commitEntries commits entries on top of branch in the remote with the git CLI, which,
// unlike gitserver.Change, can write symlinks and submodules. It returns the commit hash.
func commitEntries(t *testing.T, f *fixture, branch string, entries ...treeEntry) string {
	t.Helper()
	index := filepath.Join(t.TempDir(), "index")
	git := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_DIR="+f.remote.Dir, "GIT_INDEX_FILE="+index,
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=true",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	parent := git("", "rev-parse", "--verify", "refs/heads/"+branch)
	git("", "read-tree", parent)
	var info strings.Builder
	for _, e := range entries {
		hash := e.content
		if e.mode != "160000" {
			hash = git(e.content, "hash-object", "-w", "--stdin")
		}
		fmt.Fprintf(&info, "%s %s\t%s\n", e.mode, hash, e.path)
	}
	git(info.String(), "update-index", "--add", "--index-info")
	tree := git("", "write-tree")
	commit := git("links", "commit-tree", tree, "-p", parent)
	git("", "update-ref", "refs/heads/"+branch, commit, parent)
	return commit
}

func TestRepo_readTree_refusesSymlinksAndSubmodulesNamingThem(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	seedPackages(t, f)
	submodule := strings.Repeat("5", 40)
	head := commitEntries(t, f, "main",
		treeEntry{"120000", "basens/cfg/link.yaml", "../ns.yaml"},
		treeEntry{"120000", "linked/Kptfile", "../basens/Kptfile"},
		treeEntry{"100644", "vendored/Kptfile", "kind: Kptfile\n"},
		treeEntry{"160000", "vendored/lib", submodule},
		treeEntry{"100755", "tools/Kptfile", "kind: Kptfile\n"},
		treeEntry{"100755", "tools/run.sh", "#!/bin/sh\n"},
	)
	g.Expect(f.repo.Fetch(context.Background())).To(Succeed())

	_, err := f.repo.ReadTree(head, "basens")
	g.Expect(err).To(MatchError(ErrSymlink))
	g.Expect(err).To(MatchError(`package file "cfg/link.yaml" is a symlink to "../ns.yaml": kpo does not store or follow symlinks; replace it with a copy of the file`))

	_, err = f.repo.ReadTree(head, "vendored")
	g.Expect(err).To(MatchError(ErrSubmodule))
	g.Expect(err.Error()).To(ContainSubstring(`package file "lib" is a Git submodule (commit ` + submodule + `)`))

	// Every problem is named at once, so one round of fixes is enough.
	_, err = f.repo.ReadTree(head, "")
	g.Expect(err).To(MatchError(ErrSymlink))
	g.Expect(err).To(MatchError(ErrSubmodule))
	for _, p := range []string{`"basens/cfg/link.yaml"`, `"linked/Kptfile"`, `"vendored/lib"`} {
		g.Expect(err.Error()).To(ContainSubstring(p))
	}

	// Executable files are files.
	g.Expect(f.repo.ReadTree(head, "tools")).To(HaveKeyWithValue("run.sh", []byte("#!/bin/sh\n")))

	// Discovery still sees the packages (so the refusal reaches the user), and the tree
	// hash still works.
	g.Expect(f.repo.ListPackages(head, "")).To(ContainElements("basens", "linked", "vendored", "tools"))
	g.Expect(f.repo.TreeHash(head, "basens")).To(HaveLen(40))
}

func TestUnstorableError_longTargetIsShortened(t *testing.T) {
	g := NewWithT(t)
	long := strings.Repeat("a/", 300)
	g.Expect(shorten(long)).To(HaveLen(maxTargetInError + len("…")))
	g.Expect(shorten("x")).To(Equal("x"))
}
