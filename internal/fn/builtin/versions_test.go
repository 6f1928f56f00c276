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
	} {
		got, err := ResolveTag(c.image, c.tag)
		g.Expect(err).NotTo(HaveOccurred(), c.tag)
		g.Expect(got).To(Equal(c.want))
	}
	_, err := ResolveTag("set-namespace", ">=1.0")
	g.Expect(err).To(MatchError(ErrNoMatchingVersion))
	_, err = ResolveTag("example.com/custom", "~1")
	g.Expect(err).To(MatchError(ErrNoMatchingVersion))
	_, err = ResolveTag("set-namespace", "not a constraint")
	g.Expect(err).To(HaveOccurred())
}
