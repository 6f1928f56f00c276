package fn

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
)

// applyGitDiff applies a `git diff` (as kpt's test runner records it in diff.patch) to a
// copy of files and returns the result: modified, new, deleted and renamed files.
func applyGitDiff(files map[string][]byte, patch string) (map[string][]byte, error) {
	out := maps.Clone(files)
	lines := strings.SplitAfter(patch, "\n")
	i := 0
	next := func() string { l := lines[i]; i++; return l }
	for i < len(lines) {
		header := next()
		if !strings.HasPrefix(header, "diff --git ") {
			if strings.TrimSpace(header) == "" {
				continue
			}
			return nil, fmt.Errorf("line %d: expected a diff --git header, got %q", i, header)
		}
		fields := strings.Fields(strings.TrimPrefix(header, "diff --git "))
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: cannot parse %q", i, header)
		}
		oldPath, newPath := strings.TrimPrefix(fields[0], "a/"), strings.TrimPrefix(fields[1], "b/")
		var isNew, isDeleted bool
		// extended header lines
		for i < len(lines) && !strings.HasPrefix(lines[i], "@@") && !strings.HasPrefix(lines[i], "diff --git ") {
			l := strings.TrimRight(next(), "\n")
			switch {
			case strings.HasPrefix(l, "new file mode"):
				isNew = true
			case strings.HasPrefix(l, "deleted file mode"):
				isDeleted = true
			case strings.HasPrefix(l, "rename from "):
				oldPath = strings.TrimPrefix(l, "rename from ")
			case strings.HasPrefix(l, "rename to "):
				newPath = strings.TrimPrefix(l, "rename to ")
			}
		}
		var old []string
		if !isNew {
			data, ok := out[oldPath]
			if !ok {
				return nil, fmt.Errorf("patch modifies %s, which does not exist", oldPath)
			}
			old = splitLines(string(data))
		}
		var result []string
		pos := 0 // index into old of the next line not yet copied
		for i < len(lines) && strings.HasPrefix(lines[i], "@@") {
			h := next()
			oldStart, err := hunkOldStart(h)
			if err != nil {
				return nil, err
			}
			if oldStart > 0 {
				oldStart-- // to 0-based; a 0 start means "before the first line"
			}
			result = append(result, old[pos:oldStart]...)
			pos = oldStart
			for i < len(lines) && lines[i] != "" && strings.ContainsAny(lines[i][:1], " +-\\") {
				l := next()
				switch l[0] {
				case ' ':
					result = append(result, old[pos])
					pos++
				case '-':
					pos++
				case '+':
					result = append(result, l[1:])
				case '\\': // "\ No newline at end of file" applies to the previous line
					prev := lines[i-2]
					switch prev[0] {
					case ' ':
						result[len(result)-1] = strings.TrimSuffix(result[len(result)-1], "\n")
					case '+':
						result[len(result)-1] = strings.TrimSuffix(result[len(result)-1], "\n")
					}
				}
			}
		}
		result = append(result, old[pos:]...)
		if oldPath != newPath || isDeleted {
			delete(out, oldPath)
		}
		if !isDeleted {
			out[newPath] = []byte(strings.Join(result, ""))
		}
	}
	return out, nil
}

func splitLines(s string) []string {
	parts := strings.SplitAfter(s, "\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// hunkOldStart parses the old start line of "@@ -a,b +c,d @@ ...".
func hunkOldStart(h string) (int, error) {
	f := strings.Fields(h)
	if len(f) < 3 || !strings.HasPrefix(f[1], "-") {
		return 0, fmt.Errorf("cannot parse hunk header %q", h)
	}
	start, _, _ := strings.Cut(strings.TrimPrefix(f[1], "-"), ",")
	return strconv.Atoi(start)
}
