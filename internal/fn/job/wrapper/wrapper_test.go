package wrapper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func runIn(t *testing.T, command ...string) map[string]string {
	t.Helper()
	g := NewWithT(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "input.yaml")
	g.Expect(os.WriteFile(input, []byte("kind: ResourceList\n"), 0o644)).To(Succeed())
	out := filepath.Join(dir, "out")
	g.Expect(os.Mkdir(out, 0o755)).To(Succeed())
	g.Expect(Run(input, out, command)).To(Succeed())
	files := map[string]string{}
	entries, err := os.ReadDir(out)
	g.Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(out, e.Name()))
		g.Expect(err).NotTo(HaveOccurred())
		files[e.Name()] = string(data)
	}
	return files
}

func TestRun_recordsStdoutStderrTailAndExitCode(t *testing.T) {
	g := NewWithT(t)
	files := runIn(t, "sh", "-c", "cat; echo "+strings.Repeat("x", StderrTail)+" >&2; echo last words >&2; exit 3")
	g.Expect(files).To(HaveKeyWithValue(StdoutKey, "kind: ResourceList\n"))
	g.Expect(files).To(HaveKeyWithValue(ExitCodeKey, "3"))
	g.Expect(files[StderrKey]).To(HaveLen(StderrTail))
	g.Expect(files[StderrKey]).To(HaveSuffix("last words\n"), "the tail of stderr is kept")
	g.Expect(files).To(HaveKey(doneFile))
	g.Expect(files).NotTo(HaveKey(ErrorKey))
}

func TestRun_missingEntrypoint_isRecordedAsAnError(t *testing.T) {
	g := NewWithT(t)
	files := runIn(t, "/no/such/function")
	g.Expect(files[ErrorKey]).To(ContainSubstring("/no/such/function"))
	g.Expect(files).To(HaveKey(doneFile), "the uploader still learns the outcome")
}
