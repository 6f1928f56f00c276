package crash_test

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the manager when the test binary dies, so a test
// timeout (which exits without running deferred calls) leaves no manager behind.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
