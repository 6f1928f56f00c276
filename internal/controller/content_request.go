package controller

import (
	"context"
	"fmt"
	"time"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// requestClockSkew is how far in the future a content request's time may be: the clocks of
// the requester and the manager differ a little.
const requestClockSkew = time.Minute

// immutableContent reports whether a revision's content can no longer change: published, or
// proposed for deletion. Its content is in Git, and in a ConfigMap only on request.
func immutableContent(pr *kpov1.PackageRevision) bool {
	return pr.Status.Lifecycle == kpov1.LifecyclePublished || pr.Status.Lifecycle == kpov1.LifecycleDeletionProposed
}

// contentWanted reports whether a revision's content belongs in a ConfigMap at now: always
// for a draft or a proposal (it is edited and reviewed there); for a published revision from
// the time its kpo.dev/content-requested annotation names until ContentRequestTTL after it,
// which is returned as until. The annotation is user input: a value that is not a time at or
// before now is an error, and asks for nothing.
func contentWanted(pr *kpov1.PackageRevision, now time.Time) (wanted bool, until time.Time, err error) {
	if !immutableContent(pr) {
		return true, time.Time{}, nil
	}
	value, ok := pr.Annotations[kpov1.ContentRequestedAnnotation]
	if !ok {
		return false, time.Time{}, nil
	}
	at, err := time.Parse(time.RFC3339, value)
	if err != nil || at.After(now.Add(requestClockSkew)) {
		return false, time.Time{}, fmt.Errorf(
			"annotation %s=%q is not the time of a request: set it to the current time in RFC 3339 (date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)",
			kpov1.ContentRequestedAnnotation, truncateMessage(value))
	}
	until = at.Add(kpov1.ContentRequestTTL)
	return now.Before(until), until, nil
}

// reconcileContentRequest writes or removes the content ConfigMap of a published revision as
// its content request asks (through the sync, which owns status.resourcesRef), and comes back
// when the request expires.
func (r *PackageRevisionReconciler) reconcileContentRequest(ctx context.Context, s *revisionScope) error {
	pr := s.pr
	if !immutableContent(pr) {
		return nil
	}
	wanted, until, invalid := contentWanted(pr, time.Now())
	if wanted {
		s.requeueWithin(time.Until(until) + time.Second)
	}
	if has := pr.Status.ResourcesRef != nil; has != wanted && (has || pr.Status.ContentError == nil) {
		if err := r.resync(ctx, s.repo, pr.Spec.PackageName); err != nil {
			return err
		}
	}
	if invalid != nil {
		return terminal(kpov1.InvalidContentRequestReason, invalid)
	}
	return nil
}
