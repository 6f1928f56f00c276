//go:build !linux

package crash_test

import "os/exec"

// setParentDeathSignal has no equivalent here: the test kills the manager when it ends.
func setParentDeathSignal(*exec.Cmd) {}
