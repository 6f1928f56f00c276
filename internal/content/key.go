// Package content converts the files of a kpt package to and from the data of the
// ConfigMap that exposes a package revision's content, and checks that content. It is pure:
// no Kubernetes client, no file system.
//
// # Key encoding
//
// A ConfigMap key may only contain [-._a-zA-Z0-9], is at most 253 characters long, and may
// not be "." or "..", nor start with "..". A package file path is a slash-separated path
// relative to the package root. EncodeKey maps a path to a key, byte by byte:
//
//   - '-', '.', 'a'-'z', 'A'-'Z' and '0'-'9' stay as they are;
//   - '/' becomes "__";
//   - every other byte, '_' included, becomes '_' followed by two upper-case hex digits:
//     '_' is "_5F", ' ' is "_20", and each byte of a multi-byte UTF-8 character is escaped
//     on its own ("é" is "_C3_A9");
//   - a leading '.' of a path that starts with ".." is escaped as "_2E", because the API
//     server refuses keys starting with ".." (only names like "..data" or "...", which are
//     valid file names, are affected).
//
// Examples:
//
//	Kptfile               Kptfile
//	app/deploy.yaml       app__deploy.yaml
//	my_file.yaml          my_5Ffile.yaml
//	.krmignore            .krmignore
//	docs/read me.md       docs__read_20me.md
//	..data/x              _2E.data__x
//
// Since '_' always starts an escape, and the character after it tells the two escapes
// apart ('_' for "__", a hex digit for "_XX"), decoding is unambiguous. Decoding is also
// strict: DecodeKey accepts only the canonical encoding of a valid path (for instance it
// refuses "_41" for "A", "_2F" for "/", or lower-case hex), so two different keys can never
// stand for the same file.
package content

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeyLength is the longest ConfigMap key the API server accepts
// (k8s.io/apimachinery/pkg/util/validation.IsConfigMapKey: a DNS-1123 subdomain's length).
const MaxKeyLength = 253

// ErrInvalidPath is wrapped by every error about a package file path that cannot be stored
// in a ConfigMap or that leaves the package.
var ErrInvalidPath = errors.New("invalid package file path")

// ErrInvalidKey is wrapped by every error about a ConfigMap key that is not the encoding of
// a valid package file path.
var ErrInvalidKey = errors.New("invalid content key")

const upperHex = "0123456789ABCDEF"

// ValidatePath checks that path names a file inside a package and fits in a ConfigMap key:
// it is not empty, relative, valid UTF-8, without NUL bytes or backslashes, without empty,
// "." or ".." segments, without a ".git" segment (which Git refuses), and its encoded key
// is at most MaxKeyLength characters. The error says what is wrong and how to fix it, and
// wraps ErrInvalidPath.
func ValidatePath(path string) error {
	if err := validatePathSyntax(path); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPath, err)
	}
	if n := encodedLength(path); n > MaxKeyLength {
		return fmt.Errorf("%w: path %q encodes to a ConfigMap key of %d characters, over the limit of %d: shorten the file or directory names (each character outside [-.a-zA-Z0-9] takes 3)",
			ErrInvalidPath, path, n, MaxKeyLength)
	}
	return nil
}

func validatePathSyntax(path string) error {
	switch {
	case path == "":
		return errors.New(`path is empty: name the file relative to the package root, e.g. "app/deploy.yaml"`)
	case !utf8.ValidString(path):
		return fmt.Errorf("path %q is not valid UTF-8: rename the file using UTF-8 characters", path)
	case strings.ContainsRune(path, 0):
		return fmt.Errorf("path %q contains a NUL byte: rename the file", path)
	case strings.ContainsRune(path, '\\'):
		return fmt.Errorf(`path %q contains a backslash: separate directories with "/" and rename files whose names contain "\"`, path)
	case strings.HasPrefix(path, "/"):
		return fmt.Errorf("path %q is absolute: use a path relative to the package root, e.g. %q", path, strings.TrimLeft(path, "/"))
	}
	for segment := range strings.SplitSeq(path, "/") {
		switch segment {
		case "..":
			return fmt.Errorf("path %q escapes the package: use a path inside the package directory", path)
		case ".":
			return fmt.Errorf(`path %q contains a "." segment: remove the "./"`, path)
		case "":
			return fmt.Errorf(`path %q contains an empty segment: remove the doubled or trailing "/"`, path)
		}
		if isDotGit(segment) {
			return fmt.Errorf(`path %q contains %q, a name Git reserves for its own data (Git refuses ".git" in any letter case, and names Windows or macOS would read as ".git"): rename that file or directory`, path, segment)
		}
	}
	return nil
}

// isDotGit tells whether Git refuses segment as a path element because it is, or a
// Windows or macOS file system would treat it as, ".git" (Git's verify_path and fsck:
// is_ntfs_dotgit and is_hfs_dotgit). Such a file would pass here and only fail when the
// commit is written or pushed, far from the ConfigMap the user edited, so it is refused
// up front.
func isDotGit(segment string) bool {
	// macOS (HFS+) ignores some zero-width code points when comparing names.
	if strings.ContainsFunc(segment, isHFSIgnorable) {
		segment = strings.Map(func(r rune) rune {
			if isHFSIgnorable(r) {
				return -1
			}
			return r
		}, segment)
	}
	lower := strings.ToLower(segment)
	if lower == ".git" {
		return true
	}
	// NTFS drops trailing dots and spaces, reads "name:stream" as name, and has the 8.3
	// short name "git~1" for ".git".
	for _, name := range []string{".git", "git~1"} {
		if rest, ok := strings.CutPrefix(lower, name); ok {
			rest, _, _ = strings.Cut(rest, ":")
			if strings.Trim(rest, " .") == "" {
				return true
			}
		}
	}
	return false
}

// isHFSIgnorable reports the code points HFS+ ignores in file names (Git's
// next_hfs_char).
func isHFSIgnorable(r rune) bool {
	switch {
	case r >= 0x200C && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x206A && r <= 0x206F, r == 0xFEFF:
		return true
	}
	return false
}

// EncodeKey returns the ConfigMap key of a package file path (see the package
// documentation), or an error wrapping ErrInvalidPath when ValidatePath refuses the path.
func EncodeKey(path string) (string, error) {
	if err := ValidatePath(path); err != nil {
		return "", err
	}
	return encode(path), nil
}

// DecodeKey returns the package file path a ConfigMap key stands for. It refuses, with an
// error naming the key and wrapping ErrInvalidKey, a key that is not a valid ConfigMap key,
// has a malformed escape, is not the canonical encoding of its path, or decodes to a path
// ValidatePath refuses.
func DecodeKey(key string) (string, error) {
	path, err := decode(key)
	if err != nil {
		return "", fmt.Errorf("%w: key %q %w", ErrInvalidKey, key, err)
	}
	if err := validatePathSyntax(path); err != nil {
		return "", fmt.Errorf("%w: key %q: %w", ErrInvalidKey, key, err)
	}
	if canonical := encode(path); canonical != key {
		return "", fmt.Errorf("%w: key %q is not in canonical form: write it as %q", ErrInvalidKey, key, canonical)
	}
	if len(key) > MaxKeyLength {
		return "", fmt.Errorf("%w: key %q is %d characters long, over the limit of %d: shorten the file or directory names",
			ErrInvalidKey, key, len(key), MaxKeyLength)
	}
	return path, nil
}

func isPlain(c byte) bool {
	return c == '-' || c == '.' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func encode(path string) string {
	var b strings.Builder
	b.Grow(encodedLength(path))
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '/':
			b.WriteString("__")
		case isPlain(c) && (i > 0 || !strings.HasPrefix(path, "..")):
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0x0F])
		}
	}
	return b.String()
}

func encodedLength(path string) int {
	n := 0
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '/':
			n += 2
		case isPlain(c) && (i > 0 || !strings.HasPrefix(path, "..")):
			n++
		default:
			n += 3
		}
	}
	return n
}

// decode undoes encode without checking canonical form. Its errors complete the sentence
// `key "…" `.
func decode(key string) (string, error) {
	if key == "" {
		return "", errors.New(`is empty: a key names a package file, e.g. "app__deploy.yaml" for app/deploy.yaml`)
	}
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case isPlain(c):
			b.WriteByte(c)
		case c != '_':
			r, _ := utf8.DecodeRuneInString(key[i:])
			return "", fmt.Errorf("contains %q, which a ConfigMap key cannot hold: only [-._a-zA-Z0-9] are allowed; write \"/\" as \"__\" and every other byte as \"_\" plus two upper-case hex digits", r)
		case i+1 < len(key) && key[i+1] == '_':
			b.WriteByte('/')
			i++
		case i+2 < len(key) && hexValue(key[i+1]) >= 0 && hexValue(key[i+2]) >= 0:
			b.WriteByte(byte(hexValue(key[i+1])<<4 | hexValue(key[i+2])))
			i += 2
		default:
			return "", fmt.Errorf(`has a malformed escape at offset %d: "_" starts an escape, either "__" for "/" or "_" plus two upper-case hex digits for one byte (write "_" itself as "_5F")`, i)
		}
	}
	return b.String(), nil
}

// hexValue returns the value of an upper-case hex digit, or -1.
func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
