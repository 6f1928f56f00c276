package kptfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecode checks that Decode never panics, that every error it returns wraps
// ErrInvalid, and that a Kptfile it accepts encodes to YAML that decodes again and encodes
// to the same bytes: nothing is lost or changed by a read and a write. (The decoded values
// are compared through JSON, whose omitempty treats an empty list and no list alike, as
// Encode does.)
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		realisticKptfile,
		"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n",
		"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata: {name: app}\npipeline: {mutators: [{image: x, configMap: {a: '1'}}]}\n",
		"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n  annotations:\n    a: &x b\n    c: *x\n",
		"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: \"\\u00e9\\t\"\ninfo:\n  description: |\n    two\n    lines\n",
		"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\nstatus:\n  conditions:\n  - type: Ready\n    status: 'True'\n",
		"apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n---\nkind: Other\n",
		"apiVersion: kpt.dev/v1alpha2\nkind: Kptfile\n",
		"[1, 2]",
		"a: &a [*a]",
		"metadata: {name: [x]}",
		"<<: {apiVersion: kpt.dev/v1}\nkind: Kptfile\nmetadata: {name: a}\n",
		"",
		"\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		encoded, err := Encode(k)
		if err != nil {
			t.Fatalf("Encode of a decoded Kptfile: %v", err)
		}
		again, err := Decode(encoded)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v\nencoded:\n%s", data, err, encoded)
		}
		before, _ := json.Marshal(k)
		after, _ := json.Marshal(again)
		if !bytes.Equal(before, after) {
			t.Fatalf("decode, encode, decode changed the Kptfile:\n%s\n%s", before, after)
		}
		reencoded, err := Encode(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encoded, reencoded) {
			t.Fatalf("decode, encode, decode changed the Kptfile:\n%s\n%s", encoded, reencoded)
		}
	})
}
