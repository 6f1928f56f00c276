package controller

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

func TestContentWanted_draftsAlways_publishedOnlyWhileRequested(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	revision := func(l kpov1.Lifecycle, request string) *kpov1.PackageRevision {
		pr := &kpov1.PackageRevision{Status: kpov1.PackageRevisionStatus{Lifecycle: l}}
		if request != "" {
			pr.Annotations = map[string]string{kpov1.ContentRequestedAnnotation: request}
		}
		return pr
	}
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	for _, tc := range []struct {
		name      string
		pr        *kpov1.PackageRevision
		wanted    bool
		until     time.Time
		invalidIs bool
	}{
		{name: "draft", pr: revision(kpov1.LifecycleDraft, ""), wanted: true},
		{name: "proposal", pr: revision(kpov1.LifecycleProposed, ""), wanted: true},
		{name: "draft with a bad request still has its content", pr: revision(kpov1.LifecycleDraft, "soon"), wanted: true},
		{name: "published, not requested", pr: revision(kpov1.LifecyclePublished, "")},
		{name: "deletion proposed, not requested", pr: revision(kpov1.LifecycleDeletionProposed, "")},
		{name: "published, requested now", pr: revision(kpov1.LifecyclePublished, at(0)),
			wanted: true, until: now.Add(kpov1.ContentRequestTTL)},
		{name: "published, requested a little in the future (clock skew)", pr: revision(kpov1.LifecyclePublished, at(30*time.Second)),
			wanted: true, until: now.Add(30*time.Second + kpov1.ContentRequestTTL)},
		{name: "published, request expired", pr: revision(kpov1.LifecyclePublished, at(-kpov1.ContentRequestTTL)),
			until: now},
		{name: "published, requested in the future", pr: revision(kpov1.LifecyclePublished, at(time.Hour)), invalidIs: true},
		{name: "published, not a time", pr: revision(kpov1.LifecyclePublished, "please"), invalidIs: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			wanted, until, err := contentWanted(tc.pr, now)
			g.Expect(wanted).To(Equal(tc.wanted))
			g.Expect(until).To(BeTemporally("==", tc.until))
			if tc.invalidIs {
				g.Expect(err).To(MatchError(ContainSubstring(kpov1.ContentRequestedAnnotation)))
				g.Expect(err.Error()).To(ContainSubstring("RFC 3339"))
			} else {
				g.Expect(err).NotTo(HaveOccurred())
			}
		})
	}
}
