package kpoctl

import (
	"context"
	"io"
	"strings"
	"testing"

	"kpo.dev/kpo/internal/bench/kptpkg"
)

// writeBenchPackage writes the benchmark package with kpo's built-ins.
func writeBenchPackage(tb testing.TB, dir string, n int) {
	tb.Helper()
	if err := kptpkg.Write(dir, n, kptpkg.Images{
		SetNamespace: "set-namespace:v0.4.3", SetLabels: "set-labels:v0.2.5", ApplyReplacements: "apply-replacements:v0.1.1",
	}); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkFnRender_1000Resources is `kpoctl fn render` in place on 1,000 resources through
// set-namespace, set-labels and apply-replacements, reading and writing the files (the
// command's work without process start-up).
func BenchmarkFnRender_1000Resources(b *testing.B) {
	dir := b.TempDir()
	writeBenchPackage(b, dir, 1000)
	streams := IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
	b.ReportAllocs()
	for b.Loop() {
		if code := Run(context.Background(), []string{"fn", "render", dir}, streams); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
