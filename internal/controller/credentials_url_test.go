package controller_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/gitserver"
)

func TestRepository_urlWithCredentials_isRefusedAtAdmission(t *testing.T) {
	ns := newNamespace(t)
	for _, url := range []string{
		"http://user:Adm1ss10n-pa55@git.example.com/catalog.git",
		"https://ghp_T0kenAsUserName@github.com/org/catalog.git",
		"https://user:p%40ss@git.example.com:8443/catalog.git",
		"file://user:pass@/srv/git/catalog.git",
	} {
		t.Run(url, func(t *testing.T) {
			g := NewWithT(t)
			repo := &kpov1.Repository{
				ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: ns},
				Spec:       kpov1.RepositorySpec{Git: kpov1.GitRepository{Repo: url}},
			}
			err := k8sClient.Create(context.Background(), repo, client.DryRunAll)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			g.Expect(err.Error()).To(ContainSubstring("spec.git.repo must not hold credentials"))
			g.Expect(err.Error()).To(ContainSubstring("name it in spec.git.secretRef"))
		})
	}
	for _, url := range []string{
		"https://git.example.com/catalog.git",
		"https://git.example.com/org/catalog@v1.git", // an "@" after the host is not userinfo
		"http://127.0.0.1:8080/catalog.git?ref=a@b",
		"file:///srv/git/catalog.git",
	} {
		t.Run(url, func(t *testing.T) {
			repo := &kpov1.Repository{
				ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: ns},
				Spec:       kpov1.RepositorySpec{Git: kpov1.GitRepository{Repo: url}},
			}
			NewWithT(t).Expect(k8sClient.Create(context.Background(), repo, client.DryRunAll)).To(Succeed())
		})
	}
}

func TestPackageDraft_cloneURLWithCredentials_isRefusedAtAdmission(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	clone := func(url string) *kpov1.PackageDraft {
		return &kpov1.PackageDraft{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: kpov1.PackageDraftSpec{Repository: "deploy", PackageName: "web", WorkspaceName: "w",
				Source: kpov1.PackageDraftSource{Clone: &kpov1.CloneSource{Git: &kpov1.GitSource{Repo: url, Ref: "main"}}}},
		}
	}
	err := k8sClient.Create(context.Background(), clone("https://user:Cl0ne-pa55@git.example.com/catalog.git"), client.DryRunAll)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("spec.source.clone.git.repo must not hold credentials"))
	g.Expect(err.Error()).To(ContainSubstring("spec.source.clone.git.secretRef"))
	g.Expect(k8sClient.Create(context.Background(), clone("https://git.example.com/catalog.git"), client.DryRunAll)).To(Succeed())
}

func TestGitStepError_neverHoldsTheUserinfoOfAURL(t *testing.T) {
	const password = "Unit-pa55word"
	url := "https://jane:" + password + "@git.example.com/catalog.git"
	token := "https://ghp_" + password + "@github.com/org/repo.git"
	atInPassword := "http://jane:p@" + password + "@git.example.com/catalog.git"
	tests := []struct {
		name string
		err  error
		is   error
	}{
		{"classified failure", fmt.Errorf("fetching %s: %w", url, git.ErrAuthenticationFailed), git.ErrAuthenticationFailed},
		{"unreachable, whose root cause is quoted", fmt.Errorf("fetching: %w: %w", git.ErrUnreachable, errors.New("dial "+token+": refused")), git.ErrUnreachable},
		{"unclassified failure", fmt.Errorf("reading %s: %w", atInPassword, git.ErrNotFound), git.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := controller.GitStepError("fetching "+url, tt.err)
			g.Expect(err.Error()).NotTo(ContainSubstring(password))
			g.Expect(err.Error()).NotTo(ContainSubstring("jane"))
			g.Expect(err.Error()).To(ContainSubstring("fetching https://git.example.com/catalog.git"))
			g.Expect(errors.Is(err, tt.is)).To(BeTrue(), "the sentinel stays matchable")
		})
	}
	// A scp-like address has no secret and is kept.
	err := controller.GitStepError("fetching git@example.com:org/repo.git", errors.New("boom"))
	NewWithT(t).Expect(err.Error()).To(Equal("fetching git@example.com:org/repo.git: boom"))
}

func TestRepository_kptfileUpstreamWithCredentials_isRedactedInTheStatus(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	srv := newGitServer(t)
	newCredentials(t, ns, "git-creds", gitPassword)
	gitRepo, err := srv.CreateRepo("deploy")
	g.Expect(err).NotTo(HaveOccurred())
	const token = "Upstr3am-t0ken-never-shown"
	kf := kptfile("web") + "upstream:\n  type: git\n  git:\n    repo: https://kpt:" + token + "@git.example.com/catalog.git\n    directory: /web\n    ref: web/v1\n" +
		"upstreamLock:\n  type: git\n  git:\n    repo: https://kpt:" + token + "@git.example.com/catalog.git\n    directory: /web\n    ref: web/v1\n    commit: 0123456789abcdef0123456789abcdef01234567\n"
	_, err = gitRepo.Commit("main", gitserver.Change{Message: "Add web", Files: map[string]string{"web/Kptfile": kf}})
	g.Expect(err).NotTo(HaveOccurred())
	newRepository(t, ns, "deploy", srv.RepoURL("deploy"), "git-creds")

	g.Eventually(func(g Gomega) {
		pr := getRevision(g, ns, "deploy.web.main")
		g.Expect(pr.Status.Upstream).NotTo(BeNil())
		g.Expect(pr.Status.Upstream.Git.Repo).To(Equal("https://git.example.com/catalog.git"))
		g.Expect(pr.Status.UpstreamLock).NotTo(BeNil())
		g.Expect(pr.Status.UpstreamLock.Git.Repo).To(Equal("https://git.example.com/catalog.git"))
	}, timeout, interval).Should(Succeed())
	events := &corev1.EventList{}
	g.Expect(k8sClient.List(context.Background(), events, client.InNamespace(ns))).To(Succeed())
	for _, e := range events.Items {
		g.Expect(e.Message).NotTo(ContainSubstring(token))
	}
	g.Expect(managerLog.String()).NotTo(ContainSubstring(token))
}
