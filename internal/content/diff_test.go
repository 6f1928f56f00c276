package content

import (
	"bytes"
	"testing"

	. "github.com/onsi/gomega"
)

func TestUnifiedDiff(t *testing.T) {
	g := NewWithT(t)
	var out bytes.Buffer
	err := WriteUnifiedDiff(&out,
		"a", map[string][]byte{"same": []byte("x\n"), "gone": []byte("bye\n"), "f.yaml": []byte("a: 1\nb: 2\n"), "bin": {0xff}},
		"b", map[string][]byte{"same": []byte("x\n"), "new": []byte("hi"), "f.yaml": []byte("a: 1\nb: 3\n"), "bin": {0xfe}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.String()).To(Equal(`Binary files a/bin and b/bin differ
--- a/f.yaml
+++ b/f.yaml
@@ -1,2 +1,2 @@
 a: 1
-b: 2
+b: 3
--- a/gone
+++ /dev/null
@@ -1 +0,0 @@
-bye
--- /dev/null
+++ b/new
@@ -0,0 +1 @@
+hi
\ No newline at end of file
`))
}
