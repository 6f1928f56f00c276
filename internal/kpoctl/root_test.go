package kpoctl

import (
	"bytes"
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/lifecycle"
)

func TestEveryCommand_hasAnExampleAndAShortDescription(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		t.Run(c.CommandPath(), func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(c.Example).NotTo(BeEmpty())
			g.Expect(c.Short).NotTo(BeEmpty())
		})
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub)
			}
		}
	}
	walk(NewRootCommand(IOStreams{}))
}

func TestRun_help_printsTheExample(t *testing.T) {
	g := NewWithT(t)
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"rpkg", "push", "--help"}, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	g.Expect(code).To(Equal(0))
	g.Expect(out.String()).To(ContainSubstring("Examples:\n  kpoctl rpkg pull deployments.my-app.first ./my-app"))
	g.Expect(errOut.String()).To(BeEmpty())
}

func TestRun_usageErrors_nameTheFix(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"rpkg", "init", "pkg"}, "error: --repository and --workspace are required: say where the new package revision goes\n"},
		{[]string{"rpkg", "init", "pkg", "--repository", "r"}, "error: --workspace is required: say where the new package revision goes\n"},
		{[]string{"repo", "reg"}, "error: kpoctl repo reg expects URL, got 0 arguments: see `kpoctl repo reg --help`\n"},
		{[]string{"repo", "sync"}, "error: name the repositories to sync, or pass --all\n"},
		{[]string{"rpkg", "get", "-o", "jsonpath"}, "error: unknown output format \"jsonpath\": use -o table, wide, yaml, json or name\n"},
		{[]string{"repo", "reg", "ssh://example.com/x.git"}, "error: repository URL \"ssh://example.com/x.git\" is not an http://, https:// or file:// URL\n"},
		{[]string{"rpkg", "upgrade", "d.app.v1", "--all-downstreams", "b.app.v2"}, "error: --all-downstreams upgrades the downstreams of an upstream: drop the PACKAGE_REVISION argument\n"},
		{[]string{"rpkg", "upgrade", "d.app.v1", "--workspace", "w", "-l", "a=b"}, "error: --repository and --selector select downstreams of --all-downstreams UPSTREAM: the draft of a single upgrade goes to the repository of PACKAGE_REVISION\n"},
		{[]string{"rpkg", "upgrade", "--all-downstreams", "b.app.v2", "--strategy", "rebase"}, "error: unknown --strategy \"rebase\": use resource-merge, fast-forward, force-delete-replace or copy-merge\n"},
		{[]string{"rpkg", "rollback"}, "error: name the package to roll back by one of its revisions, or pass --all-downstreams UPSTREAM\n"},
		{[]string{"rpkg", "rollback", "--all-downstreams", "b.app.v2", "--to", "1"}, "error: --to applies to one package: with --all-downstreams every downstream goes back to its own previous published revision\n"},
		{[]string{"rpkg", "rollback", "d.app.v2", "--repository", "east"}, "error: --repository and --selector select downstreams of --all-downstreams UPSTREAM: a rollback of PACKAGE_REVISION stays in its repository\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			g := NewWithT(t)
			var out, errOut bytes.Buffer
			code := Run(context.Background(), tt.args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			g.Expect(code).To(Equal(1))
			g.Expect(errOut.String()).To(Equal(tt.want))
			g.Expect(out.String()).To(BeEmpty())
		})
	}
}

func TestResourceList_roundTrip_keepsFilesAndOrder(t *testing.T) {
	g := NewWithT(t)
	files := map[string][]byte{
		"Kptfile":        []byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n"),
		"app/multi.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a # comment kept\n"),
		"README.md":      []byte("# not a resource\n"),
	}
	var rl bytes.Buffer
	g.Expect(writeResourceList(&rl, files)).To(Succeed())
	g.Expect(rl.String()).To(HavePrefix("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"))
	g.Expect(rl.String()).NotTo(ContainSubstring("not a resource"))
	back, err := readResourceList(&rl)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(back).To(HaveLen(2))
	g.Expect(string(back["Kptfile"])).To(Equal(string(files["Kptfile"])))
	g.Expect(string(back["app/multi.yaml"])).To(Equal(string(files["app/multi.yaml"])))
}

func TestParseGitSource_readsKptsPackageArgument(t *testing.T) {
	g := NewWithT(t)
	for arg, want := range map[string]gitSource{
		"https://u:p@example.com/org/blueprints.git/basens@basens/v1": {repo: "https://u:p@example.com/org/blueprints.git", directory: "/basens", ref: "basens/v1"},
		"https://example.com/org/blueprints.git/catalog/nginx":        {repo: "https://example.com/org/blueprints.git", directory: "/catalog/nginx"},
		"https://example.com/org/blueprints.git@v2":                   {repo: "https://example.com/org/blueprints.git", directory: "/", ref: "v2"},
		"/srv/git/blueprints.git/basens@main":                         {repo: "/srv/git/blueprints.git", directory: "/basens", ref: "main"},
	} {
		got, err := parseGitSource(arg)
		g.Expect(err).NotTo(HaveOccurred(), arg)
		g.Expect(got).To(Equal(want), arg)
	}
}

func TestRpkgTable_wide_showsGuardrailsDownstreamValidationAndDeployments(t *testing.T) {
	g := NewWithT(t)
	pr := kpov1.PackageRevision{}
	pr.Name, pr.Spec.PackageName, pr.Spec.WorkspaceName, pr.Spec.Repository = "blueprints.base.v2", "base", "v2", "blueprints"
	pr.Status.Lifecycle = kpov1.LifecycleProposed
	pr.Status.Conditions = []metav1.Condition{{Type: kpov1.GuardrailsPassedCondition, Status: metav1.ConditionTrue, Reason: kpov1.PassedReason}}
	pr.Status.DownstreamValidation = &kpov1.DownstreamValidation{Summary: "1 upgrades cleanly, 1 conflicts"}
	var out bytes.Buffer
	g.Expect(rpkgTable([]kpov1.PackageRevision{pr}, false, true).write(&out)).To(Succeed())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	g.Expect(lines[0]).To(MatchRegexp(`UPSTREAM\s+GUARDRAILS\s+DOWNSTREAMS\s+DEPLOYED-BY$`))
	g.Expect(lines[1]).To(MatchRegexp(`<none>\s+Passed\s+1 upgrades cleanly, 1 conflicts\s+<none>$`))

	pr.Status.Deployments = []kpov1.Deployment{
		{Kind: "Kustomization", Namespace: "flux-system", Name: "app", Ready: metav1.ConditionTrue},
		{Kind: "RootSync", Namespace: "config-management-system", Name: "root-sync", Ready: metav1.ConditionFalse},
	}
	out.Reset()
	g.Expect(rpkgTable([]kpov1.PackageRevision{pr}, false, true).write(&out)).To(Succeed())
	g.Expect(out.String()).To(ContainSubstring("Kustomization/flux-system/app,RootSync/config-management-system/root-sync (not ready)"))
	out.Reset()
	g.Expect(rpkgTable([]kpov1.PackageRevision{pr}, false, false).write(&out)).To(Succeed())
	g.Expect(out.String()).NotTo(ContainSubstring("GUARDRAILS"))
}

func TestBlockedError_saysWhatToFixNext(t *testing.T) {
	g := NewWithT(t)
	guardrail := metav1.Condition{Type: kpov1.GuardrailsPassedCondition, Status: metav1.ConditionFalse,
		Reason: kpov1.GuardrailFailedReason, Message: `guardrail "team" failed`}
	err := blockedError("proposed", &lifecycle.BlockedError{Name: "r", Condition: guardrail})
	g.Expect(err).To(MatchError(ContainSubstring(`packagerevision r: GuardrailFailed: guardrail "team" failed`)))
	g.Expect(err.Error()).To(ContainSubstring("Not proposed: fix the content"))
	guardrail.Reason = kpov1.GuardrailErrorReason
	g.Expect(blockedError("proposed", &lifecycle.BlockedError{Name: "r", Condition: guardrail}).Error()).To(ContainSubstring("spec.guardrails"))
	ready := metav1.Condition{Type: kpov1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "RenderFailed", Message: "boom"}
	g.Expect(blockedError("approved", &lifecycle.BlockedError{Name: "r", Condition: ready}).Error()).To(ContainSubstring("Not approved: fix the revision first"))
}
