package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// RevisionName is the PackageRevision name of a package revision, Porch's convention
// `<repository>.<package path with / as .>.<workspace>`. Package paths with characters that a
// Kubernetes name cannot hold (upper case, '_') are lower-cased and cleaned, and a short hash
// of the original keeps distinct paths distinct.
func RevisionName(repository, pkg, workspace string) string {
	name := repository + "." + strings.ReplaceAll(pkg, "/", ".") + "." + workspace
	if len(validation.IsDNS1123Subdomain(name)) == 0 {
		return name
	}
	return clean(name, validation.DNS1123SubdomainMaxLength)
}

// PackageLabelValue is the value of the kpo.dev/package label: the package path with "/" as
// ".", or a cleaned form with a hash suffix when the path is not a valid label value.
func PackageLabelValue(pkg string) string {
	v := strings.ReplaceAll(pkg, "/", ".")
	if len(validation.IsValidLabelValue(v)) == 0 {
		return v
	}
	return clean(v, validation.LabelValueMaxLength)
}

// clean lower-cases s, replaces every character outside [-.a-z0-9] with '-', trims it to fit
// max with room for a hash of the original, and appends that hash.
func clean(s string, max int) string {
	sum := sha256.Sum256([]byte(s))
	suffix := hex.EncodeToString(sum[:])[:10]
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if keep := max - len(suffix) - 1; len(out) > keep {
		out = out[:keep]
	}
	out = strings.Trim(out, "-.")
	if out == "" {
		return suffix
	}
	return out + "-" + suffix
}
