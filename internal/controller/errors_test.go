package controller

import (
	"errors"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/git"
)

func TestResultFor_neverBothAResultAndAnError(t *testing.T) {
	periodic := ctrl.Result{RequeueAfter: time.Hour}
	for _, tt := range []struct {
		name       string
		err        error
		wantResult ctrl.Result
		wantErr    bool
	}{
		{"success keeps the requeue", nil, periodic, false},
		{"terminal waits for the user", terminal(kpov1.InvalidContentReason, errors.New("x")), ctrl.Result{}, false},
		{"retry after a pause", &stepError{Reason: kpov1.SecretNotFoundReason, RetryAfter: time.Minute, Err: errors.New("x")},
			ctrl.Result{RequeueAfter: time.Minute}, false},
		{"anything else backs off", errors.New("x"), ctrl.Result{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			res, err := resultFor(periodic, tt.err)
			g.Expect(res).To(Equal(tt.wantResult))
			g.Expect(err != nil).To(Equal(tt.wantErr))
		})
	}
}

func TestErrorReasons_oneMappingPerKindOfFailure(t *testing.T) {
	g := NewWithT(t)
	for err, reason := range map[error]string{
		fmt.Errorf("x: %w", git.ErrAuthenticationFailed): kpov1.AuthenticationFailedReason,
		fmt.Errorf("x: %w", git.ErrRepositoryNotFound):   kpov1.RepositoryNotFoundReason,
		fmt.Errorf("x: %w", git.ErrUnreachable):          kpov1.RepositoryUnreachableReason,
		fmt.Errorf("x: %w", git.ErrBranchNotFound):       kpov1.BranchNotFoundReason,
		errors.New("something else"):                     kpov1.GitErrorReason,
	} {
		g.Expect(reasonOf(gitStepError("fetching", err))).To(Equal(reason), err.Error())
	}
	g.Expect(contentReason(fmt.Errorf("x: %w", content.ErrTooLarge))).To(Equal(kpov1.PackageTooLargeReason))
	g.Expect(contentReason(fmt.Errorf("x: %w", git.ErrSymlink))).To(Equal(kpov1.InvalidContentReason))
}
