package controller

// This file is the one place where failures become condition reasons and retry decisions:
// stepError and resultFor, and the mappings of Git (gitStepError), render (renderFailureReason)
// and content (contentReason) failures.

import (
	"errors"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/job"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/render"
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

// isTerminal reports whether err is a failure only the user can fix (see terminal).
func isTerminal(err error) bool {
	var se *stepError
	return errors.As(err, &se) && se.Terminal
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

// gitStepError wraps a Git failure with the condition reason it maps to and a message that
// says what to fix. Failures only an outside change fixes retry after a pause instead of with
// backoff. Classified failures are described by their sentinel, not by the transport's text.
// The message never holds the userinfo of a URL (see redactURLs), wherever it came from.
func gitStepError(doing string, err error) error {
	var se *stepError
	if errors.As(err, &se) {
		return redacted(err)
	}
	var reason, advice string
	var sentinel error
	switch {
	case errors.Is(err, git.ErrAuthenticationFailed):
		reason, sentinel = kpov1.AuthenticationFailedReason, git.ErrAuthenticationFailed
		advice = "check the username, password or token in the Secret named by secretRef"
	case errors.Is(err, git.ErrRepositoryNotFound):
		reason, sentinel = kpov1.RepositoryNotFoundReason, git.ErrRepositoryNotFound
		advice = "check the repository URL"
	case errors.Is(err, git.ErrUnreachable):
		reason, sentinel = kpov1.RepositoryUnreachableReason, git.ErrUnreachable
		advice = "check the host name, the port and the network (" + rootCause(err) + ")"
	case errors.Is(err, git.ErrBranchNotFound):
		reason, sentinel = kpov1.BranchNotFoundReason, git.ErrBranchNotFound
		advice = "create the branch, or set spec.git.createBranch: true"
	default:
		return redacted(fmt.Errorf("%s: %w", doing, err))
	}
	return &stepError{Reason: reason, RetryAfter: maxRetryAfter, Err: redacted(fmt.Errorf("%s: %w: %s", doing, sentinel, advice))}
}

// renderFailureReason maps a render error to the Rendered condition's reason.
func renderFailureReason(err error) string {
	var fe *render.FunctionError
	switch {
	case errors.Is(err, render.ErrInvalidKptfile):
		return kpov1.InvalidKptfileReason
	case errors.Is(err, job.ErrImageNotAllowed), errors.Is(err, fn.ErrExecNotAllowed):
		return kpov1.ImageNotAllowedReason
	case errors.Is(err, render.ErrTimeout):
		return kpov1.TimeoutReason
	case errors.As(err, &fe):
		return kpov1.FunctionFailedReason
	}
	return kpov1.FunctionFailedReason
}
