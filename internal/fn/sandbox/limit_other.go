//go:build !linux

package sandbox

import (
	"fmt"
	"runtime/debug"
)

// LimitMemory sets the Go memory limit to budget bytes, which makes the garbage collector
// keep the heap under it where it can. Only on Linux is the budget also a hard limit (see the
// Linux LimitMemory); kpo runs on Linux.
func LimitMemory(budget int64) error {
	if budget <= 0 {
		return fmt.Errorf("memory budget must be positive, got %d", budget)
	}
	debug.SetMemoryLimit(budget)
	return nil
}
