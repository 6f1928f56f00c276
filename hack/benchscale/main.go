// Command benchscale is `make bench-scale`: kpo's scale benchmark (internal/bench/scale). For
// each size R×P×T it generates R Git repositories of P packages with T published tags each,
// starts a fresh control plane and the real manager binary, registers the repositories and
// measures the full sync, the footprint, list times, authoring latency and the writes of two
// resyncs; it prints a Markdown report and writes it to -out.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"kpo.dev/kpo/internal/bench/scale"
	"kpo.dev/kpo/internal/testenv"
)

func main() {
	var (
		sizes, out, managerBin, managerArgs, apiServerArgs, workDir string
		drafts, packageBytes, authoring                             int
		syncTimeout, total, syncInterval, apiServerSettle           time.Duration
		keep                                                        bool
	)
	flag.StringVar(&sizes, "sizes", envOr("KPO_BENCH_SCALE_SIZES", "3x50x3"),
		"Comma-separated sizes RxPxT: R repositories × P packages × T published tags (env KPO_BENCH_SCALE_SIZES).")
	flag.IntVar(&drafts, "drafts", 3, "Draft branches per repository.")
	flag.IntVar(&packageBytes, "package-bytes", 8192, "Approximate size of each package's files.")
	flag.IntVar(&authoring, "authoring", 5, "Authoring rounds (init, edit, propose, approve) measured per size.")
	flag.DurationVar(&syncTimeout, "sync-timeout", 20*time.Minute, "Bound of the wait for everything to be Ready after registration, per size.")
	flag.DurationVar(&total, "timeout", 90*time.Minute, "Bound of the whole run.")
	flag.DurationVar(&syncInterval, "sync-interval", time.Hour, "spec.sync.interval of the Repositories (long, so no periodic sync falls into a measurement).")
	flag.DurationVar(&apiServerSettle, "apiserver-settle", 3*time.Minute,
		"Wait after the full sync, with nothing happening, before kube-apiserver's memory is read again (its runtime collects garbage at least every 2 minutes).")
	flag.StringVar(&managerBin, "manager", "", "Manager binary; empty builds ./cmd.")
	flag.StringVar(&managerArgs, "manager-args", os.Getenv("KPO_BENCH_SCALE_MANAGER_ARGS"),
		"Extra manager flags, space-separated, e.g. --repository-workers=8 (env KPO_BENCH_SCALE_MANAGER_ARGS).")
	flag.StringVar(&apiServerArgs, "apiserver-args", "",
		"Extra kube-apiserver flags, space-separated name=value (e.g. watch-cache-sizes=packagerevisions.kpo.dev#0).")
	flag.StringVar(&out, "out", filepath.Join("bench", "scale-report.txt"), "Report file.")
	flag.StringVar(&workDir, "workdir", "", "Work directory (default: a new temporary directory, removed at the end unless -keep).")
	flag.BoolVar(&keep, "keep", false, "Keep the work directory (repositories, manager logs, audit logs).")
	flag.Parse()

	// envtest logs through controller-runtime; the benchmark prints its own progress.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	parsed, err := scale.ParseSizes(sizes, drafts, packageBytes)
	if err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	if err := run(ctx, parsed, options{
		out: out, managerBin: managerBin, managerArgs: strings.Fields(managerArgs), apiServerArgs: strings.Fields(apiServerArgs),
		workDir: workDir, keep: keep,
		authoring: authoring, syncTimeout: syncTimeout, syncInterval: syncInterval, apiServerSettle: apiServerSettle,
	}); err != nil {
		fatal(err)
	}
}

type options struct {
	out, managerBin, workDir   string
	managerArgs, apiServerArgs []string
	keep                       bool
	authoring                  int
	syncTimeout, syncInterval  time.Duration
	apiServerSettle            time.Duration
}

func run(ctx context.Context, sizes []scale.Size, o options) error {
	dir := o.workDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "kpo-bench-scale-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if !o.keep {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "bench-scale %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	logf("work directory %s", dir)
	bin := o.managerBin
	if bin == "" {
		logf("building the manager")
		var err error
		if bin, err = scale.BuildManager(ctx, dir); err != nil {
			return err
		}
	}
	header := scale.Header{
		Date: time.Now().Format("2006-01-02"), Machine: machine(), Commit: commit(),
		Flags: o.managerArgs, APIServerFlags: o.apiServerArgs, Drafts: sizes[0].Drafts, PackageBytes: sizes[0].PackageBytes,
		SyncInterval: o.syncInterval, Authoring: o.authoring,
	}
	var results []*scale.Result
	failed := map[string]error{}
	write := func() error {
		var b bytes.Buffer
		scale.WriteReport(&b, header, results, failed)
		if err := os.MkdirAll(filepath.Dir(o.out), 0o750); err != nil {
			return err
		}
		return os.WriteFile(o.out, b.Bytes(), 0o600)
	}
	for _, size := range sizes {
		sizeDir := filepath.Join(dir, size.String())
		if err := os.MkdirAll(sizeDir, 0o750); err != nil {
			return err
		}
		logf("size %s: %d published revisions, %d PackageRevisions expected", size, size.Published(), size.PackageRevisions())
		res, err := scale.Run(ctx, scale.Options{
			Size: size, ManagerBin: bin, ManagerArgs: o.managerArgs, APIServerArgs: o.apiServerArgs, Dir: sizeDir, Authoring: o.authoring,
			SyncTimeout: o.syncTimeout, SyncInterval: o.syncInterval, APIServerSettle: o.apiServerSettle, Logf: logf,
		})
		if err != nil {
			logf("size %s failed: %v (manager log: %s)", size, err, filepath.Join(sizeDir, "manager.log"))
			failed[size.String()] = err
			if werr := write(); werr != nil {
				return werr
			}
			// A larger size would fail the same way, or take longer than the bound.
			break
		}
		results = append(results, res)
		if err := write(); err != nil {
			return err
		}
		if !o.keep {
			_ = os.RemoveAll(sizeDir)
		}
	}
	var b bytes.Buffer
	scale.WriteReport(&b, header, results, failed)
	fmt.Print(b.String())
	logf("report written to %s", o.out)
	if len(failed) > 0 {
		return fmt.Errorf("%d size(s) did not complete", len(failed))
	}
	return nil
}

// machine describes this machine: cores, CPU model and memory.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(strings.SplitN(string(data), "\n", 2)[0], "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %d GiB memory", (kb+(1<<19))>>20)
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH)
}

// commit names the kpo commit measured, and whether the working tree had changes.
func commit() string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = testenv.RepoRoot()
	head, err := cmd.Output()
	if err != nil {
		return "unknown commit"
	}
	s := "commit " + strings.TrimSpace(string(head))
	cmd = exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	cmd.Dir = testenv.RepoRoot()
	if st, err := cmd.Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		s += " with uncommitted changes"
	}
	return s
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench-scale:", err)
	os.Exit(1)
}
