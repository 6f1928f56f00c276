//go:build !unix

package sandbox

import "os/exec"

// ownProcessGroup leaves cmd as it is: its cancellation kills the process alone.
func ownProcessGroup(*exec.Cmd) {}

// killed reports false: there is no SIGKILL to tell.
func killed(*exec.ExitError) bool { return false }
