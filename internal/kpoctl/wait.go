package kpoctl

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// pollInterval is how often a waiting command re-reads the object it waits for.
const pollInterval = 200 * time.Millisecond

// errNotYet is what a wait check returns while the outcome is not known; its text is the
// state reported when the wait times out.
type errNotYet string

func (e errNotYet) Error() string { return string(e) }

// waitFor calls check until it returns nil (done), an error other than errNotYet (failed),
// or --timeout passes. what names the object and the state waited for.
func (o *globalOptions) waitFor(ctx context.Context, what string, check func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	last := "no status yet"
	timedOut := func() error {
		return fmt.Errorf("timed out after %s waiting for %s (last status: %s): check that the kpo manager runs, or wait longer with --timeout", o.timeout, what, last)
	}
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		notYet, pending := err.(errNotYet)
		if !pending {
			if ctx.Err() != nil {
				return timedOut()
			}
			return err
		}
		last = string(notYet)
		select {
		case <-ctx.Done():
			return timedOut()
		case <-time.After(pollInterval):
		}
	}
}

// readyOutcome reads the Ready condition of an object of generation: nil when it is True for
// that generation, errNotYet while it is missing, stale or progressing, and an error with the
// condition's reason and message when it is False for any other reason.
func readyOutcome(kind, name string, generation int64, conds []metav1.Condition) error {
	c := meta.FindStatusCondition(conds, kpov1.ReadyCondition)
	switch {
	case c == nil:
		return errNotYet("no Ready condition yet")
	case c.ObservedGeneration < generation:
		return errNotYet(fmt.Sprintf("Ready describes generation %d, not %d yet", c.ObservedGeneration, generation))
	case c.Status == metav1.ConditionTrue:
		return nil
	case c.Reason == kpov1.ProgressingReason || c.Status == metav1.ConditionUnknown:
		return errNotYet(conditionText(c))
	}
	return &conditionError{Kind: kind, Name: name, Condition: *c}
}

// conditionError is a failure the manager reported in a Ready condition.
type conditionError struct {
	Kind, Name string
	Condition  metav1.Condition
	// Hint, when set, says what the user can do next.
	Hint string
}

func (e *conditionError) Error() string {
	s := fmt.Sprintf("%s %s: %s: %s", e.Kind, e.Name, e.Condition.Reason, e.Condition.Message)
	if e.Hint != "" {
		s += "\n" + e.Hint
	}
	return s
}

func conditionText(c *metav1.Condition) string {
	if c.Message == "" {
		return fmt.Sprintf("Ready=%s (%s)", c.Status, c.Reason)
	}
	return fmt.Sprintf("Ready=%s (%s): %s", c.Status, c.Reason, c.Message)
}

// apiError prefixes an API error with the object it is about: "<kind> <name>: <message>".
// The API server's message is kept verbatim, since admission policies put the fix in it.
func apiError(kind, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s not found: list them with `kpoctl %s get`, or pick the namespace with -n", kind, name, cliNoun(kind))
	}
	if apierrors.IsConflict(err) {
		return fmt.Errorf("%s %s changed while kpoctl was working on it (someone else, or the manager): run the command again", kind, name)
	}
	return fmt.Errorf("%s %s: %w", kind, name, err)
}

func cliNoun(kind string) string {
	if kind == kindRepository {
		return "repo"
	}
	return "rpkg"
}

const (
	kindRepository      = "repository"
	kindPackageRevision = "packagerevision"
	kindPackageDraft    = "packagedraft"
)
