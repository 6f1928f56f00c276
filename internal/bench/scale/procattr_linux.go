package scale

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the manager when the benchmark dies, so an
// interrupted run leaves no manager behind.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
