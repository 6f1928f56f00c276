package gitserver

import (
	"fmt"
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

// GenerateCatalog creates repository name holding c with git fast-import (Import).
func (s *Server) GenerateCatalog(name string, c Catalog) (*Repo, error) {
	files := c.Files
	if files == nil {
		files = defaultCatalogFiles
	}
	return s.Import(name, AuthorName, AuthorEmail, func(f *FastImport) error {
		var head int
		for t := 1; t <= c.Tags; t++ {
			for p := range c.Packages {
				pkg := CatalogPackage(p)
				msg := fmt.Sprintf("Approve %s v%d\n\nApproved-by: %s\nkpt:{\"package\":%q,\"workspaceName\":\"v%d\",\"revision\":\"%d\",\"task\":{\"type\":\"approve\"}}\n",
					pkg, t, AuthorEmail, pkg, t, t)
				head = f.Commit("refs/heads/main", "", msg, pkg, files(pkg, t))
				f.Tag(fmt.Sprintf("%s/v%d", pkg, t), head)
			}
		}
		for d := range min(c.Drafts, c.Packages) {
			pkg := CatalogPackage(d)
			msg := fmt.Sprintf("Edit %s\n\nkpt:{\"package\":%q,\"workspaceName\":%q,\"revision\":\"0\",\"task\":{\"type\":\"edit\"}}\n", pkg, pkg, DraftWorkspace)
			f.Commit(fmt.Sprintf("refs/heads/drafts/%s/%s", pkg, DraftWorkspace), fmt.Sprintf(":%d", head), msg, pkg, files(pkg, c.Tags+1))
		}
		return nil
	})
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
