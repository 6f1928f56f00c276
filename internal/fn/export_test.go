package fn

import "testing"

// Hooks for the external test package (conformance_kpoctl_test.go), which may import kpoctl.
var (
	ApplyGitDiff  = applyGitDiff
	SetOutOfPlace = func(f func(t *testing.T, dir string, script []string) []string) { outOfPlaceRunner = f }
)
