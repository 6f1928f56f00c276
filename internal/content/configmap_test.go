package content

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
)

func TestMaxConfigMapSize_isTheAPIServerLimit(t *testing.T) {
	g := NewWithT(t)
	g.Expect(MaxConfigMapSize).To(Equal(corev1.MaxSecretSize))
}

func TestToConfigMap_thenFromConfigMap_givesBackEveryByte(t *testing.T) {
	g := NewWithT(t)
	png := []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0x00, 0xff, 0xfe}
	files := map[string][]byte{
		"Kptfile":               []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n"),
		"app/deploy.yaml":       []byte("apiVersion: apps/v1\nkind: Deployment\n"),
		"my_file.yaml":          []byte("# comment kept\r\nkey: value   \r\n"),
		"README.md":             []byte("# app\n\nUnicode: café 日本 🚀\n"),
		".krmignore":            []byte("*.bak\n"),
		"docs/read me.md":       []byte("no trailing newline"),
		"empty.txt":             {},
		"images/logo.png":       png,
		"scripts/run.sh":        []byte("#!/bin/sh\nexec \"$@\"\n"),
		"bom.yaml":              []byte("\xef\xbb\xbfa: b\n"),
		"latin1.txt":            []byte("caf\xe9"),
		"deep/er/than/most.yml": []byte("a: 1\n"),
	}

	data, binaryData, err := ToConfigMap(files)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data).To(HaveKeyWithValue("app__deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\n"))
	g.Expect(data).To(HaveKeyWithValue("my_5Ffile.yaml", "# comment kept\r\nkey: value   \r\n"))
	g.Expect(data).To(HaveKeyWithValue("empty.txt", ""))
	g.Expect(binaryData).To(Equal(map[string][]byte{
		"images__logo.png": png,
		"latin1.txt":       []byte("caf\xe9"),
	}))
	g.Expect(len(data) + len(binaryData)).To(Equal(len(files)))

	back, err := FromConfigMap(data, binaryData)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(back).To(HaveLen(len(files)))
	for path, content := range files {
		g.Expect(back).To(HaveKey(path))
		g.Expect(bytes.Equal(back[path], content)).To(BeTrue(), "content of %s", path)
	}
	g.Expect(Digest(back)).To(Equal(Digest(files)))
}

func TestToConfigMap_onlyText_leavesBinaryDataNil(t *testing.T) {
	g := NewWithT(t)
	data, binaryData, err := ToConfigMap(map[string][]byte{"a.yaml": []byte("a: b\n")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data).To(Equal(map[string]string{"a.yaml": "a: b\n"}))
	g.Expect(binaryData).To(BeNil())

	data, binaryData, err = ToConfigMap(nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data).To(BeNil())
	g.Expect(binaryData).To(BeNil())
}

func TestToConfigMap_doesNotAliasTheCallersBytes(t *testing.T) {
	g := NewWithT(t)
	content := []byte{0xff, 0x00}
	_, binaryData, err := ToConfigMap(map[string][]byte{"bin": content})
	g.Expect(err).NotTo(HaveOccurred())
	content[0] = 'x'
	g.Expect(binaryData["bin"]).To(Equal([]byte{0xff, 0x00}))
}

func TestToConfigMap_sizeLimit(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string][]byte
		tooBig  bool
		message string
	}{
		{
			name:  "exactly the limit is accepted",
			files: map[string][]byte{"a.txt": bytes.Repeat([]byte("a"), MaxConfigMapSize)},
		},
		{
			name: "keys do not count towards the limit",
			files: map[string][]byte{
				strings.Repeat("k", MaxKeyLength): bytes.Repeat([]byte("a"), MaxConfigMapSize/2),
				"b":                               bytes.Repeat([]byte("b"), MaxConfigMapSize/2),
			},
		},
		{
			name:    "one byte over is refused",
			files:   map[string][]byte{"a.txt": bytes.Repeat([]byte("a"), MaxConfigMapSize+1)},
			tooBig:  true,
			message: "package too large for one ConfigMap: its content is 1048577 bytes (1 files), over the ConfigMap limit of 1048576 bytes: split the package",
		},
		{
			name: "text and binary count together",
			files: map[string][]byte{
				"text.txt": bytes.Repeat([]byte("a"), MaxConfigMapSize/2),
				"bin.dat":  bytes.Repeat([]byte{0xff}, MaxConfigMapSize/2+1),
			},
			tooBig:  true,
			message: "its content is 1048577 bytes (2 files)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			data, binaryData, err := ToConfigMap(tt.files)
			if !tt.tooBig {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(len(data) + len(binaryData)).To(Equal(len(tt.files)))
				return
			}
			g.Expect(err).To(MatchError(ErrTooLarge))
			g.Expect(err).To(MatchError(ContainSubstring(tt.message)))
			g.Expect(data).To(BeNil())
			g.Expect(binaryData).To(BeNil())
		})
	}
}

func TestToConfigMap_invalidPaths_areAllNamed(t *testing.T) {
	g := NewWithT(t)
	_, _, err := ToConfigMap(map[string][]byte{
		"ok.yaml":   []byte("a: b\n"),
		"../x.yaml": []byte("a: b\n"),
		"/abs.yaml": []byte("a: b\n"),
	})
	g.Expect(errors.Is(err, ErrInvalidPath)).To(BeTrue())
	g.Expect(err).To(MatchError(ContainSubstring(`path "../x.yaml" escapes the package`)))
	g.Expect(err).To(MatchError(ContainSubstring(`path "/abs.yaml" is absolute`)))
	g.Expect(errors.Is(err, ErrTooLarge)).To(BeFalse())
}

func TestFromConfigMap_refusesBadKeys_namingEachOne(t *testing.T) {
	tests := []struct {
		name       string
		data       map[string]string
		binaryData map[string][]byte
		want       []string
	}{
		{
			name:       "key in both data and binaryData",
			data:       map[string]string{"a.yaml": "a: b\n"},
			binaryData: map[string][]byte{"a.yaml": {0xff}},
			want:       []string{`key "a.yaml" is in both data and binaryData: keep it in only one of them`},
		},
		{
			name: "unescaped underscore",
			data: map[string]string{"my_file.yaml": ""},
			want: []string{`key "my_file.yaml" has a malformed escape`, `write "_" itself as "_5F"`},
		},
		{
			name:       "key escaping the package",
			binaryData: map[string][]byte{"..__etc__passwd": {0xff}},
			want:       []string{`key "..__etc__passwd": path "../etc/passwd" escapes the package`},
		},
		{
			name: "key of a file in a .git directory",
			data: map[string]string{"Kptfile": "", "sub__.git__config": "[core]\n"},
			want: []string{`key "sub__.git__config": path "sub/.git/config" contains ".git", a name Git reserves for its own data`},
		},
		{
			name: "every bad key is reported",
			data: map[string]string{"ok.yaml": "", "a_": "", "_41": ""},
			want: []string{`key "a_"`, `key "_41" is not in canonical form: write it as "A"`},
		},
		{
			name: "non-ASCII character is named as such",
			data: map[string]string{"café.yaml": ""},
			want: []string{`key "café.yaml" contains 'é', which a ConfigMap key cannot hold`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			files, err := FromConfigMap(tt.data, tt.binaryData)
			g.Expect(files).To(BeNil())
			g.Expect(errors.Is(err, ErrInvalidKey)).To(BeTrue())
			for _, w := range tt.want {
				g.Expect(err).To(MatchError(ContainSubstring(w)))
			}
		})
	}
}

func TestFromConfigMap_empty_givesNoFiles(t *testing.T) {
	g := NewWithT(t)
	files, err := FromConfigMap(nil, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).To(BeEmpty())
}
