// Command benchkpt runs `kpt fn render` (when kpt is installed) and `kpoctl fn render` side by
// side on generated packages and prints their times and the ratio: `make bench-kpt`.
//
// Each package has N resources (Deployments and ConfigMaps, 100 per file) and a pipeline of
// set-namespace, set-labels and apply-replacements. Every run renders a fresh copy, as a
// whole process (start-up, reading, rendering, writing); the median of the runs is reported.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"kpo.dev/kpo/internal/bench/kptpkg"
)

func main() {
	sizes := flag.String("sizes", "100,1000", "package sizes in resources, comma-separated")
	runs := flag.Int("runs", 5, "runs per tool and size (the median is reported)")
	kpoctl := flag.String("kpoctl", "bin/kpoctl", "the kpoctl binary")
	flag.Parse()
	kpt, _ := exec.LookPath("kpt")
	fmt.Printf("%-10s %-14s %-14s %s\n", "resources", "kpoctl", "kpt", "kpt/kpoctl")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fail(fmt.Errorf("size %q: %w", s, err))
		}
		src, err := os.MkdirTemp("", "benchkpt-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(src)
		if err := writePackage(filepath.Join(src, "pkg"), n); err != nil {
			fail(err)
		}
		ours, err := median(*runs, src, *kpoctl)
		if err != nil {
			fail(err)
		}
		theirs, ratio := "not installed", "-"
		if kpt != "" {
			if d, err := median(*runs, src, kpt); err != nil {
				theirs = "failed"
				fmt.Fprintf(os.Stderr, "kpt failed (it runs the catalog's images through docker, or their binaries with --allow-exec): %s\n", strings.SplitN(err.Error(), "\n", 2)[0])
			} else {
				theirs, ratio = d.Round(time.Millisecond).String(), fmt.Sprintf("%.1fx", float64(d)/float64(ours))
			}
		}
		fmt.Printf("%-10d %-14s %-14s %s\n", n, ours.Round(time.Millisecond), theirs, ratio)
	}
}

// median renders fresh copies of src/pkg with tool runs times and returns the median time.
func median(runs int, src, tool string) (time.Duration, error) {
	var times []time.Duration
	for i := 0; i < runs; i++ {
		dir := filepath.Join(src, fmt.Sprintf("run-%d", i))
		if err := exec.Command("cp", "-r", filepath.Join(src, "pkg"), dir).Run(); err != nil { //nolint:gosec // G204: cp of the benchmark's own temporary directories
			return 0, err
		}
		start := time.Now()
		out, err := exec.Command(tool, "fn", "render", dir).CombinedOutput() //nolint:gosec // G204: the benchmark runs the tools it was given
		times = append(times, time.Since(start))
		_ = os.RemoveAll(dir)
		if err != nil {
			return 0, fmt.Errorf("%s fn render: %w\n%s", tool, err, out)
		}
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// writePackage writes the benchmark package with kpt's catalog images.
func writePackage(dir string, n int) error {
	return kptpkg.Write(dir, n, kptpkg.Images{
		SetNamespace:      "ghcr.io/kptdev/krm-functions-catalog/set-namespace:v0.4.1",
		SetLabels:         "ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2.0",
		ApplyReplacements: "ghcr.io/kptdev/krm-functions-catalog/apply-replacements:v0.1.1",
	})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchkpt:", err)
	os.Exit(1)
}
