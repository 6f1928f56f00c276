package controller

import (
	"errors"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
)

// stepError is the error of one reconcile step: a condition reason users see, and when to try
// again. Messages never hold secret values.
type stepError struct {
	// Reason is the condition reason, a constant of api/v1alpha1.
	Reason string
	// RetryAfter, when set, retries after this long instead of with exponential backoff: for
	// failures that only an outside change fixes (a Secret, the remote), so they never loop hot.
	RetryAfter time.Duration
	// Terminal failures wait for the user to change something (watched objects trigger the
	// next reconcile); they are not retried.
	Terminal bool
	Err      error
}

func (e *stepError) Error() string { return e.Err.Error() }
func (e *stepError) Unwrap() error { return e.Err }

// reasonOf returns the condition reason of err, or GitErrorReason when err carries none.
func reasonOf(err error) string {
	var se *stepError
	if errors.As(err, &se) && se.Reason != "" {
		return se.Reason
	}
	return kpov1.GitErrorReason
}

// resultFor maps the outcome of a reconcile to what controller-runtime should do next: a
// stepError with RetryAfter becomes a plain requeue (the condition already tells the user),
// anything else an error with backoff. Never both a non-zero Result and an error.
func resultFor(res ctrl.Result, err error) (ctrl.Result, error) {
	if err == nil {
		return res, nil
	}
	var se *stepError
	switch {
	case errors.As(err, &se) && se.Terminal:
		return ctrl.Result{}, nil
	case errors.As(err, &se) && se.RetryAfter > 0:
		return ctrl.Result{RequeueAfter: se.RetryAfter}, nil
	}
	return ctrl.Result{}, err
}

// terminal is a failure only the user can fix, with the condition reason it shows.
func terminal(reason string, err error) error {
	return &stepError{Reason: reason, Terminal: true, Err: err}
}

// contentReason maps a failure to store a package in its ConfigMap to its reason:
// PackageTooLarge for a package over the size limit, InvalidContent for anything else (paths,
// YAML, symlinks).
func contentReason(err error) string {
	if errors.Is(err, content.ErrTooLarge) {
		return kpov1.PackageTooLargeReason
	}
	return kpov1.InvalidContentReason
}
