//go:build !linux

package e2e_test

import "os/exec"

// setParentDeathSignal has no equivalent here: the suite kills the processes when it ends.
func setParentDeathSignal(*exec.Cmd) {}
