package sandbox

import (
	"bytes"
	"strings"
)

// Bounds of what is kept of a child's stderr.
const (
	maxStderr     = 4 << 10 // the tail of the function's own output, where its error usually is
	maxCrashLines = 8       // the head of a Go crash report, which names the cause
	maxLine       = 1 << 10 // longer lines are cut
)

// stderrRecorder keeps the tail of what a function wrote to stderr, and apart from it the
// tail up to a Go crash report (from a line "fatal error: …", "panic: …" or "runtime: out of
// memory…") and the first lines of that report, so that a crash is told by its cause and not
// buried in its stack trace.
type stderrRecorder struct {
	all, pre tailBuffer // everything; what came before a crash report
	partial  []byte     // the current line, at most maxLine
	report   []string   // the first lines of a crash report; nil when there is none
}

func (r *stderrRecorder) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i+1]
		}
		if room := maxLine - len(r.partial); room > 0 {
			r.partial = append(r.partial, chunk[:min(room, len(chunk))]...)
		}
		p = p[len(chunk):]
		if i >= 0 {
			r.line(r.partial)
			r.partial = r.partial[:0]
		}
	}
	return n, nil
}

// line takes one complete line (with its newline, unless it was cut).
func (r *stderrRecorder) line(l []byte) {
	text := strings.TrimRight(string(l), "\n")
	if r.report == nil && isCrashStart(text) {
		r.report = []string{}
	}
	if l[len(l)-1] != '\n' {
		l = append(l, '\n')
	}
	r.all.write(l)
	if r.report == nil {
		r.pre.write(l)
	} else if len(r.report) < maxCrashLines {
		r.report = append(r.report, text)
	}
}

func isCrashStart(line string) bool {
	return strings.HasPrefix(line, "fatal error: ") || strings.HasPrefix(line, "panic: ") ||
		strings.HasPrefix(line, "runtime: out of memory")
}

// flush takes a last line without a newline.
func (r *stderrRecorder) flush() {
	if len(r.partial) > 0 {
		r.line(r.partial)
		r.partial = r.partial[:0]
	}
}

// String returns the tail of the stderr.
func (r *stderrRecorder) String() string {
	r.flush()
	return r.all.String()
}

// beforeCrash returns the tail of the stderr before its crash report: the function's own.
func (r *stderrRecorder) beforeCrash() string {
	r.flush()
	return r.pre.String()
}

// crashed reports whether the output holds a Go crash report.
func (r *stderrRecorder) crashed() bool {
	r.flush()
	return r.report != nil
}

// crash returns the line of the crash report that names its cause.
func (r *stderrRecorder) crash() string {
	for _, l := range r.report {
		if strings.HasPrefix(l, "fatal error: ") || strings.HasPrefix(l, "panic: ") {
			return l
		}
	}
	if len(r.report) > 0 {
		return r.report[0]
	}
	return ""
}

// outOfMemory reports whether the crash report says the process ran out of memory, as the Go
// runtime does when an allocation fails under LimitMemory's limit.
func (r *stderrRecorder) outOfMemory() bool {
	if !r.crashed() {
		return false
	}
	for _, l := range r.report {
		if l == "" {
			break
		}
		if strings.Contains(l, "out of memory") || strings.Contains(l, "cannot allocate memory") {
			return true
		}
	}
	return false
}

// tailBuffer keeps the last maxStderr bytes written to it.
type tailBuffer struct {
	buf []byte
	cut bool
}

func (t *tailBuffer) write(p []byte) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - maxStderr; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
}

func (t *tailBuffer) String() string {
	if t.cut {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}
