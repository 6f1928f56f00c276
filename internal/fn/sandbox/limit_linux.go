package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// LimitMemory bounds the memory of the calling process to budget bytes; kpo-fn calls it
// first thing. The hard limit is RLIMIT_AS, set to the address space already mapped (the Go
// runtime reserves much of it at start, unused) plus the budget, so that an allocation past
// the budget fails and the runtime dies with "fatal error: out of memory" (exit code 2) where
// it would have grown. The Go memory limit is set to the budget too, so the garbage collector
// works harder before that happens. The process also offers itself first to the kernel's
// out-of-memory killer, before the manager that shares its container.
func LimitMemory(budget int64) error {
	if budget <= 0 {
		return fmt.Errorf("memory budget must be positive, got %d", budget)
	}
	mapped, err := mappedBytes()
	if err != nil {
		return fmt.Errorf("reading the address space size: %w", err)
	}
	limit := mapped + uint64(budget)
	var current syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &current); err != nil {
		return fmt.Errorf("reading RLIMIT_AS: %w", err)
	}
	if current.Max < limit {
		limit = current.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		return fmt.Errorf("setting RLIMIT_AS: %w", err)
	}
	debug.SetMemoryLimit(budget)
	// Best effort: raising one's own score needs no privilege, but /proc may be read-only.
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
	return nil
}

// mappedBytes is the process's current address space size (VmSize).
func mappedBytes() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	s := bufio.NewScanner(bytes.NewReader(status))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmSize %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmSize in /proc/self/status")
}
