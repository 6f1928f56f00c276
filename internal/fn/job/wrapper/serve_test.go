package wrapper

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func post(t *testing.T, h http.Handler, body string) (int, map[string][]byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, RunPath, strings.NewReader(body)))
	out := map[string][]byte{}
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
	}
	return rec.Code, out
}

func TestHandler_runAnswersWhatAJobRunRecords(t *testing.T) {
	g := NewWithT(t)
	h := Handler([]string{"sh", "-c", "cat; echo last words >&2; exit 3"}, Scratch{})
	code, out := post(t, h, "kind: ResourceList\n")
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(string(out[StdoutKey])).To(Equal("kind: ResourceList\n"))
	g.Expect(string(out[StderrKey])).To(Equal("last words\n"))
	g.Expect(string(out[ExitCodeKey])).To(Equal("3"))
	g.Expect(out).NotTo(HaveKey(ErrorKey))

	dir := t.TempDir()
	input := filepath.Join(dir, "input.yaml")
	g.Expect(os.WriteFile(input, []byte("kind: ResourceList\n"), 0o600)).To(Succeed())
	g.Expect(Run(input, dir, []string{"sh", "-c", "cat; echo last words >&2; exit 3"})).To(Succeed())
	for _, key := range []string{StdoutKey, StderrKey, ExitCodeKey} {
		data, err := os.ReadFile(filepath.Join(dir, key))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out[key]).To(Equal(data), key)
	}
}

func TestHandler_emptiesScratchAfterEachRun(t *testing.T) {
	g := NewWithT(t)
	scratch := t.TempDir()
	file := filepath.Join(t.TempDir(), "termination-log")
	g.Expect(os.WriteFile(file, nil, 0o600)).To(Succeed())
	h := Handler([]string{"sh", "-c", "cat >/dev/null; ls " + scratch + "; cat " + file + "; mkdir -p " + scratch +
		"/left/over && echo secret > " + scratch + "/left/over/x && echo secret > " + file},
		Scratch{Dirs: []string{scratch}, Files: []string{file}})
	_, first := post(t, h, "kind: ResourceList\n")
	g.Expect(string(first[StdoutKey])).To(BeEmpty())
	_, second := post(t, h, "kind: ResourceList\n")
	g.Expect(string(second[StdoutKey])).To(BeEmpty(), "the second run sees nothing of the first")
	entries, err := os.ReadDir(scratch)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(entries).To(BeEmpty())
	g.Expect(os.ReadFile(file)).To(BeEmpty())
}

func TestHandler_refusesOtherMethods(t *testing.T) {
	g := NewWithT(t)
	rec := httptest.NewRecorder()
	Handler([]string{"cat"}, Scratch{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, RunPath, nil))
	g.Expect(rec.Code).To(Equal(http.StatusMethodNotAllowed))
	rec = httptest.NewRecorder()
	Handler([]string{"cat"}, Scratch{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HealthPath, nil))
	g.Expect(rec.Code).To(Equal(http.StatusOK))
}

func TestRequireToken_runsOnlyWithTheToken_healthIsOpen(t *testing.T) {
	g := NewWithT(t)
	h := RequireToken("s3cret", Handler([]string{"cat"}, Scratch{}))
	for header, want := range map[string]int{"": http.StatusUnauthorized, "Bearer other": http.StatusUnauthorized,
		"s3cret": http.StatusUnauthorized, "Bearer s3cret": http.StatusOK} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, RunPath, strings.NewReader("kind: ResourceList\n"))
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		h.ServeHTTP(rec, r)
		g.Expect(rec.Code).To(Equal(want), header)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HealthPath, nil))
	g.Expect(rec.Code).To(Equal(http.StatusOK))
}
