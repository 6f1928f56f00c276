package content

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestDigest_dependsOnlyOnPathsAndContents(t *testing.T) {
	base := map[string][]byte{"Kptfile": []byte("k"), "a/b.yaml": []byte("x: 1\n")}
	tests := []struct {
		name  string
		files map[string][]byte
		same  bool
	}{
		{"same files", map[string][]byte{"a/b.yaml": []byte("x: 1\n"), "Kptfile": []byte("k")}, true},
		{"content changed", map[string][]byte{"Kptfile": []byte("k"), "a/b.yaml": []byte("x: 2\n")}, false},
		{"file renamed", map[string][]byte{"Kptfile": []byte("k"), "a/c.yaml": []byte("x: 1\n")}, false},
		{"file added", map[string][]byte{"Kptfile": []byte("k"), "a/b.yaml": []byte("x: 1\n"), "c": nil}, false},
		{"file removed", map[string][]byte{"Kptfile": []byte("k")}, false},
		{"bytes moved between path and content", map[string][]byte{"Kptfilek": nil, "a/b.yaml": []byte("x: 1\n")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			if tt.same {
				g.Expect(Digest(tt.files)).To(Equal(Digest(base)))
			} else {
				g.Expect(Digest(tt.files)).NotTo(Equal(Digest(base)))
			}
		})
	}
}

func TestDigest_isStable(t *testing.T) {
	g := NewWithT(t)
	// Pinned: a change of format would make every stored digest look changed.
	g.Expect(Digest(nil)).To(Equal("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
	// sha256 of be64(7) "Kptfile" be64(1) "k" be64(8) "a/b.yaml" be64(5) "x: 1\n".
	g.Expect(Digest(map[string][]byte{"a/b.yaml": []byte("x: 1\n"), "Kptfile": []byte("k")})).
		To(Equal("sha256:18089ea95145f90b8e5dd5bb435e29b6023a05e1e2b5b928ea80c5615cb7d92f"))
	g.Expect(Digest(map[string][]byte{"a": nil})).To(Equal(Digest(map[string][]byte{"a": {}})))
}
