package merge

import (
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/kptfile"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*/expected and conflicts.txt from the current results")

// goldenConfig is testdata/<case>/config.yaml: the strategy, and the error the update must
// return (a substring), if any.
type goldenConfig struct {
	Strategy Strategy `yaml:"strategy"`
	Error    string   `yaml:"error"`
}

// Golden cases: testdata/<case>/{origin,upstream,local,expected}/ hold package trees; the
// update of local from origin to upstream must give expected byte for byte, and conflicts.txt
// (absent when none) lists the conflicts, one Conflict.String() per line. Every case moves the
// root Kptfile to upstream ref v2 at commit "v2-commit".
func TestUpdate_golden(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			g := NewWithT(t)
			dir := filepath.Join("testdata", c.Name())
			var cfg goldenConfig
			if b, err := os.ReadFile(filepath.Join(dir, "config.yaml")); err == nil {
				g.Expect(yaml.Unmarshal(b, &cfg)).To(Succeed())
			}
			in := Input{
				Origin:   readTreeIfExists(t, filepath.Join(dir, "origin")),
				Upstream: readTreeIfExists(t, filepath.Join(dir, "upstream")),
				Local:    readTreeIfExists(t, filepath.Join(dir, "local")),
				Strategy: cfg.Strategy,
				NewUpstream: &kptfile.Upstream{Type: kptfile.GitOrigin, UpdateStrategy: cfg.Strategy,
					Git: &kptfile.Git{Repo: "https://example.com/blueprints.git", Directory: "/app", Ref: "v2"}},
				NewLock: &kptfile.UpstreamLock{Type: kptfile.GitOrigin,
					Git: &kptfile.GitLock{Repo: "https://example.com/blueprints.git", Directory: "/app", Ref: "v2", Commit: "v2-commit"}},
			}
			res, err := Update(in)
			switch {
			case cfg.Error != "":
				g.Expect(err).To(HaveOccurred())
				g.Expect(err.Error()).To(ContainSubstring(cfg.Error))
			case len(res.Conflicts) > 0:
				g.Expect(err).To(MatchError(ErrConflicts))
			default:
				g.Expect(err).NotTo(HaveOccurred())
			}
			if cfg.Error == "" {
				// the result already carries every merge comment: kpt's final pass is a no-op
				again, err := addMergeComments(res.Files)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(again).To(Equal(res.Files))
			}
			var lines []string
			for _, c := range res.Conflicts {
				lines = append(lines, c.String())
			}
			conflicts := strings.Join(lines, "\n")
			if conflicts != "" {
				conflicts += "\n"
			}

			if *updateGolden {
				g.Expect(os.RemoveAll(filepath.Join(dir, "expected"))).To(Succeed())
				for p, b := range res.Files {
					target := filepath.Join(dir, "expected", filepath.FromSlash(p))
					g.Expect(os.MkdirAll(filepath.Dir(target), 0o755)).To(Succeed())
					g.Expect(os.WriteFile(target, b, 0o644)).To(Succeed())
				}
				_ = os.Remove(filepath.Join(dir, "conflicts.txt"))
				if conflicts != "" {
					g.Expect(os.WriteFile(filepath.Join(dir, "conflicts.txt"), []byte(conflicts), 0o644)).To(Succeed())
				}
				return
			}

			want := readTreeIfExists(t, filepath.Join(dir, "expected"))
			g.Expect(sortedKeys(res.Files)).To(Equal(sortedKeys(want)), "file set")
			for p, b := range want {
				g.Expect(string(res.Files[p])).To(Equal(string(b)), "file %s", p)
			}
			wantConflicts, _ := os.ReadFile(filepath.Join(dir, "conflicts.txt"))
			g.Expect(conflicts).To(Equal(string(wantConflicts)))
		})
	}
}

func readTreeIfExists(t *testing.T, dir string) map[string][]byte {
	if _, err := os.Stat(dir); err != nil {
		return map[string][]byte{}
	}
	return readTree(t, dir)
}

func sortedKeys(m map[string][]byte) []string {
	return slices.Sorted(maps.Keys(m))
}
