package builtin

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// ErrNoMatchingVersion is returned when no version of a built-in satisfies a Kptfile's semver
// tag constraint.
var ErrNoMatchingVersion = errors.New("no built-in version satisfies the tag constraint")

// versions are the catalog releases each built-in is known to match (kpt's end-to-end
// fixtures, kpt's catalog packages, the catalog's own examples and kpo's own tests use them):
// the image tags a semver `tag:` constraint is resolved against (kpt resolves it against the
// registry's tags), oldest first. A built-in missing here has no verified version, and a tag
// constraint on it fails. Keep the README's table of built-in versions in step.
var versions = map[string][]string{
	"apply-replacements": {"v0.1.1"},
	"set-labels":         {"v0.2.0", "v0.2.5"},
	"set-namespace":      {"v0.4.1", "v0.4.3"},
	"starlark":           {"v0.4.3", "v0.5.0"},
	// Verified by kpo's reproductions of the catalog's examples (testdata/catalog).
	"apply-setters":                 {"v0.2.0"},
	"ensure-name-substring":         {"v0.1.1", "v0.2.0"},
	"remove-local-config-resources": {"v0.1.0"},
	"search-replace":                {"v0.2.0"},
	"set-annotations":               {"v0.1.4"},
	"set-image":                     {"v0.1.1"},
}

// Versions returns the catalog releases the built-in for image stands for, oldest first.
func Versions(image string) []string {
	return slices.Clone(versions[ImageName(image)])
}

// ResolveTag returns image with the tag of the newest built-in version that satisfies the
// semver constraint (kpt's `tag:` field), e.g. set-namespace and "0.4.1 - 0.4.3" →
// set-namespace:v0.4.3.
func ResolveTag(image, constraint string) (string, error) {
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return "", fmt.Errorf("tag %q of %s is not a semver constraint: %w", constraint, image, err)
	}
	name := ImageName(image)
	known := versions[name]
	for i := len(known) - 1; i >= 0; i-- {
		v, err := semver.NewVersion(known[i])
		if err == nil && c.Check(v) {
			base := strings.TrimSpace(image)
			if at := strings.LastIndex(base, "@"); at >= 0 {
				base = base[:at]
			}
			if colon := strings.LastIndex(base, ":"); colon > strings.LastIndex(base, "/") {
				base = base[:colon]
			}
			return base + ":" + known[i], nil
		}
	}
	if len(known) == 0 {
		return "", fmt.Errorf("%w: %s is not built in, and kpo resolves tags against its built-ins only", ErrNoMatchingVersion, image)
	}
	return "", fmt.Errorf("%w: %s %q (built-in versions: %s)", ErrNoMatchingVersion, image, constraint, strings.Join(known, ", "))
}

// VersionSetter is implemented by built-ins whose behaviour differs between catalog releases;
// an evaluator passes the tag of the image it runs (see ImageTag) before Process.
type VersionSetter interface {
	SetVersion(tag string)
}

// ImageTag returns the tag of an image reference ("" when it has none, or only a digest).
func ImageTag(image string) string {
	image = strings.TrimSpace(image)
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return ""
}
