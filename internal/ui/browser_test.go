package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/controller"
	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/kpoctl"
	"kpo.dev/kpo/internal/testenv"
	"kpo.dev/kpo/internal/ui"
)

const (
	gitUser     = "kpo-ui"
	gitPassword = "ui-Pa55word"
	draft       = "deployments.my-app.first"
)

// The package the author edits: set-labels (built into kpo) labels every resource with the
// team its function config names.
const (
	kptfileBlue = `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: my-app
  annotations:
    config.kubernetes.io/local-config: "true"
info:
  description: My app
pipeline:
  mutators:
  - image: ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.2.5
    configMap:
      team: blue
`
	configMapYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: my-app
data:
  greeting: hello
`
)

// TestBrowser_authorEditsWithPreviewProposes_approverApproves_viewerSeesNoButtons drives the
// UI in a real Chromium against a real API server, kpo manager and Git server, as three users
// with their own identities: the author edits a draft and sees the function's change in the
// preview before saving, saves (a commit in Git) and proposes; a forged approval from the
// author shows the API server's refusal; a viewer sees no lifecycle buttons; an approver
// approves. With KPO_UI_SCREENSHOTS=DIR it also writes the screenshots of the README.
func TestBrowser_authorEditsWithPreviewProposes_approverApproves_viewerSeesNoButtons(t *testing.T) {
	g := NewWithT(t)
	browser := chromiumPath(t)
	logOut := io.Discard
	if os.Getenv("KPO_TEST_LOG") != "" {
		logOut = os.Stderr
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(logOut)))
	env, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	// The manager renders drafts with its built-in functions, as it does in production.
	kpo, err := testenv.StartKpo(env, func(_ ctrl.Manager, o *controller.Options) error {
		o.Render = fn.NewSelector(nil, nil, 16).Render
		return nil
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(kpo.Stop)
	admin, err := client.New(env.Config, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	g.Expect(admin.Create(ctx, ns)).To(Succeed())
	roles := map[string][]string{"alice": {"kpo-author", "kpo-repository-admin"}, "bob": {"kpo-approver"}, "carol": {"kpo-viewer"}}
	for user, role := range flatten(roles) {
		g.Expect(admin.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role, Namespace: ns.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		})).To(Succeed())
	}

	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Username: gitUser, Password: gitPassword})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = srv.Close() })
	gitRepo, err := srv.CreateRepo("deployments")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = gitRepo.Commit("main", gitserver.Change{Files: map[string]string{"README.md": "# deployments\n"}, Message: "init"})
	g.Expect(err).NotTo(HaveOccurred())
	// The blueprint the author clones: my-app v1, a tag of the blueprints repository.
	blueprints, err := srv.CreateRepo("blueprints")
	g.Expect(err).NotTo(HaveOccurred())
	v1, err := blueprints.Commit("main", gitserver.Change{Message: "my-app v1", Files: map[string]string{
		"my-app/Kptfile": kptfileBlue, "my-app/configmap.yaml": configMapYAML, "my-app/README.md": "# my-app\n"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(blueprints.Tag("my-app/v1", v1)).To(Succeed())
	// The credentials of the Git server, in a Secret made as kubectl would: the UI names it,
	// and never reads or writes Secrets itself.
	g.Expect(admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git-auth", Namespace: ns.Name}, Type: corev1.SecretTypeBasicAuth,
		StringData: map[string]string{corev1.BasicAuthUsernameKey: gitUser, corev1.BasicAuthPasswordKey: gitPassword}})).To(Succeed())

	dir := t.TempDir()
	kpoctlRun := kpoctlAs(t, env.Config, ns.Name, dir)
	kpoctlRun("repo", "reg", srv.URL()+"/deployments.git", "--deployment", "--repo-basic-username", gitUser, "--repo-basic-password", gitPassword)

	shots := os.Getenv("KPO_UI_SCREENSHOTS")
	b := newBrowser(t, browser)
	alice := startUI(t, env.Config, "alice", ns.Name)
	carol := startUI(t, env.Config, "carol", ns.Name)
	bob := startUI(t, env.Config, "bob", ns.Name)

	// Repositories: the author registers the blueprints with the form, then clones the
	// blueprint from the Add package page.
	b.run(chromedp.Navigate(alice.URL()), chromedp.WaitVisible(`//td[normalize-space()="Ready"]`), chromedp.WaitVisible(`#register`))
	b.expectText(`main`, "deployments", "Sync now", "Unregister")
	b.run(chromedp.SendKeys(`#repo-url`, srv.URL()+"/blueprints.git"), chromedp.SendKeys(`#repo-secret`, "git-auth"),
		chromedp.Click(`//form[@id="register"]//button[@type="submit"]`), chromedp.WaitVisible(`//p[contains(., "blueprints registered: 1 package(s).")]`))
	repo := &kpov1.Repository{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "blueprints"}, repo)).To(Succeed())
	g.Expect(repo.Spec.Git.SecretRef.Name).To(Equal("git-auth"))
	g.Expect(repo.Spec.Deployment).To(BeFalse())
	b.run(chromedp.WaitVisible(`//a[normalize-space()="blueprints"]`))
	b.screenshot(shots, "repositories.png")
	b.run(chromedp.Click(`//button[@aria-label="Sync deployments now"]`), chromedp.WaitVisible(`//p[contains(., "deployments synced.")]`))
	b.run(chromedp.Click(`a[data-nav="packages"]`), chromedp.WaitVisible(`//a[normalize-space()="blueprints.my-app.v1"]`),
		chromedp.Click(`//a[normalize-space()="Add package"]`), chromedp.WaitVisible(`#tab-clone`))
	// The kind of addition is a tab list the keyboard moves through (arrow keys).
	b.run(chromedp.Focus(`#tab-init`), chromedp.KeyEvent(kb.ArrowRight), chromedp.WaitVisible(`#clone-from`))
	b.waitFor(`document.activeElement && document.activeElement.id === 'tab-clone' && document.activeElement.getAttribute('aria-selected') === 'true'`)
	b.eval(`(() => { document.getElementById('clone-from').value = 'blueprints.my-app.v1'; document.getElementById('add-repository').value = 'deployments'; return ''; })()`)
	b.run(chromedp.SendKeys(`#add-package`, "my-app"))
	b.screenshot(shots, "add-package.png")
	b.run(chromedp.Click(`//form[@id="add"]//button[@type="submit"]`), chromedp.WaitVisible(`//h1[normalize-space()="`+draft+`"]`),
		chromedp.WaitVisible(`//p[contains(., "Clone: `+draft+` is ready.")]`))
	cloned := getRevision(g, admin, ns.Name)
	g.Expect(cloned.Spec.Lifecycle).To(Equal(kpov1.LifecycleDraft))
	g.Eventually(func() string { return getRevision(g, admin, ns.Name).Status.UpstreamRevision }, 30*time.Second).Should(Equal("blueprints.my-app.v1"))
	before := getRevision(g, admin, ns.Name)
	g.Expect(gitRepo.ReadFile(before.Status.Commit, "my-app/configmap.yaml")).To(ContainSubstring("team: blue"))

	// The package list and its filters.
	b.run(chromedp.Click(`a[data-nav="packages"]`), chromedp.WaitVisible(`//a[normalize-space()="`+draft+`"]`))
	b.eval(`(() => { const s = document.getElementById('lifecycle'); s.value = 'Draft'; s.dispatchEvent(new Event('change')); return ''; })()`)
	b.waitFor(`location.hash.includes('lifecycle=Draft') && document.querySelector('main p.small').innerText.startsWith('1 of ')`)
	b.expectNoText(`main table`, "blueprints.my-app.v1")
	b.run(chromedp.Navigate(alice.URL()+"#/packages"), chromedp.WaitVisible(`//a[normalize-space()="`+draft+`"]`))
	b.screenshot(shots, "packages.png")

	// The revision page: files, conditions, and the author's buttons.
	b.run(chromedp.Click(`//a[normalize-space()="`+draft+`"]`), chromedp.WaitVisible(`//a[normalize-space()="Edit"]`))
	b.expectText(`main`, "Propose", "set-labels", "Ready")
	b.expectNoText(`.actions`, "Approve")

	// Edit with the live preview: the function's change shows before anything is saved.
	b.run(chromedp.Click(`//a[normalize-space()="Edit"]`), chromedp.WaitVisible(`#editor`),
		chromedp.WaitVisible(`//p[@id="preview-state" and contains(., "Rendered in")]`))
	b.eval(`(() => { const t = document.getElementById('editor');
		t.value = t.value.replace('team: blue', 'team: green'); t.dispatchEvent(new Event('input')); return t.value; })()`)
	b.run(chromedp.Click(`//nav[@aria-label="Files"]//button[normalize-space()="configmap.yaml"]`))
	b.waitFor(`document.getElementById('preview').textContent.includes('team: green')`)
	g.Expect(b.eval(`document.getElementById('editor').value`)).To(ContainSubstring("team: blue"), "the editor shows the file as saved, the preview as it will render")
	g.Expect(getRevision(g, admin, ns.Name).Status.Commit).To(Equal(before.Status.Commit), "nothing committed before the save")
	b.screenshot(shots, "editor.png")
	b.run(chromedp.Click(`#save`), chromedp.WaitVisible(`//p[contains(., "Saved and committed")]`))
	saved := getRevision(g, admin, ns.Name)
	g.Expect(saved.Status.Commit).NotTo(Equal(before.Status.Commit))
	g.Expect(gitRepo.ReadFile(saved.Status.Commit, "my-app/configmap.yaml")).To(ContainSubstring("team: green"))
	g.Expect(gitRepo.ReadFile(saved.Status.Commit, "my-app/Kptfile")).To(ContainSubstring("team: green"))
	b.screenshot(shots, "revision.png")

	// Propose.
	b.run(chromedp.WaitVisible(`//button[normalize-space()="Propose"]`), chromedp.Click(`//button[normalize-space()="Propose"]`),
		chromedp.WaitVisible(`//p[contains(., "is Proposed")]`))
	g.Expect(getRevision(g, admin, ns.Name).Status.Lifecycle).To(Equal(kpov1.LifecycleProposed))
	b.expectNoText(`.actions`, "Approve")

	// A forged approval from the author's page: the API server refuses, and says why.
	forged := b.eval(fmt.Sprintf(`fetch('/k8s/apis/kpo.dev/v1alpha1/namespaces/%s/packagerevisions/%s', {method: 'PATCH',
		headers: {'Content-Type': 'application/merge-patch+json'}, body: JSON.stringify({spec: {lifecycle: 'Published'}})})
		.then(r => r.json()).then(s => s.code + ' ' + s.message)`, ns.Name, draft))
	g.Expect(forged).To(HavePrefix("403 "))
	g.Expect(forged).To(ContainSubstring("approval"))

	// The viewer sees the revision and no button.
	b.run(chromedp.Navigate(carol.URL()), chromedp.WaitVisible(`//h1[normalize-space()="Repositories"]`),
		chromedp.Navigate(strings.Split(carol.URL(), "?")[0]+"#/revisions/"+draft), chromedp.WaitVisible(`//h2[normalize-space()="Conditions"]`))
	b.expectNoText(`.actions`, "Approve")
	b.expectNoText(`.actions`, "Reject")
	b.expectNoText(`main`, "Sync now")

	// The approver approves.
	b.run(chromedp.Navigate(bob.URL()), chromedp.WaitVisible(`//h1[normalize-space()="Repositories"]`),
		chromedp.Navigate(strings.Split(bob.URL(), "?")[0]+"#/revisions/"+draft), chromedp.WaitVisible(`//button[normalize-space()="Approve"]`))
	b.screenshot(shots, "approve.png")
	// Someone changes the revision meanwhile: the API server refuses the approval made on the
	// version the page shows (optimistic locking), and the page shows its message.
	changed := getRevision(g, admin, ns.Name)
	patch := client.MergeFrom(changed.DeepCopy())
	changed.Annotations = map[string]string{"example.com/reviewed": "true"}
	g.Expect(admin.Patch(ctx, changed, patch)).To(Succeed())
	b.run(chromedp.Click(`//button[normalize-space()="Approve"]`), chromedp.WaitVisible(`//p[@role="alert" and contains(., "Not approved")]`))
	b.expectText(`#status`, "the object has been modified")
	g.Expect(getRevision(g, admin, ns.Name).Spec.Lifecycle).To(Equal(kpov1.LifecycleProposed))
	// The page shows the revision again (a new, enabled button: the refused one stays disabled).
	b.run(chromedp.WaitEnabled(`//button[normalize-space()="Approve"]`), chromedp.Click(`//button[normalize-space()="Approve"]`),
		chromedp.WaitVisible(`//p[contains(., "is Published")]`))
	b.run(chromedp.WaitVisible(`//button[normalize-space()="Propose deletion"]`))
	b.expectNoText(`.actions`, "Approve")
	published := getRevision(g, admin, ns.Name)
	g.Expect(published.Status.Lifecycle).To(Equal(kpov1.LifecyclePublished))
	g.Expect(published.Status.PublishedBy).To(ContainSubstring("bob"))

	// A new draft of the package, and the diff from the published revision to it (whose
	// content the UI asks the manager for).
	kpoctlRun("rpkg", "copy", draft, "--workspace", "second")
	second := "deployments.my-app.second"
	secondDir := filepath.Join(dir, "second")
	kpoctlRun("rpkg", "pull", second, secondDir)
	cm, err := os.ReadFile(filepath.Join(secondDir, "configmap.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(filepath.Join(secondDir, "configmap.yaml"), bytes.Replace(cm, []byte("greeting: hello"), []byte("greeting: hi"), 1), 0o644)).To(Succeed())
	kpoctlRun("rpkg", "push", second, secondDir)
	b.run(chromedp.Navigate(alice.URL()), chromedp.WaitVisible(`//h1[normalize-space()="Repositories"]`),
		chromedp.Navigate(strings.Split(alice.URL(), "?")[0]+"#/revisions/"+second), chromedp.WaitVisible(`#compare-from`))
	b.expectText(`main`, "Other revisions of my-app", draft)
	b.eval(`(() => { document.getElementById('compare-from').value = '` + draft + `'; return ''; })()`)
	// Resource by resource first, then file by file.
	b.run(chromedp.Click(`//button[normalize-space()="Show diff"]`), chromedp.WaitVisible(`#resource-diff`))
	b.expectText(`#resource-diff`, "changed ConfigMap my-app in configmap.yaml", "-  greeting: hello", "+  greeting: hi")
	b.expectNoText(`#resource-diff`, "Kptfile")
	b.screenshot(shots, "diff.png")
	b.run(chromedp.Click(`//a[normalize-space()="By file"]`), chromedp.WaitVisible(`#diff`))
	b.expectText(`#diff`, "--- "+draft+"/configmap.yaml", "+++ "+second+"/configmap.yaml", "-  greeting: hello", "+  greeting: hi")

	// The diff against the upstream the package was cloned from: the author's team label.
	b.run(chromedp.Navigate(strings.Split(alice.URL(), "?")[0]+"#/revisions/"+draft), chromedp.WaitVisible(`#diff-upstream`),
		chromedp.Click(`#diff-upstream`), chromedp.WaitVisible(`#resource-diff`))
	b.expectText(`#resource-diff`, "changed ConfigMap my-app", "+    team: green", "changed Kptfile my-app (kpt.dev)")

	// Files added and removed in the editor: the function runs on the new file in the preview,
	// and the save commits both changes.
	base := strings.Split(alice.URL(), "?")[0]
	b.run(chromedp.Navigate(base+"#/revisions/"+second+"/edit"), chromedp.WaitVisible(`#new-file`),
		chromedp.WaitVisible(`//p[@id="preview-state" and contains(., "Rendered in")]`))
	// The ConfigMap's form: a key added there is written into the file and previewed.
	b.run(chromedp.WaitNotVisible(`#form-toggle`), chromedp.WaitNotVisible(`#remove-file`), // on the Kptfile: no form, no removal
		chromedp.Click(`//nav[@aria-label="Files"]//button[normalize-space()="configmap.yaml"]`), chromedp.WaitVisible(`#form-toggle`))
	b.run(chromedp.Click(`#form-toggle`), chromedp.WaitVisible(`#form-metadata-name`), chromedp.Click(`#form-data-add`))
	b.run(chromedp.SendKeys(`//input[@aria-label="Data key 2"]`, "color"), chromedp.SendKeys(`//input[@aria-label="Data value 2"]`, "blue"))
	b.waitFor(`document.getElementById('editor').value.includes('color: blue') && document.getElementById('editor').value.includes('greeting: hi')`)
	b.waitFor(`document.getElementById('preview').textContent.includes('color: blue')`)
	b.screenshot(shots, "form.png")
	b.run(chromedp.SendKeys(`#new-file`, "extra/service.yaml"), chromedp.Click(`//form[@class="add-file"]//button`),
		chromedp.WaitVisible(`//label[@for="editor" and normalize-space()="Editing extra/service.yaml"]`))
	b.eval(`(() => { const t = document.getElementById('editor');
		t.value = 'apiVersion: v1\nkind: Service\nmetadata:\n  name: my-app\n'; t.dispatchEvent(new Event('input')); return ''; })()`)
	b.waitFor(`document.getElementById('preview').textContent.includes('team: green')`)
	// A Service has a form too: its selector, written into the file.
	b.run(chromedp.Click(`#form-toggle`), chromedp.WaitVisible(`#form-metadata-name`), chromedp.Click(`#form-spec-selector-add`),
		chromedp.SendKeys(`//input[@aria-label="Selector key 1"]`, "app"), chromedp.SendKeys(`//input[@aria-label="Selector value 1"]`, "my-app"))
	b.waitFor(`document.getElementById('editor').value.includes('selector:\n    app: my-app')`)
	b.run(chromedp.Click(`//nav[@aria-label="Files"]//button[normalize-space()="README.md"]`), chromedp.Click(`#remove-file`))
	b.expectNoText(`nav[aria-label="Files"]`, "README.md")
	b.run(chromedp.Click(`#save`), chromedp.WaitVisible(`//p[contains(., "Saved and committed")]`))
	edited := &kpov1.PackageRevision{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: second}, edited)).To(Succeed())
	g.Expect(gitRepo.ReadFile(edited.Status.Commit, "my-app/extra/service.yaml")).To(ContainSubstring("team: green"))
	g.Expect(gitRepo.ReadFile(edited.Status.Commit, "my-app/configmap.yaml")).To(ContainSubstring("color: blue"))
	_, err = gitRepo.ReadFile(edited.Status.Commit, "my-app/README.md")
	g.Expect(err).To(HaveOccurred(), "README.md removed")

	// Upstream v2 changes the greeting the second revision changed too: once second is
	// published, it is behind, and its upgrade has a conflict.
	kpoctlRun("rpkg", "propose", second)
	kpoctlRun("rpkg", "approve", second)
	v2, err := blueprints.Commit("main", gitserver.Change{Message: "my-app v2", Files: map[string]string{
		"my-app/configmap.yaml": strings.Replace(configMapYAML, "greeting: hello", "greeting: good day", 1)}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(blueprints.Tag("my-app/v2", v2)).To(Succeed())
	kpoctlRun("repo", "sync", "blueprints")
	g.Eventually(func() string {
		pr := &kpov1.PackageRevision{}
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: second}, pr)).To(Succeed())
		return pr.Status.LatestUpstreamRevision
	}, 30*time.Second).Should(Equal("blueprints.my-app.v2"))

	// The revision page of second offers the upgrade; its history is a picture.
	b.run(chromedp.Navigate(base), chromedp.WaitVisible(`//h1[normalize-space()="Repositories"]`),
		chromedp.Navigate(base+"#/revisions/"+second), chromedp.WaitVisible(`#upgrade`))
	b.expectText(`#upgrade`, "Upgrade to blueprints.my-app.v2")
	b.expectText(`main`, "behind: blueprints.my-app.v2", "Roll back to v1")
	g.Expect(b.eval(`document.querySelector('svg.timeline').getAttribute('aria-label')`)).To(Equal("Revisions of my-app: v1 Published, v2 Published (this one), main Published"))
	b.screenshot(shots, "upgrade.png")
	b.scrollTo(`#timeline-h`)
	b.screenshot(shots, "history.png")

	// The blueprint's downstream view: second is behind; the bulk upgrade, keeping conflicts,
	// makes its upgrade draft.
	upgraded := "deployments.my-app.upgrade-v2-to-upstream-v2"
	b.run(chromedp.Navigate(base+"#/revisions/blueprints.my-app.v1"), chromedp.WaitVisible(`#downstreams`))
	b.expectText(`#downstreams`, second, "behind: blueprints.my-app.v2", "Upgrade 1 behind")
	g.Expect(b.eval(`document.querySelector('svg.tree-picture').getAttribute('aria-label')`)).To(Equal("blueprints/my-app has 1 downstream package(s), 1 behind"))
	b.scrollTo(`#downstreams`)
	b.screenshot(shots, "downstreams.png")
	b.run(chromedp.Click(`#bulk-allow-conflicts`), chromedp.Click(`#upgrade-all`),
		chromedp.WaitVisible(`//p[contains(., "Upgrades: `+second+`: `+upgraded+` ready.")]`))

	// The conflict, shown and resolved by taking upstream's value.
	b.run(chromedp.Navigate(base+"#/revisions/"+upgraded), chromedp.WaitVisible(`#conflicts`))
	b.expectText(`#conflicts`, "Merge conflicts (1 of 1 unresolved)", "ConfigMap my-app", "hi", "good day")
	b.scrollTo(`#conflicts`)
	b.screenshot(shots, "conflicts.png")
	b.run(chromedp.Click(`//button[normalize-space()="Take upstream"]`), chromedp.WaitVisible(`//p[contains(., "Resolved 1 conflict(s).")]`))
	g.Eventually(func() string {
		pr := &kpov1.PackageRevision{}
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: upgraded}, pr)).To(Succeed())
		if len(pr.Status.Conflicts) != 1 {
			return fmt.Sprintf("%d conflicts", len(pr.Status.Conflicts))
		}
		return pr.Status.Conflicts[0].Resolution
	}, 30*time.Second).Should(Equal(kpov1.ConflictUpstream))
	resolved := &kpov1.PackageRevision{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: upgraded}, resolved)).To(Succeed())
	g.Expect(gitRepo.ReadFile(resolved.Status.Commit, "my-app/configmap.yaml")).To(ContainSubstring("greeting: good day"))

	// Rollback of second (v2, the latest) to a copy of v1.
	b.run(chromedp.Navigate(base), chromedp.WaitVisible(`//h1[normalize-space()="Repositories"]`),
		chromedp.Navigate(base+"#/revisions/"+second), chromedp.WaitVisible(`//button[normalize-space()="Roll back to v1"]`),
		chromedp.Click(`//button[normalize-space()="Roll back to v1"]`), chromedp.WaitVisible(`//h1[normalize-space()="deployments.my-app.rollback-v2-to-v1"]`))
	rolledBack := &kpov1.PackageRevision{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "deployments.my-app.rollback-v2-to-v1"}, rolledBack)).To(Succeed())
	g.Expect(gitRepo.ReadFile(rolledBack.Status.Commit, "my-app/configmap.yaml")).To(ContainSubstring("greeting: hello"))

	// Variants: read-only status screens.
	g.Expect(admin.Create(ctx, &kpov1.PackageVariant{ObjectMeta: metav1.ObjectMeta{Name: "my-app-west", Namespace: ns.Name}, Spec: kpov1.PackageVariantSpec{
		Upstream:   kpov1.UpstreamPackage{Repo: "blueprints", Package: "my-app", Revision: "v1"},
		Downstream: kpov1.DownstreamPackage{Repo: "deployments", Package: "my-app-west"}}})).To(Succeed())
	g.Expect(admin.Create(ctx, &kpov1.PackageVariantSet{ObjectMeta: metav1.ObjectMeta{Name: "my-app-fleet", Namespace: ns.Name}, Spec: kpov1.PackageVariantSetSpec{
		Upstream: kpov1.UpstreamPackage{Repo: "blueprints", Package: "my-app"},
		Targets:  []kpov1.Target{{Repositories: []kpov1.RepositoryTarget{{Name: "deployments", PackageNames: []string{"my-app-east"}}}}}}})).To(Succeed())
	g.Eventually(func() bool {
		pv := &kpov1.PackageVariant{}
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "my-app-west"}, pv)).To(Succeed())
		return len(pv.Status.DownstreamTargets) > 0 && meta.IsStatusConditionTrue(pv.Status.Conditions, kpov1.ReadyCondition)
	}, 60*time.Second).Should(BeTrue())
	b.run(chromedp.Click(`a[data-nav="variants"]`), chromedp.WaitVisible(`//a[normalize-space()="my-app-west"]`), chromedp.WaitVisible(`//a[normalize-space()="my-app-fleet"]`))
	b.expectText(`main`, "blueprints/my-app@v1", "deployments/my-app-west", "deployments.my-app-west.")
	b.screenshot(shots, "variants.png")
	b.run(chromedp.Click(`//a[normalize-space()="my-app-west"]`), chromedp.WaitVisible(`//h2[normalize-space()="Conditions"]`))
	b.expectText(`main table`, "Ready", "True")
	b.run(chromedp.Navigate(base+"#/variants/pvs/my-app-fleet"), chromedp.WaitVisible(`//h1[normalize-space()="my-app-fleet"]`))
	b.expectText(`main`, "PackageVariantSet", "blueprints/my-app (latest)", "Variants")

	// A new package (init), deleted again; the delete asks for a confirmation first.
	b.run(chromedp.Navigate(base+"#/add"), chromedp.WaitVisible(`#init-description`))
	b.eval(`(() => { document.getElementById('add-repository').value = 'deployments'; return ''; })()`)
	b.run(chromedp.SendKeys(`#add-package`, "scratch"), chromedp.SendKeys(`#init-description`, "A scratch package"),
		chromedp.Click(`//form[@id="add"]//button[@type="submit"]`), chromedp.WaitVisible(`//h1[normalize-space()="deployments.scratch.first"]`))
	b.run(chromedp.Click(`//div[@class="actions"]/button[normalize-space()="Delete"]`),
		chromedp.WaitVisible(`//button[normalize-space()="Confirm: delete deployments.scratch.first"]`))
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "deployments.scratch.first"}, &kpov1.PackageRevision{})).To(Succeed(), "nothing deleted before the confirmation")
	b.run(chromedp.Click(`//button[normalize-space()="Confirm: delete deployments.scratch.first"]`),
		chromedp.WaitVisible(`//p[contains(., "deployments.scratch.first deleted.")]`))
	g.Expect(apierrors.IsNotFound(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "deployments.scratch.first"}, &kpov1.PackageRevision{}))).To(BeTrue())

	// The viewer sees no register form, no unregister and no add button.
	b.run(chromedp.Navigate(carol.URL()), chromedp.WaitVisible(`//a[normalize-space()="blueprints"]`))
	b.expectNoText(`main`, "Register a repository")
	b.expectNoText(`main`, "Unregister")
	b.run(chromedp.Navigate(strings.Split(carol.URL(), "?")[0]+"#/packages"), chromedp.WaitVisible(`//a[normalize-space()="`+second+`"]`))
	b.expectNoText(`main`, "Add package")

	// The author unregisters the blueprints; the Secret it named stays.
	b.run(chromedp.Navigate(alice.URL()), chromedp.WaitVisible(`//button[@aria-label="Unregister blueprints"]`),
		chromedp.Click(`//button[@aria-label="Unregister blueprints"]`), chromedp.WaitVisible(`//button[normalize-space()="Confirm: unregister blueprints"]`),
		chromedp.Click(`//button[normalize-space()="Confirm: unregister blueprints"]`), chromedp.WaitVisible(`//p[contains(., "blueprints unregistered.")]`))
	g.Expect(apierrors.IsNotFound(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "blueprints"}, &kpov1.Repository{}))).To(BeTrue())
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "git-auth"}, &corev1.Secret{})).To(Succeed())
}

// flatten lists the (user, role) pairs of roles.
func flatten(roles map[string][]string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for user, rs := range roles {
			for _, r := range rs {
				if !yield(user, r) {
					return
				}
			}
		}
	}
}

// chromiumPath finds Debian's chromium; `make test` and .ci/run install it when missing.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: the browser test needs it; install it with `apt-get install -y chromium` (make test does when it runs as root)")
	return ""
}

func getRevision(g Gomega, c client.Client, ns string) *kpov1.PackageRevision {
	pr := &kpov1.PackageRevision{}
	g.Expect(c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: draft}, pr)).To(Succeed())
	return pr
}

// kpoctlAs returns a runner of kpoctl commands as the cluster admin in ns.
func kpoctlAs(t *testing.T, cfg *rest.Config, ns, dir string) func(args ...string) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: ns}
	kc.CurrentContext = "envtest"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := kpoctl.Run(context.Background(), append([]string{"--kubeconfig", path}, args...), kpoctl.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		if code != 0 {
			t.Fatalf("kpoctl %s: %s%s", strings.Join(args, " "), out.String(), errOut.String())
		}
	}
}

// startUI serves the UI for user (the admin's config impersonating user, as kubectl --as).
func startUI(t *testing.T, admin *rest.Config, user, ns string) *ui.Server {
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ui.New(ui.Options{Config: cfg, Namespace: ns}, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// browser is one headless Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, path string) *browser {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 860),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	// The first run starts the browser, and must have no timeout: it would stop the browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return b
}

// run runs steps, each call bounded so a missing element fails the test with its selector
// and the page's text.
func (b *browser) run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.check(chromedp.Do(b.bounded(), steps...))
}

func (b *browser) bounded() context.Context {
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	b.t.Cleanup(cancel)
	return ctx
}

func (b *browser) check(err error) {
	b.t.Helper()
	if err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.t.Fatalf("browser: %v\npage text:\n%s", err, body)
	}
}

// eval returns the value of a JavaScript expression (a promise's value, when it is one).
func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.bounded(), chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	b.check(err)
	return v
}

// waitFor waits until a JavaScript expression is true.
func (b *browser) waitFor(js string) {
	b.t.Helper()
	_, err := chromedp.Run(b.bounded(), chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second)))
	b.check(err)
}

func (b *browser) expectText(sel string, want ...string) {
	b.t.Helper()
	got := b.eval(fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.innerText).join('\n')`, sel))
	for _, w := range want {
		if !strings.Contains(got, w) {
			b.t.Fatalf("%s does not show %q:\n%s", sel, w, got)
		}
	}
}

func (b *browser) expectNoText(sel, unwanted string) {
	b.t.Helper()
	got := b.eval(fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.innerText).join('\n')`, sel))
	if strings.Contains(got, unwanted) {
		b.t.Fatalf("%s shows %q:\n%s", sel, unwanted, got)
	}
}

// scrollTo scrolls the element sel names to the top of the viewport (for a screenshot).
func (b *browser) scrollTo(sel string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`(() => { document.querySelector(%q).scrollIntoView(); return ''; })()`, sel))
}

// screenshot writes the viewport to dir/name when dir is set (make ui-screenshots).
func (b *browser) screenshot(dir, name string) {
	b.t.Helper()
	if dir == "" {
		return
	}
	b.run(chromedp.Sleep(300 * time.Millisecond))
	png, err := chromedp.Run(b.bounded(), chromedp.CaptureScreenshot())
	b.check(err)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestBrowser_inCluster_usersSignInWithTheirOwnToken_andActWithItAlone serves the UI as the
// in-cluster Deployment does (kpoctl ui --in-cluster), with a config that holds the cluster
// admin's credentials: a user without a token gets the sign-in page, a token the API server
// refuses signs nobody in, and a viewer's service-account token shows what a viewer may do,
// not what the admin could.
func TestBrowser_inCluster_usersSignInWithTheirOwnToken_andActWithItAlone(t *testing.T) {
	g := NewWithT(t)
	browser := chromiumPath(t)
	env, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := client.New(env.Config, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(testenv.InstallConfig(ctx, env.Config)).To(Succeed(), "kpo's user roles")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}}
	g.Expect(admin.Create(ctx, ns)).To(Succeed())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "dave", Namespace: ns.Name}}
	g.Expect(admin.Create(ctx, sa)).To(Succeed())
	g.Expect(admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "dave-viewer", Namespace: ns.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kpo-viewer"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns.Name}},
	})).To(Succeed())
	g.Expect(admin.Create(ctx, &kpov1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: ns.Name},
		Spec: kpov1.RepositorySpec{Type: kpov1.GitRepositoryType, Git: kpov1.GitRepository{Repo: "https://git.example.com/catalog.git"}}})).To(Succeed())
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}
	g.Expect(admin.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	g.Expect(tr.Status.Token).NotTo(BeEmpty())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	public := "http://" + l.Addr().String()
	srv, err := ui.New(ui.Options{Config: env.Config, Namespace: ns.Name, UserTokens: true, PublicURL: public}, l.Addr().String())
	g.Expect(err).NotTo(HaveOccurred())
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(sctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	b := newBrowser(t, browser)
	b.run(chromedp.Navigate(public+"/"), chromedp.WaitVisible(`#token`))
	// The API server refuses a made-up token: nobody is signed in.
	b.run(chromedp.SendKeys(`#token`, "not-a-token"), chromedp.Click(`//form[@id="signin"]//button`),
		chromedp.WaitVisible(`//p[@role="alert" and contains(., "does not accept this token")]`))
	b.eval(`(() => { document.getElementById('token').value = ''; return ''; })()`)
	b.run(chromedp.SendKeys(`#token`, tr.Status.Token), chromedp.Click(`//form[@id="signin"]//button`),
		chromedp.WaitVisible(`//a[normalize-space()="catalog"]`))
	b.expectText(`#who`, "system:serviceaccount:team-b:dave")
	// A viewer: no register form, no sync, no unregister, though the server's config is the admin's.
	b.expectNoText(`main`, "Register a repository")
	b.expectNoText(`main`, "Sync now")
	g.Expect(b.eval(`document.cookie`)).To(BeEmpty(), "the token cookie is HttpOnly")
	b.run(chromedp.Click(`//button[normalize-space()="Sign out"]`), chromedp.WaitVisible(`#token`))
}

func ptr[T any](v T) *T { return &v }
