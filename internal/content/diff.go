package content

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pmezard/go-difflib/difflib"
)

// WriteUnifiedDiff writes, file by file in path order, the unified diff (3 lines of context)
// from one package's files to another's.
func WriteUnifiedDiff(w io.Writer, fromName string, from map[string][]byte, toName string, to map[string][]byte) error {
	for _, p := range sortedUnion(from, to) {
		a, inA := from[p]
		b, inB := to[p]
		if inA && inB && bytes.Equal(a, b) {
			continue
		}
		fromFile, toFile := fromName+"/"+p, toName+"/"+p
		if !inA {
			fromFile = "/dev/null"
		}
		if !inB {
			toFile = "/dev/null"
		}
		if !utf8.Valid(a) || !utf8.Valid(b) {
			if _, err := fmt.Fprintf(w, "Binary files %s and %s differ\n", fromFile, toFile); err != nil {
				return err
			}
			continue
		}
		text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: splitLines(string(a)), B: splitLines(string(b)), FromFile: fromFile, ToFile: toFile, Context: 3,
		})
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, text); err != nil {
			return err
		}
	}
	return nil
}

// splitLines splits s into lines that keep their "\n"; a last line without one gets it, with
// a marker like diff's, so the output stays line-oriented.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		return lines[:len(lines)-1]
	}
	lines[len(lines)-1] += "\n\\ No newline at end of file\n"
	return lines
}

// sortedUnion is the keys of a and b, sorted, each once.
func sortedUnion[V any](a, b map[string]V) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return slices.Sorted(maps.Keys(keys))
}
