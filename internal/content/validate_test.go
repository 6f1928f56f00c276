package content

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/kptfile"
)

const validKptfile = "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n"

func TestValidate_validPackage_passes(t *testing.T) {
	g := NewWithT(t)
	files, err := kptfile.InitFiles("app", "", nil, "")
	g.Expect(err).NotTo(HaveOccurred())
	files["deploy.yaml"] = []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n")
	files["empty.yaml"] = nil
	files["only-comments.yml"] = []byte("# nothing here\n")
	files["sub/Kptfile"] = []byte(strings.Replace(validKptfile, "app", "sub", 1))
	files["scripts/broken.sh"] = []byte("this: is: not: yaml: but: not: .yaml either")
	files["logo.png"] = []byte{0x89, 'P', 'N', 'G', 0xff}
	files["merge.yaml"] = []byte("base: &b {a: 1}\nderived:\n  <<: *b\n  <<: *b\n  c: 2\n")

	g.Expect(Validate(files)).To(Succeed())
}

func TestValidate_reportsEveryProblemNamingItsFile(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		want  []string
	}{
		{
			name:  "YAML syntax error",
			files: map[string][]byte{"app/deploy.yaml": []byte("a: b\nc: [d\n")},
			want:  []string{"app/deploy.yaml: invalid YAML: line "},
		},
		{
			name:  "syntax error in a later document",
			files: map[string][]byte{"all.yml": []byte("a: b\n---\nc: d\n---\n  e: f\n g: h\n")},
			want:  []string{"all.yml: invalid YAML: line 5"},
		},
		{
			name:  "duplicate key",
			files: map[string][]byte{"cm.yaml": []byte("data:\n  a: 1\n  b: 2\n  a: 3\n")},
			want:  []string{`cm.yaml: invalid YAML: line 4: key "a" is defined again (first at line 2)`},
		},
		{
			name:  "invalid root Kptfile",
			files: map[string][]byte{"Kptfile": []byte("apiVersion: kpt.dev/v1alpha2\nkind: Kptfile\nmetadata:\n  name: app\n")},
			want:  []string{`Kptfile: invalid Kptfile: apiVersion "kpt.dev/v1alpha2" is an old Kptfile version`},
		},
		{
			name:  "invalid nested Kptfile",
			files: map[string][]byte{"Kptfile": []byte(validKptfile), "db/Kptfile": []byte(validKptfile + "pipelines: {}\n")},
			want:  []string{`db/Kptfile: invalid Kptfile: line 5: unknown field "pipelines"`},
		},
		{
			name:  "invalid path",
			files: map[string][]byte{"../x.yaml": []byte("a: b\n")},
			want:  []string{`path "../x.yaml" escapes the package`},
		},
		{
			name:  "path with a .git element",
			files: map[string][]byte{"Kptfile": []byte(validKptfile), "sub/.git/config": []byte("[core]\n")},
			want:  []string{`invalid package file path: path "sub/.git/config" contains ".git", a name Git reserves for its own data`},
		},
		{
			name: "several problems",
			files: map[string][]byte{
				"Kptfile": []byte("kind: Kptfile\n"),
				"a.yaml":  []byte("a: [\n"),
				"b.yaml":  []byte("ok: true\n"),
				"c.yml":   []byte("x: 1\nx: 2\n"),
			},
			want: []string{"Kptfile: invalid Kptfile: apiVersion is missing", "metadata.name is missing", "a.yaml: invalid YAML", `c.yml: invalid YAML: line 2: key "x"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := Validate(tt.files)
			g.Expect(err).To(HaveOccurred())
			for _, w := range tt.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}
}
