package content

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"
)

// filesFromFuzz splits fuzz input into package files: records separated by "\x00\x00",
// each a path and a content separated by "\x00". It lets the fuzzer build maps of any
// shape (odd paths, YAML and Kptfile content) from one byte string.
func filesFromFuzz(data []byte) map[string][]byte {
	files := map[string][]byte{}
	for record := range bytes.SplitSeq(data, []byte("\x00\x00")) {
		p, content, _ := bytes.Cut(record, []byte("\x00"))
		files[string(p)] = content
	}
	return files
}

// FuzzValidate checks that Validate never panics on any set of files, and that it refuses
// exactly the paths ValidatePath refuses.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		"Kptfile\x00" + validKptfile + "\x00\x00deploy.yaml\x00apiVersion: v1\nkind: ConfigMap\n---\na: b\n",
		"Kptfile\x00kind: Kptfile\n\x00\x00sub/Kptfile\x00apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata: {name: sub}\n",
		"cm.yaml\x00data:\n  a: 1\n  a: 2\n",
		"a.yml\x00a: &x [*x]\n\x00\x00b.yaml\x00<<: {a: 1}\n<<: {b: 2}\n",
		"x.yaml\x00{a: [\n",
		"../x.yaml\x00a: b\n\x00\x00sub/.git/config\x00[core]\n\x00\x00/abs\x00",
		"README.md\x00not: yaml: at: all\n",
		"\x00",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		files := filesFromFuzz(data)
		err := Validate(files)
		for p := range maps.Keys(files) {
			if pathErr := ValidatePath(p); pathErr != nil {
				if err == nil || !errors.Is(err, ErrInvalidPath) || !strings.Contains(err.Error(), pathErr.Error()) {
					t.Fatalf("Validate accepted invalid path %q (%v): %v", p, pathErr, err)
				}
			}
		}
	})
}

// FuzzFromConfigMap checks that reading any ConfigMap data never panics, and that content
// read back writes to the same ConfigMap data.
func FuzzFromConfigMap(f *testing.F) {
	for _, tt := range roundTripPaths {
		f.Add(tt.key+"\x00content", []byte{0xff})
	}
	f.Add("a_\x00x\x00\x00_41\x00y", []byte(nil))
	f.Add(".git\x00x\x00\x00sub__.git__config\x00[core]", []byte("bin"))
	f.Add("Kptfile\x00k", []byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, text string, binary []byte) {
		data := map[string]string{}
		for k, v := range filesFromFuzz([]byte(text)) {
			data[k] = string(v)
		}
		var binaryData map[string][]byte
		if len(binary) > 0 {
			binaryData = map[string][]byte{"data.bin": binary}
		}
		files, err := FromConfigMap(data, binaryData)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("FromConfigMap error does not wrap ErrInvalidKey: %v", err)
			}
			return
		}
		gotData, gotBinary, err := ToConfigMap(files)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return
			}
			t.Fatalf("ToConfigMap(FromConfigMap(...)): %v", err)
		}
		back, err := FromConfigMap(gotData, gotBinary)
		if err != nil {
			t.Fatalf("FromConfigMap(ToConfigMap(files)): %v", err)
		}
		if len(back) != len(files) {
			t.Fatalf("round trip changed the file count: %d, then %d", len(files), len(back))
		}
		for p, content := range files {
			if !bytes.Equal(back[p], content) {
				t.Fatalf("round trip changed %q: %q, then %q", p, content, back[p])
			}
		}
	})
}
