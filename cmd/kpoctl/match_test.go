package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
)

// Named placeholders of expected output: {{name}}.
var placeholders = map[string]string{
	"age":  `[0-9]+(ms|s|m|h|d|y)([0-9]+(s|m|h))?`,
	"hash": `[0-9a-f]{7,64}`,
	"any":  `.*?`,
	"line": `[^\n]*`,
}

var placeholderPattern = regexp.MustCompile(`\{\{(/.*?/|[a-z]+)\}\}`)

// outputPattern compiles expected output into an anchored regexp: text is literal, {{name}}
// is a named placeholder and {{/re/}} is the regexp re.
func outputPattern(expected string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	last := 0
	for _, m := range placeholderPattern.FindAllStringSubmatchIndex(expected, -1) {
		b.WriteString(regexp.QuoteMeta(expected[last:m[0]]))
		p := expected[m[2]:m[3]]
		if strings.HasPrefix(p, "/") {
			b.WriteString("(?:" + p[1:len(p)-1] + ")")
		} else if re, ok := placeholders[p]; ok {
			b.WriteString("(?:" + re + ")")
		} else {
			return nil, fmt.Errorf("unknown placeholder {{%s}}", p)
		}
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(expected[last:]))
	b.WriteString(`\z`)
	return regexp.Compile(b.String())
}

// MatchOutput matches a string against expected output with placeholders, and on failure
// shows both texts in full.
func MatchOutput(expected string) types.GomegaMatcher {
	return &outputMatcher{expected: expected}
}

type outputMatcher struct{ expected string }

func (m *outputMatcher) Match(actual any) (bool, error) {
	s, ok := actual.(string)
	if !ok {
		return false, fmt.Errorf("MatchOutput expects a string, got %T", actual)
	}
	re, err := outputPattern(m.expected)
	if err != nil {
		return false, err
	}
	return re.MatchString(s), nil
}

func (m *outputMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("output\n-----\n%v-----\ndoes not match the expected\n-----\n%s-----", actual, m.expected)
}

func (m *outputMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("output\n-----\n%v-----\nmatches, and should not\n-----\n%s-----", actual, m.expected)
}

func TestOutputPattern(t *testing.T) {
	g := NewWithT(t)
	re, err := outputPattern("synced 1 packages at commit {{hash}} ({{/[0-9]+/}} ms)\n")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(re.MatchString("synced 1 packages at commit 0123abcd (12 ms)\n")).To(BeTrue())
	g.Expect(re.MatchString("synced 1 packages at commit 0123abcd (12 ms)\nmore\n")).To(BeFalse())
	g.Expect(re.MatchString("synced 1 packages at commit xyz (12 ms)\n")).To(BeFalse())
	_, err = outputPattern("{{nope}}")
	g.Expect(err).To(HaveOccurred())
}
