package sandbox

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
)

func TestStderrRecorder(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		writes               []string
		crashed, outOfMemory bool
		crash, before, whole string
	}{
		{
			name:   "plain output",
			writes: []string{"hello\nwor", "ld\n", "no newline"},
			before: "hello\nworld\nno newline\n", whole: "hello\nworld\nno newline\n",
		},
		{
			name:    "allocation over the limit",
			writes:  []string{"allocating\n", "runtime: out of memory: cannot allocate 801112064-byte block (410648576 in use)\nfatal error: out of memory\n\ngoroutine 1 [running]:\nmain.main()\n"},
			crashed: true, outOfMemory: true, crash: "fatal error: out of memory", before: "allocating\n",
		},
		{
			name:    "heap metadata over the limit",
			writes:  []string{"fatal error: out of memory allocating heap arena metadata\n\nruntime stack:\n"},
			crashed: true, outOfMemory: true, crash: "fatal error: out of memory allocating heap arena metadata",
		},
		{
			name:    "a panic",
			writes:  []string{"panic: runtime error: index out of range [3] with length 1\n\ngoroutine 1 [running]:\n"},
			crashed: true, crash: "panic: runtime error: index out of range [3] with length 1",
		},
		{
			name:    "out of memory further down a stack trace is not the cause",
			writes:  []string{"panic: boom\n\ngoroutine 1 [running]:\nmain.outOfMemory()\n"},
			crashed: true, crash: "panic: boom",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := &stderrRecorder{}
			for _, w := range tc.writes {
				n, err := r.Write([]byte(w))
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(n).To(Equal(len(w)))
			}
			g.Expect(r.crashed()).To(Equal(tc.crashed))
			g.Expect(r.outOfMemory()).To(Equal(tc.outOfMemory))
			g.Expect(r.crash()).To(Equal(tc.crash))
			g.Expect(r.beforeCrash()).To(Equal(tc.before))
			if tc.whole != "" {
				g.Expect(r.String()).To(Equal(tc.whole))
			}
		})
	}
}

func TestStderrRecorder_keepsBoundedTailAndLines(t *testing.T) {
	g := NewWithT(t)
	r := &stderrRecorder{}
	_, _ = r.Write([]byte(strings.Repeat("x", 3*maxLine) + "\n"))
	for range 100 {
		_, _ = r.Write([]byte(strings.Repeat("y", 99) + "\n"))
	}
	_, _ = r.Write([]byte("last\n"))

	g.Expect(len(r.String())).To(BeNumerically("<=", maxStderr+len("…")))
	g.Expect(r.String()).To(HavePrefix("…"))
	g.Expect(r.String()).To(HaveSuffix("y\nlast\n"))
	g.Expect(r.String()).NotTo(ContainSubstring("x"))
}
