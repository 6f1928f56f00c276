package content

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/validation"
)

// roundTripPaths are package file paths, each with its expected ConfigMap key.
var roundTripPaths = []struct{ path, key string }{
	{"Kptfile", "Kptfile"},
	{"app/deploy.yaml", "app__deploy.yaml"},
	{"my_file.yaml", "my_5Ffile.yaml"},
	{"README.md", "README.md"},
	{".krmignore", ".krmignore"},
	{"config/.gitignore", "config__.gitignore"},
	{"a/b/c/d/e.yaml", "a__b__c__d__e.yaml"},
	{"docs/read me.md", "docs__read_20me.md"},
	{"café/menü.yaml", "caf_C3_A9__men_C3_BC.yaml"},
	{"日本/設定.yaml", "_E6_97_A5_E6_9C_AC__" + "_E8_A8_AD_E5_AE_9A.yaml"},
	{"_leading", "_5Fleading"},
	{"trailing_", "trailing_5F"},
	{"__init__.py", "_5F_5Finit_5F_5F.py"},
	{"a_/b", "a_5F__b"},
	{"a/_b", "a___5Fb"},
	{"dir-name/file.name.with.dots", "dir-name__file.name.with.dots"},
	{"...", "_2E.."},
	{"..data/x", "_2E.data__x"},
	{"a/..b", "a__..b"},
	{"x...", "x..."},
	{"scripts/run.sh", "scripts__run.sh"},
	{"fn-config/set+labels@v1 (copy).yaml", "fn-config__set_2Blabels_40v1_20_28copy_29.yaml"},
	{"tab\there", "tab_09here"},
	{"new\nline", "new_0Aline"},
	{"percent%25", "percent_2525"},
	{".github/workflows/ci.yaml", ".github__workflows__ci.yaml"},
	{".gitkeep", ".gitkeep"},
	{"mirror.git/x", "mirror.git__x"},
	{".git-blame-ignore-revs", ".git-blame-ignore-revs"},
	{"git~2", "git_7E2"},
}

func TestEncodeKey_knownPaths_giveReadableKeysThatDecodeBack(t *testing.T) {
	for _, tt := range roundTripPaths {
		t.Run(tt.path, func(t *testing.T) {
			g := NewWithT(t)
			key, err := EncodeKey(tt.path)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(key).To(Equal(tt.key))
			g.Expect(validation.IsConfigMapKey(key)).To(BeEmpty(), "the API server must accept the key")

			path, err := DecodeKey(key)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(path).To(Equal(tt.path))
		})
	}
}

func TestValidatePath_refusesPathsOutsideOrUnfitForAConfigMap(t *testing.T) {
	tests := []struct {
		name, path string
		want       string
	}{
		{"empty", "", "path is empty: name the file relative to the package root"},
		{"absolute", "/etc/passwd", `path "/etc/passwd" is absolute: use a path relative to the package root, e.g. "etc/passwd"`},
		{"parent", "../x", `path "../x" escapes the package: use a path inside the package directory`},
		{"parent in the middle", "a/../../x", `escapes the package`},
		{"parent at the end", "a/..", `escapes the package`},
		{"only parent", "..", `escapes the package`},
		{"dot segment", "./x", `path "./x" contains a "." segment: remove the "./"`},
		{"only dot", ".", `contains a "." segment`},
		{"dot in the middle", "a/./b", `contains a "." segment`},
		{"double slash", "a//b", `path "a//b" contains an empty segment: remove the doubled or trailing "/"`},
		{"trailing slash", "a/", `contains an empty segment`},
		{"backslash", `a\b`, `contains a backslash: separate directories with "/"`},
		{"NUL", "a\x00b", "contains a NUL byte"},
		{"invalid UTF-8", "a\xffb", "is not valid UTF-8"},
		{"key too long", strings.Repeat("a", 254), "encodes to a ConfigMap key of 254 characters, over the limit of 253: shorten"},
		{"key too long after escaping", strings.Repeat("_", 85), "encodes to a ConfigMap key of 255 characters"},
		{".git", ".git", `path ".git" contains ".git", a name Git reserves for its own data`},
		{".git directory", ".git/config", `contains ".git", a name Git reserves`},
		{"nested .git directory", "sub/.git/config", `path "sub/.git/config" contains ".git"`},
		{".git in another case", "sub/.GiT", `contains ".GiT", a name Git reserves`},
		{".git with trailing dots and spaces (NTFS)", "a/.git. ./x", "a name Git reserves"},
		{".git with a stream name (NTFS)", ".git::$INDEX_ALLOCATION/x", "a name Git reserves"},
		{".git short name (NTFS)", "GIT~1/config", "a name Git reserves"},
		{".git with an ignorable code point (HFS+)", ".g\u200cit/config", "a name Git reserves"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := ValidatePath(tt.path)
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(errors.Is(err, ErrInvalidPath)).To(BeTrue())

			_, err = EncodeKey(tt.path)
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}
}

func TestValidatePath_keyOfExactlyMaxLength_isAccepted(t *testing.T) {
	g := NewWithT(t)
	g.Expect(ValidatePath(strings.Repeat("a", MaxKeyLength))).To(Succeed())
	g.Expect(ValidatePath(strings.Repeat("_", 84) + "a")).To(Succeed()) // 84*3+1 = 253
}

func TestDecodeKey_refusesKeysThatAreNotACanonicalEncoding(t *testing.T) {
	tests := []struct {
		name, key string
		want      string
	}{
		{"empty", "", "is empty"},
		{"lone underscore", "my_file.yaml", `key "my_file.yaml" has a malformed escape at offset 2: "_" starts an escape`},
		{"underscore at the end", "file_", "malformed escape at offset 4"},
		{"one hex digit", "file_4", "malformed escape"},
		{"lower-case hex", "caf_c3_a9", "malformed escape"},
		{"character a key cannot hold", "a/b", `contains '/', which a ConfigMap key cannot hold`},
		{"escaped plain character", "_41pp", `key "_41pp" is not in canonical form: write it as "App"`},
		{"escaped slash", "a_2Fb", `write it as "a__b"`},
		{"unescaped leading dots", "..data", `write it as "_2E.data"`},
		{"parent directory", "..__x", "escapes the package"},
		{"escaped parent directory", "_2E.__x", "escapes the package"},
		{"dot", ".", `contains a "." segment`},
		{"leading slash", "__etc__passwd", "is absolute"},
		{"empty segment", "a____b", "contains an empty segment"},
		{"escaped NUL", "a_00b", "contains a NUL byte"},
		{"escaped backslash", "a_5Cb", "contains a backslash"},
		{"invalid UTF-8", "a_FFb", "is not valid UTF-8"},
		{"too long", strings.Repeat("a", 254), "over the limit of 253"},
		{".git", ".git", `key ".git": path ".git" contains ".git", a name Git reserves for its own data`},
		{".git directory", ".git__config", `contains ".git", a name Git reserves`},
		{"nested .git directory", "sub__.git__config", `path "sub/.git/config" contains ".git"`},
		{".git in upper case", "a__.GIT", `contains ".GIT"`},
		{"escaped NTFS .git", "_2Egit_20", "a name Git reserves"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			path, err := DecodeKey(tt.key)
			g.Expect(path).To(BeEmpty())
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(errors.Is(err, ErrInvalidKey)).To(BeTrue())
		})
	}
}

// FuzzEncodeKeyRoundTrip checks, for any path ValidatePath accepts, that its key is one
// the API server accepts and that DecodeKey gives the path back; and, for any string, that
// DecodeKey only accepts a key that EncodeKey would produce.
func FuzzEncodeKeyRoundTrip(f *testing.F) {
	for _, tt := range roundTripPaths {
		f.Add(tt.path)
		f.Add(tt.key)
	}
	for _, s := range []string{"", ".", "..", "../x", "/x", "a//b", `a\b`, "a\x00", "\xff", "_", "__", "_2F", "_zz", "...",
		".git", "sub__.git__config", "a/.GIT/x", "git~1", "_2Egit_2E", ".g\u200dit"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if key, err := EncodeKey(s); err == nil {
			if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
				t.Fatalf("EncodeKey(%q) = %q, which the API server refuses: %v", s, key, errs)
			}
			path, err := DecodeKey(key)
			if err != nil {
				t.Fatalf("DecodeKey(EncodeKey(%q) = %q): %v", s, key, err)
			}
			if path != s {
				t.Fatalf("DecodeKey(EncodeKey(%q)) = %q", s, path)
			}
		} else if !errors.Is(err, ErrInvalidPath) {
			t.Fatalf("EncodeKey(%q) failed without wrapping ErrInvalidPath: %v", s, err)
		}

		if path, err := DecodeKey(s); err == nil {
			if !utf8.ValidString(path) {
				t.Fatalf("DecodeKey(%q) = %q, not valid UTF-8", s, path)
			}
			key, err := EncodeKey(path)
			if err != nil {
				t.Fatalf("EncodeKey(DecodeKey(%q) = %q): %v", s, path, err)
			}
			if key != s {
				t.Fatalf("EncodeKey(DecodeKey(%q)) = %q: two keys decode to the same path", s, key)
			}
		}
	})
}
