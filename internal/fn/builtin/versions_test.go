package builtin

import (
	"testing"

	. "github.com/onsi/gomega"
)

func TestResolveTag_picksTheNewestBuiltinVersionThatSatisfiesTheConstraint(t *testing.T) {
	g := NewWithT(t)
	for _, c := range []struct{ image, tag, want string }{
		{"ghcr.io/kptdev/krm-functions-catalog/set-namespace", "0.4.1 - 0.4.3", "ghcr.io/kptdev/krm-functions-catalog/set-namespace:v0.4.3"},
		{"ghcr.io/kptdev/krm-functions-catalog/set-labels", "~0.2", "ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2.5"},
		{"set-labels:latest", "<0.2.5", "set-labels:v0.2.0"},
		{"gcr.io/kpt-fn/apply-replacements", "^0.1", "gcr.io/kpt-fn/apply-replacements:v0.1.1"},
		{"gcr.io/kpt-fn/ensure-name-substring", "~0.2", "gcr.io/kpt-fn/ensure-name-substring:v0.2.0"},
		{"gcr.io/kpt-fn/ensure-name-substring", "<0.2", "gcr.io/kpt-fn/ensure-name-substring:v0.1.1"},
		{"ghcr.io/kptdev/krm-functions-catalog/set-annotations", "^0.1", "ghcr.io/kptdev/krm-functions-catalog/set-annotations:v0.1.4"},
		{"remove-local-config-resources", "0.1.x", "remove-local-config-resources:v0.1.0"},
	} {
		got, err := ResolveTag(c.image, c.tag)
		g.Expect(err).NotTo(HaveOccurred(), c.tag)
		g.Expect(got).To(Equal(c.want))
	}
	_, err := ResolveTag("set-namespace", ">=1.0")
	g.Expect(err).To(MatchError(ErrNoMatchingVersion))
	_, err = ResolveTag("gcr.io/kpt-fn/ensure-name-substring", ">=0.2.1")
	g.Expect(err).To(MatchError(ErrNoMatchingVersion))
	_, err = ResolveTag("example.com/custom", "~1")
	g.Expect(err).To(MatchError(ErrNoMatchingVersion))
	_, err = ResolveTag("set-namespace", "not a constraint")
	g.Expect(err).To(HaveOccurred())
}
