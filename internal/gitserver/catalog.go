package gitserver

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
)

// Catalog describes a generated repository of published packages in Porch's layout, for
// benchmarks: Packages packages with Tags published revisions each and Drafts draft branches.
type Catalog struct {
	// Packages is the number of packages, pkg-0000, pkg-0001, ….
	Packages int
	// Tags is the number of published revisions per package: for each revision t, one commit
	// on main per package, with Porch's kpt: line, tagged <package>/v<t>.
	Tags int
	// Drafts is the number of draft branches drafts/<package>/<DraftWorkspace>, of the first
	// Drafts packages, each one commit on top of main.
	Drafts int
	// Files returns the files of revision rev of package pkg (paths relative to the package);
	// revision Tags+1 is the draft's. Nil gives a Kptfile and a ConfigMap.
	Files func(pkg string, rev int) map[string]string
}

// CatalogPackage is the name (and path) of the i-th package of a generated catalog.
func CatalogPackage(i int) string { return fmt.Sprintf("pkg-%04d", i) }

// DraftWorkspace is the workspace of a generated catalog's draft branches.
const DraftWorkspace = "draft"

// GenerateCatalog creates repository name holding c with git fast-import, and packs its refs
// as a Git host keeps them (git gc does the same): git http-backend reads every loose ref
// file for each request, which would make the test server slower than a real one.
func (s *Server) GenerateCatalog(name string, c Catalog) (*Repo, error) {
	r, err := s.CreateRepo(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("git", "fast-import", "--quiet", "--done")
	cmd.Dir = r.Dir
	cmd.Env = append(gitEnv(), "GIT_DIR="+r.Dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting git fast-import: %w", err)
	}
	werr := writeCatalog(stdin, c)
	cerr := stdin.Close()
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git fast-import: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if werr != nil {
		return nil, werr
	}
	if cerr != nil {
		return nil, cerr
	}
	if _, err := runGit(r.Dir, nil, nil, "pack-refs", "--all"); err != nil {
		return nil, err
	}
	return r, nil
}

func writeCatalog(out io.Writer, c Catalog) error {
	files := c.Files
	if files == nil {
		files = defaultCatalogFiles
	}
	w := bufio.NewWriterSize(out, 1<<20)
	mark, when := 0, int64(1704067200) // 2024-01-01, one second per commit
	data := func(s string) { fmt.Fprintf(w, "data %d\n%s\n", len(s), s) }
	commit := func(ref, msg, from, pkg string, rev int) int {
		mark++
		when++
		fmt.Fprintf(w, "commit %s\nmark :%d\ncommitter %s <%s> %d +0000\n", ref, mark, AuthorName, AuthorEmail, when)
		data(msg)
		if from != "" {
			fmt.Fprintf(w, "from %s\n", from)
		}
		fs := files(pkg, rev)
		paths := make([]string, 0, len(fs))
		for p := range fs {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(w, "M 100644 inline %s/%s\n", pkg, p)
			data(fs[p])
		}
		fmt.Fprint(w, "\n")
		return mark
	}
	var head int
	for t := 1; t <= c.Tags; t++ {
		for p := range c.Packages {
			pkg := CatalogPackage(p)
			msg := fmt.Sprintf("Approve %s v%d\n\nApproved-by: %s\nkpt:{\"package\":%q,\"workspaceName\":\"v%d\",\"revision\":\"%d\",\"task\":{\"type\":\"approve\"}}\n",
				pkg, t, AuthorEmail, pkg, t, t)
			head = commit("refs/heads/main", msg, "", pkg, t)
			fmt.Fprintf(w, "reset refs/tags/%s/v%d\nfrom :%d\n\n", pkg, t, head)
		}
	}
	for d := range min(c.Drafts, c.Packages) {
		pkg := CatalogPackage(d)
		msg := fmt.Sprintf("Edit %s\n\nkpt:{\"package\":%q,\"workspaceName\":%q,\"revision\":\"0\",\"task\":{\"type\":\"edit\"}}\n", pkg, pkg, DraftWorkspace)
		commit(fmt.Sprintf("refs/heads/drafts/%s/%s", pkg, DraftWorkspace), msg, fmt.Sprintf(":%d", head), pkg, c.Tags+1)
	}
	fmt.Fprint(w, "done\n")
	return w.Flush()
}

// defaultCatalogFiles is a Kptfile and a ConfigMap of about 1 KB naming the revision.
func defaultCatalogFiles(pkg string, rev int) map[string]string {
	var data strings.Builder
	for k := range 16 {
		fmt.Fprintf(&data, "  key-%02d: %s-%s\n", k, pkg, strings.Repeat("x", 40))
	}
	return map[string]string{
		"Kptfile": fmt.Sprintf("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: %s\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\ninfo:\n  description: generated package %s\n", pkg, pkg),
		"cm.yaml": fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  revision: \"%d\"\n%s", pkg, rev, data.String()),
	}
}
