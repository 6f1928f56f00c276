//go:build !linux

package scale

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death signal.
func setParentDeathSignal(*exec.Cmd) {}
