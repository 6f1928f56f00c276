package admission_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/testenv"
)

// The users the tests act as, by impersonation of the admin config.
const (
	aliceName = "alice" // bound to kpo-author in each test namespace
	bobName   = "bob"   // bound to kpo-approver in each test namespace
	carolName = "carol" // bound to nothing
	// gcName is the garbage collector's identity in a kube-controller-manager that uses
	// service-account credentials.
	gcName = "system:serviceaccount:kube-system:generic-garbage-collector"
	// testManagerRole gives the manager what these tests need of it, and deliberately not
	// packagerevisions/approval: its publishing must pass by exemption, not by permission.
	testManagerRole = "kpo-test-manager"
)

var (
	scheme = runtime.NewScheme()
	// admin is system:masters: authorized for everything, but subject to every policy.
	admin   client.Client
	manager client.Client
	alice   client.Client
	bob     client.Client
	carol   client.Client
	gc      client.Client
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(kpov1.AddToScheme(scheme))

	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	ctx := context.Background()
	if err := testenv.InstallConfig(ctx, env.Config); err != nil {
		fmt.Fprintln(os.Stderr, "installing config:", err)
		return 1
	}
	if admin, err = client.New(env.Config, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, u := range []struct {
		c    *client.Client
		name string
	}{{&manager, kpov1.ManagerUsername}, {&alice, aliceName}, {&bob, bobName}, {&carol, carolName}, {&gc, gcName}} {
		if *u.c, err = impersonate(env.Config, u.name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := installManagerRole(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "granting the manager its test role:", err)
		return 1
	}
	if err := waitForPolicies(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func impersonate(cfg *rest.Config, user string) (client.Client, error) {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	return client.New(c, client.Options{Scheme: scheme})
}

func installManagerRole(ctx context.Context) error {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: testManagerRole},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{kpov1.GroupVersion.Group}, Resources: []string{"repositories", "packagerevisions", "packagerevisions/status", "packagedrafts", "packagedrafts/status"}, Verbs: []string{"*"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: testManagerRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: testManagerRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: kpov1.ManagerUsername}},
	}
	if err := admin.Create(ctx, role); err != nil {
		return err
	}
	return admin.Create(ctx, binding)
}

// waitForPolicies returns once every policy of config/policies is enforced: policies take a
// moment after creation to reach the admission plugins. Each probe is a dry-run request that a
// particular policy refuses (or, for the mutating one, changes); the probes leave no trace.
func waitForPolicies(ctx context.Context) error {
	ns := "kpo-policy-probe"
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if err := bindUsers(ctx, ns); err != nil {
		return err
	}
	proposed := revision(ns, "probe.pkg.proposed", kpov1.LifecycleProposed)
	gated := revision(ns, "probe.pkg.gated", kpov1.LifecycleProposed, "ProbeGate")
	published := revision(ns, "probe.pkg.published", kpov1.LifecyclePublished)
	content := contentConfigMap(ns, published.Name, kpov1.LifecyclePublished)
	for _, obj := range []client.Object{proposed, gated, published, content} {
		if err := manager.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating probe %s: %w", obj.GetName(), err)
		}
	}
	dry := client.DryRunAll
	refusedWith := func(err error, text string) error {
		if err == nil || !strings.Contains(err.Error(), text) {
			return fmt.Errorf("not refused with %q yet (got %v)", text, err)
		}
		return nil
	}
	probes := map[string]func() error{
		"kpo-approve-guard": func() error {
			return refusedWith(alice.Patch(ctx, proposed.DeepCopy(), mergePatch(`{"spec":{"lifecycle":"Published"}}`), dry),
				"needs permission to update packagerevisions/approval")
		},
		"kpo-readiness-gates": func() error {
			return refusedWith(bob.Patch(ctx, gated.DeepCopy(), mergePatch(`{"spec":{"lifecycle":"Published"}}`), dry), "ProbeGate")
		},
		"kpo-approved-by-stamp": func() error {
			obj := proposed.DeepCopy()
			if err := bob.Patch(ctx, obj, mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":"mallory"}},"spec":{"lifecycle":"Published"}}`), dry); err != nil {
				return err
			}
			if got := obj.Annotations[kpov1.ApprovedByAnnotation]; got != bobName {
				return fmt.Errorf("approved-by is %q, not stamped yet", got)
			}
			return nil
		},
		"kpo-approved-by-guard": func() error {
			return refusedWith(alice.Patch(ctx, proposed.DeepCopy(), mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":"alice"}}}`), dry),
				"cannot be set by hand")
		},
		"kpo-declarative-approval": func() error {
			return refusedWith(alice.Create(ctx, packageDraft(ns, "probe", kpov1.LifecyclePublished), dry), "needs permission to update packagerevisions/approval")
		},
		"kpo-manager-creates-revisions": func() error {
			return refusedWith(admin.Create(ctx, revision(ns, "probe.pkg.new", kpov1.LifecycleDraft), dry), "users start drafts with")
		},
		"kpo-deletion-guard": func() error {
			return refusedWith(alice.Delete(ctx, published.DeepCopy(), dry), "propose deletion first")
		},
		"kpo-read-only-content": func() error {
			return refusedWith(alice.Patch(ctx, content.DeepCopy(), mergePatch(`{"data":{"x":"y"}}`), dry), "only Draft content is writable")
		},
		"kpo-manager-owned-labels": func() error {
			return refusedWith(alice.Patch(ctx, proposed.DeepCopy(), mergePatch(`{"metadata":{"labels":{"kpo.dev/latest-revision":"true"}}}`), dry),
				"set by the kpo manager")
		},
	}
	// One deadline for all probes; each passes once, then is not asked again.
	return testenv.PollUntil(ctx, 200*time.Millisecond, 90*time.Second, func(context.Context) (error, error) {
		for name, probe := range probes {
			if err := probe(); err != nil {
				return fmt.Errorf("policy %s is not enforced: %w", name, err), nil
			}
			delete(probes, name)
		}
		return nil, nil
	})
}

// bindUsers binds alice to kpo-author and bob to kpo-approver in ns, and waits until the
// authorizer knows.
func bindUsers(ctx context.Context, ns string) error {
	for user, role := range map[string]string{aliceName: "kpo-author", bobName: "kpo-approver"} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user + "-" + role, Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		}
		if err := admin.Create(ctx, rb); err != nil {
			return err
		}
	}
	checks := []authorizationv1.SubjectAccessReviewSpec{
		{User: aliceName, ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Group: kpov1.GroupVersion.Group, Resource: "packagerevisions", Verb: "update"}},
		{User: bobName, ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Group: kpov1.GroupVersion.Group, Resource: "packagerevisions", Subresource: "approval", Verb: "update"}},
	}
	// One deadline for all checks; each passes once, then is not asked again.
	return testenv.PollUntil(ctx, 100*time.Millisecond, 30*time.Second, func(context.Context) (error, error) {
		for len(checks) > 0 {
			spec := checks[0]
			sar := &authorizationv1.SubjectAccessReview{Spec: spec}
			if err := admin.Create(ctx, sar); err != nil {
				return nil, err
			}
			if !sar.Status.Allowed {
				return fmt.Errorf("RBAC does not allow %s to %s %s/%s in %s", spec.User, spec.ResourceAttributes.Verb,
					spec.ResourceAttributes.Resource, spec.ResourceAttributes.Subresource, ns), nil
			}
			checks = checks[1:]
		}
		return nil, nil
	})
}

// newNamespace creates a namespace with alice and bob bound in it, for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kpo-admission-"}}
	if err := admin.Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), ns) })
	if err := bindUsers(ctx, ns.Name); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// revision is a PackageRevision as the manager would create it from Git.
func revision(ns, name string, lifecycle kpov1.Lifecycle, gates ...string) *kpov1.PackageRevision {
	parts := strings.SplitN(name, ".", 3)
	rpkg := &kpov1.PackageRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ns,
			Labels:    map[string]string{kpov1.RepositoryLabel: parts[0], kpov1.PackageLabel: parts[1]},
		},
		Spec: kpov1.PackageRevisionSpec{Repository: parts[0], PackageName: parts[1], WorkspaceName: parts[2], Lifecycle: lifecycle},
	}
	for _, g := range gates {
		rpkg.Spec.ReadinessGates = append(rpkg.Spec.ReadinessGates, kpov1.ReadinessGate{ConditionType: g})
	}
	return rpkg
}

// contentConfigMap is the content ConfigMap of the PackageRevision name, as the manager writes it.
func contentConfigMap(ns, name string, lifecycle kpov1.Lifecycle) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ns,
			Labels: map[string]string{
				kpov1.ContentLabel:    "true",
				kpov1.LifecycleLabel:  string(lifecycle),
				kpov1.RepositoryLabel: "blueprints",
			},
			Annotations: map[string]string{kpov1.ContentCommitAnnotation: "0123456789abcdef"},
		},
		Data: map[string]string{"Kptfile": "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: nginx\n"},
	}
}

func packageDraft(ns, name string, lifecycle kpov1.Lifecycle) *kpov1.PackageDraft {
	return &kpov1.PackageDraft{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kpov1.PackageDraftSpec{
			Repository:    "blueprints",
			PackageName:   "nginx",
			WorkspaceName: name,
			Source:        kpov1.PackageDraftSource{Init: &kpov1.InitSource{Description: "nginx"}},
			Lifecycle:     lifecycle,
		},
	}
}

func mergePatch(p string) client.Patch { return client.RawPatch(types.MergePatchType, []byte(p)) }

func lifecyclePatch(l kpov1.Lifecycle) client.Patch {
	return mergePatch(fmt.Sprintf(`{"spec":{"lifecycle":%q}}`, l))
}

// create creates obj as the manager and fails the test if it cannot.
func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := manager.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s as the manager: %v", obj.GetName(), err)
	}
}

// setCondition sets a status condition as the manager, through the status subresource.
func setCondition(t *testing.T, rpkg *kpov1.PackageRevision, condType string, status metav1.ConditionStatus) {
	t.Helper()
	ctx := context.Background()
	if err := manager.Get(ctx, client.ObjectKeyFromObject(rpkg), rpkg); err != nil {
		t.Fatal(err)
	}
	meta.SetStatusCondition(&rpkg.Status.Conditions, metav1.Condition{Type: condType, Status: status, Reason: "Mirrored", Message: "from the Kptfile"})
	if err := manager.Status().Update(ctx, rpkg); err != nil {
		t.Fatalf("updating status as the manager: %v", err)
	}
}

// expectRefused asserts that err is the API server refusing a request (403 Forbidden, or 422
// Invalid) with a message that holds every one of texts.
func expectRefused(g Gomega, err error, texts ...string) {
	g.ExpectWithOffset(1, err).To(HaveOccurred())
	g.ExpectWithOffset(1, apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "not a 403 or 422: %v", err)
	for _, text := range texts {
		g.ExpectWithOffset(1, err.Error()).To(ContainSubstring(text))
	}
}

func TestEnvtestAuthorizesWithRBAC(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	err := carol.List(context.Background(), &kpov1.PackageRevisionList{}, client.InNamespace(ns))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a user without a binding was not refused: %v", err)
	g.Expect(alice.List(context.Background(), &kpov1.PackageRevisionList{}, client.InNamespace(ns))).To(Succeed())
}

func TestUsersCannotCreatePackageRevisions(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()

	// RBAC already keeps authors and approvers out (kpo-author and kpo-approver lack create) ...
	for _, user := range []client.Client{alice, bob} {
		err := user.Create(ctx, revision(ns, "blueprints.nginx.v1", kpov1.LifecycleDraft))
		expectRefused(g, err, `cannot create resource "packagerevisions"`)
	}
	// ... and the policy keeps out everyone else, cluster administrators included.
	err := admin.Create(ctx, revision(ns, "blueprints.nginx.v1", kpov1.LifecycleDraft))
	expectRefused(g, err, "PackageRevisions are created by the kpo manager", "users start drafts with a PackageDraft")
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue())
	g.Expect(manager.Create(ctx, revision(ns, "blueprints.nginx.v1", kpov1.LifecycleDraft))).To(Succeed())
}

func TestAuthorsProposeAndOnlyApproversPublish(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	rpkg := revision(ns, "blueprints.nginx.v1", kpov1.LifecycleDraft)
	create(t, rpkg)

	g.Expect(alice.Patch(ctx, rpkg, lifecyclePatch(kpov1.LifecycleProposed))).To(Succeed())
	g.Expect(rpkg.Spec.Lifecycle).To(Equal(kpov1.LifecycleProposed))

	err := alice.Patch(ctx, rpkg.DeepCopy(), lifecyclePatch(kpov1.LifecyclePublished))
	expectRefused(g, err, "publishing blueprints.nginx.v1 needs permission to update packagerevisions/approval",
		"ClusterRole kpo-approver", "alice does not have")
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue())

	// bob may publish, and the record of who did cannot be forged by the client.
	g.Expect(bob.Patch(ctx, rpkg, mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":"mallory"}},"spec":{"lifecycle":"Published"}}`))).To(Succeed())
	g.Expect(manager.Get(ctx, client.ObjectKeyFromObject(rpkg), rpkg)).To(Succeed())
	g.Expect(rpkg.Spec.Lifecycle).To(Equal(kpov1.LifecyclePublished))
	g.Expect(rpkg.Annotations).To(HaveKeyWithValue(kpov1.ApprovedByAnnotation, bobName))
}

func TestApprovalWithoutClientAnnotationIsStamped(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	rpkg := revision(ns, "blueprints.nginx.v1", kpov1.LifecycleProposed)
	create(t, rpkg)

	// A full update (kubectl edit, replace), not a patch.
	g.Expect(bob.Get(ctx, client.ObjectKeyFromObject(rpkg), rpkg)).To(Succeed())
	rpkg.Spec.Lifecycle = kpov1.LifecyclePublished
	g.Expect(bob.Update(ctx, rpkg)).To(Succeed())
	g.Expect(rpkg.Annotations).To(HaveKeyWithValue(kpov1.ApprovedByAnnotation, bobName))
}

func TestDraftCannotBePublishedWithoutBeingProposed(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rpkg := revision(ns, "blueprints.nginx.v1", kpov1.LifecycleDraft)
	create(t, rpkg)

	err := bob.Patch(context.Background(), rpkg, lifecyclePatch(kpov1.LifecyclePublished))
	expectRefused(g, err, "illegal lifecycle transition", "Draft→Proposed")
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue())
}

func TestReadinessGatesMustBeTrueToPublish(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	rpkg := revision(ns, "blueprints.nginx.v1", kpov1.LifecycleProposed, "Validated", "Tested")
	create(t, rpkg)
	setCondition(t, rpkg, "Validated", metav1.ConditionTrue)
	setCondition(t, rpkg, "Tested", metav1.ConditionFalse)

	err := bob.Patch(ctx, rpkg.DeepCopy(), lifecyclePatch(kpov1.LifecyclePublished))
	expectRefused(g, err, "blueprints.nginx.v1 cannot be published: readiness gate(s) Tested not True in status.conditions",
		"remove them from spec.readinessGates")
	g.Expect(err.Error()).NotTo(ContainSubstring("Validated"))

	// The gates hold for the manager too: it publishes declaratively approved drafts.
	err = manager.Patch(ctx, rpkg.DeepCopy(), lifecyclePatch(kpov1.LifecyclePublished))
	expectRefused(g, err, "readiness gate(s) Tested not True")

	// Status is a subresource: a client cannot satisfy a gate by sending the condition along.
	obj := rpkg.DeepCopy()
	g.Expect(bob.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{Type: "Tested", Status: metav1.ConditionTrue, Reason: "Forged", Message: "trust me"})
	obj.Spec.Lifecycle = kpov1.LifecyclePublished
	expectRefused(g, bob.Update(ctx, obj), "readiness gate(s) Tested not True")

	setCondition(t, rpkg, "Tested", metav1.ConditionTrue)
	g.Expect(bob.Patch(ctx, rpkg, lifecyclePatch(kpov1.LifecyclePublished))).To(Succeed())
	g.Expect(rpkg.Spec.Lifecycle).To(Equal(kpov1.LifecyclePublished))
}

func TestPublishedRevisionsAreDeletedOnlyThroughADeletionProposal(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	rpkg := revision(ns, "blueprints.nginx.v1", kpov1.LifecyclePublished)
	create(t, rpkg)

	for _, user := range []client.Client{alice, bob, admin} {
		err := user.Delete(ctx, rpkg.DeepCopy())
		expectRefused(g, err, "blueprints.nginx.v1 is Published and cannot be deleted",
			"propose deletion first: set spec.lifecycle: DeletionProposed")
	}

	g.Expect(alice.Patch(ctx, rpkg, lifecyclePatch(kpov1.LifecycleDeletionProposed))).To(Succeed())
	err := alice.Delete(ctx, rpkg.DeepCopy())
	expectRefused(g, err, "deleting blueprints.nginx.v1 (DeletionProposed) needs permission to update packagerevisions/approval",
		"ClusterRole kpo-approver", "set spec.lifecycle: Published to withdraw")
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue())

	g.Expect(bob.Delete(ctx, rpkg.DeepCopy())).To(Succeed())
}

func TestDraftAndProposedRevisionsCanBeDeletedByAuthors(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	draft := revision(ns, "blueprints.nginx.v1", kpov1.LifecycleDraft)
	proposed := revision(ns, "blueprints.nginx.v2", kpov1.LifecycleProposed)
	create(t, draft)
	create(t, proposed)

	g.Expect(alice.Delete(ctx, draft)).To(Succeed())
	g.Expect(alice.Delete(ctx, proposed)).To(Succeed())
}

func TestOnlyDraftContentIsWritable(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	draft := contentConfigMap(ns, "blueprints.nginx.v2", kpov1.LifecycleDraft)
	create(t, draft)

	g.Expect(alice.Patch(ctx, draft, mergePatch(`{"data":{"deployment.yaml":"kind: Deployment\n"}}`))).To(Succeed())
	g.Expect(draft.Data).To(HaveKey("deployment.yaml"))
	g.Expect(alice.Patch(ctx, draft, mergePatch(`{"metadata":{"labels":{"team":"web"}}}`))).To(Succeed())

	for _, lifecycle := range []kpov1.Lifecycle{kpov1.LifecycleProposed, kpov1.LifecyclePublished, kpov1.LifecycleDeletionProposed} {
		cm := contentConfigMap(ns, "blueprints.nginx."+strings.ToLower(string(lifecycle)), lifecycle)
		create(t, cm)
		err := alice.Patch(ctx, cm.DeepCopy(), mergePatch(`{"data":{"deployment.yaml":"kind: Deployment\n"}}`))
		expectRefused(g, err, "holds the content of a "+string(lifecycle)+" package revision and cannot be edited",
			"only Draft content is writable", "start a new draft with a PackageDraft")
		// Deleting is refused as well, even to a user whom RBAC lets delete ConfigMaps.
		expectRefused(g, admin.Delete(ctx, cm.DeepCopy()), "cannot be deleted")
	}
}

func TestContentMetadataManagedByKpoCannotChange(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	draft := contentConfigMap(ns, "blueprints.nginx.v2", kpov1.LifecycleDraft)
	create(t, draft)

	for patch, what := range map[string]string{
		`{"metadata":{"labels":{"kpo.dev/lifecycle":"Published"}}}`:          "label kpo.dev/lifecycle",
		`{"metadata":{"labels":{"kpo.dev/content":null}}}`:                   "label kpo.dev/content",
		`{"metadata":{"labels":{"kpo.dev/latest-revision":"true"}}}`:         "label kpo.dev/latest-revision",
		`{"metadata":{"labels":{"kpo.dev/shard":"b"}}}`:                      "label kpo.dev/shard",
		`{"metadata":{"annotations":{"kpo.dev/commit":"fedcba9876543210"}}}`: "annotation kpo.dev/commit",
	} {
		err := alice.Patch(ctx, draft.DeepCopy(), mergePatch(patch))
		expectRefused(g, err, "ConfigMap blueprints.nginx.v2: "+what, "are managed by kpo and cannot be set, changed or removed by users")
	}
}

func TestUsersCannotCreateContentConfigMaps(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()

	err := admin.Create(ctx, contentConfigMap(ns, "blueprints.nginx.v1", kpov1.LifecycleDraft))
	expectRefused(g, err, "ConfigMap blueprints.nginx.v1 is labelled kpo.dev/content=true",
		"created by the kpo manager", "drop the kpo.dev/content label for an ordinary ConfigMap")

	// Nor turn an ordinary ConfigMap into one.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns}}
	g.Expect(admin.Create(ctx, cm)).To(Succeed())
	err = alice.Patch(ctx, cm, mergePatch(`{"metadata":{"labels":{"kpo.dev/content":"true","kpo.dev/lifecycle":"Draft"}}}`))
	expectRefused(g, err, "label kpo.dev/content", "label kpo.dev/lifecycle", "are managed by kpo")
}

func TestOrdinaryConfigMapsAreUnaffected(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()

	// kpo.dev/* labels without kpo.dev/content=true do not make a ConfigMap content.
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns, Labels: map[string]string{kpov1.LifecycleLabel: "Published", kpov1.ContentLabel: "false"}},
		Data:       map[string]string{"a": "1"},
	}
	g.Expect(admin.Create(ctx, cm)).To(Succeed())
	g.Expect(alice.Patch(ctx, cm, mergePatch(`{"data":{"a":"2"},"metadata":{"labels":{"kpo.dev/lifecycle":"Draft"}}}`))).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue("a", "2"))
	g.Expect(admin.Delete(ctx, cm)).To(Succeed())
}

func TestUsersCannotSetManagerOwnedLabels(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	rpkg := revision(ns, "blueprints.nginx.v1", kpov1.LifecyclePublished)
	create(t, rpkg)

	err := alice.Patch(ctx, rpkg.DeepCopy(), mergePatch(`{"metadata":{"labels":{"kpo.dev/latest-revision":"true"}}}`))
	expectRefused(g, err, "label(s) kpo.dev/latest-revision of blueprints.nginx.v1 are set by the kpo manager",
		"cannot be set, changed or removed by users")
	err = bob.Patch(ctx, rpkg.DeepCopy(), mergePatch(`{"metadata":{"labels":{"kpo.dev/repository":"other","kpo.dev/package":null}}}`))
	expectRefused(g, err, "kpo.dev/repository, kpo.dev/package")
	// The shard key follows the Repository: a revision cannot be moved to another manager alone.
	err = alice.Patch(ctx, rpkg.DeepCopy(), mergePatch(`{"metadata":{"labels":{"kpo.dev/shard":"b"}}}`))
	expectRefused(g, err, "label(s) kpo.dev/shard of blueprints.nginx.v1 are set by the kpo manager")
	g.Expect(manager.Patch(ctx, rpkg.DeepCopy(), mergePatch(`{"metadata":{"labels":{"kpo.dev/shard":"a"}}}`))).To(Succeed())
	for _, patch := range []string{`{"metadata":{"labels":{"kpo.dev/shard":"b"}}}`, `{"metadata":{"labels":{"kpo.dev/shard":null}}}`} {
		expectRefused(g, bob.Patch(ctx, rpkg.DeepCopy(), mergePatch(patch)), "label(s) kpo.dev/shard of blueprints.nginx.v1")
	}

	// Labels of their own are fine.
	g.Expect(alice.Patch(ctx, rpkg, mergePatch(`{"metadata":{"labels":{"team":"web"}}}`))).To(Succeed())
	g.Expect(rpkg.Labels).To(HaveKeyWithValue("team", "web"))
}

func TestApprovedByCannotBeSetByHand(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	draft := revision(ns, "blueprints.nginx.v2", kpov1.LifecycleDraft)
	create(t, draft)
	published := revision(ns, "blueprints.nginx.v1", kpov1.LifecyclePublished)
	published.Annotations = map[string]string{kpov1.ApprovedByAnnotation: bobName}
	create(t, published)

	err := alice.Patch(ctx, draft.DeepCopy(), mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":"alice"}}}`))
	expectRefused(g, err, "the kpo.dev/approved-by annotation of blueprints.nginx.v2 cannot be set by hand",
		"remove it from your manifest")
	// Not even an approver, outside of publishing.
	err = bob.Patch(ctx, draft.DeepCopy(), mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":"bob"}}}`))
	expectRefused(g, err, "cannot be set by hand")
	err = bob.Patch(ctx, published.DeepCopy(), mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":"carol"}}}`))
	expectRefused(g, err, "cannot be changed by hand", "keep the value 'bob'")
	err = alice.Patch(ctx, published.DeepCopy(), mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":null}}}`))
	expectRefused(g, err, "cannot be removed by hand")
	// Withdrawing a deletion proposal is no approval either.
	g.Expect(alice.Patch(ctx, published, lifecyclePatch(kpov1.LifecycleDeletionProposed))).To(Succeed())
	err = bob.Patch(ctx, published.DeepCopy(), mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":"carol"}},"spec":{"lifecycle":"Published"}}`))
	expectRefused(g, err, "cannot be changed by hand")

	err = alice.Create(ctx, withAnnotation(packageDraft(ns, "v3", kpov1.LifecycleDraft), kpov1.ApprovedByAnnotation, aliceName))
	expectRefused(g, err, "the kpo.dev/approved-by annotation of v3 cannot be set by hand")
	err = bob.Create(ctx, withAnnotation(packageDraft(ns, "v3", kpov1.LifecycleProposed), kpov1.ApprovedByAnnotation, bobName))
	expectRefused(g, err, "cannot be set by hand")
}

func withAnnotation[T client.Object](obj T, key, value string) T {
	obj.SetAnnotations(map[string]string{key: value})
	return obj
}

func TestPublishingAPackageDraftNeedsTheApprovalPermission(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()

	err := alice.Create(ctx, packageDraft(ns, "v1", kpov1.LifecyclePublished))
	expectRefused(g, err, "PackageDraft v1 sets spec.lifecycle: Published",
		"needs permission to update packagerevisions/approval for all PackageRevisions in namespace "+ns,
		"ClusterRole kpo-approver", "use spec.lifecycle: Proposed and ask an approver to publish")
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue())

	draft := packageDraft(ns, "v2", kpov1.LifecycleDraft)
	g.Expect(alice.Create(ctx, draft)).To(Succeed())
	g.Expect(alice.Patch(ctx, draft, lifecyclePatch(kpov1.LifecycleProposed))).To(Succeed())
	expectRefused(g, alice.Patch(ctx, draft.DeepCopy(), lifecyclePatch(kpov1.LifecyclePublished)), "PackageDraft v2 sets spec.lifecycle: Published")

	g.Expect(bob.Patch(ctx, draft, mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":"mallory"}},"spec":{"lifecycle":"Published"}}`))).To(Succeed())
	g.Expect(draft.Annotations).To(HaveKeyWithValue(kpov1.ApprovedByAnnotation, bobName))
	// Once published, the draft's other updates are nobody's approval and keep the stamp.
	g.Expect(alice.Patch(ctx, draft, mergePatch(`{"metadata":{"labels":{"team":"web"}}}`))).To(Succeed())
	g.Expect(draft.Annotations).To(HaveKeyWithValue(kpov1.ApprovedByAnnotation, bobName))

	created := withAnnotation(packageDraft(ns, "v3", kpov1.LifecyclePublished), kpov1.ApprovedByAnnotation, "mallory")
	g.Expect(bob.Create(ctx, created)).To(Succeed())
	g.Expect(created.Annotations).To(HaveKeyWithValue(kpov1.ApprovedByAnnotation, bobName))
}

func TestTheManagerIsExemptExceptFromReadinessGates(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()

	// It creates revisions and content, and publishes without the approval permission,
	// recording the approver it copied from the PackageDraft rather than itself.
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               kpov1.ManagerUsername,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Group: kpov1.GroupVersion.Group, Resource: "packagerevisions", Subresource: "approval", Verb: "update"},
	}}
	g.Expect(admin.Create(ctx, sar)).To(Succeed())
	g.Expect(sar.Status.Allowed).To(BeFalse(), "the manager must pass by exemption, not by permission")
	rpkg := revision(ns, "blueprints.nginx.v1", kpov1.LifecycleProposed)
	g.Expect(manager.Create(ctx, rpkg)).To(Succeed())
	cm := contentConfigMap(ns, rpkg.Name, kpov1.LifecycleProposed)
	g.Expect(manager.Create(ctx, cm)).To(Succeed())
	g.Expect(manager.Patch(ctx, rpkg, mergePatch(`{"metadata":{"annotations":{"kpo.dev/approved-by":"bob"}},"spec":{"lifecycle":"Published"}}`))).To(Succeed())
	g.Expect(rpkg.Annotations).To(HaveKeyWithValue(kpov1.ApprovedByAnnotation, bobName))
	g.Expect(manager.Patch(ctx, rpkg, mergePatch(`{"metadata":{"labels":{"kpo.dev/latest-revision":"true"}}}`))).To(Succeed())
	g.Expect(manager.Patch(ctx, cm, mergePatch(`{"metadata":{"labels":{"kpo.dev/lifecycle":"Published"},"annotations":{"kpo.dev/commit":"fedcba"}},"data":{"a":"b"}}`))).To(Succeed())

	draft := packageDraft(ns, "v2", kpov1.LifecyclePublished)
	g.Expect(manager.Create(ctx, draft)).To(Succeed())
	g.Expect(draft.Annotations).NotTo(HaveKey(kpov1.ApprovedByAnnotation))

	// And removes what Git no longer holds, published or not.
	g.Expect(manager.Delete(ctx, cm)).To(Succeed())
	g.Expect(manager.Delete(ctx, rpkg)).To(Succeed())

	gated := revision(ns, "blueprints.nginx.v3", kpov1.LifecycleProposed, "Validated")
	create(t, gated)
	expectRefused(g, manager.Patch(ctx, gated, lifecyclePatch(kpov1.LifecyclePublished)), "readiness gate(s) Validated not True")
}

func TestDeletionGuardsStepAsideForGarbageCollection(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	rpkg := revision(ns, "blueprints.nginx.v1", kpov1.LifecyclePublished)
	create(t, rpkg)
	cm := contentConfigMap(ns, rpkg.Name, kpov1.LifecyclePublished)
	create(t, cm)

	// The garbage collector removes content whose PackageRevision is gone (owner reference),
	// with the bootstrap RBAC role of its service account.
	g.Expect(gc.Delete(ctx, cm)).To(Succeed())
	g.Expect(gc.Delete(ctx, rpkg)).To(Succeed())
}

func TestDeletionGuardsStepAsideInANamespaceBeingDeleted(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ctx := context.Background()
	rpkg := revision(ns, "blueprints.nginx.v1", kpov1.LifecyclePublished)
	create(t, rpkg)
	cm := contentConfigMap(ns, rpkg.Name, kpov1.LifecyclePublished)
	create(t, cm)
	expectRefused(g, bob.Delete(ctx, rpkg.DeepCopy()), "propose deletion first")

	// envtest runs no namespace controller: the namespace stays Terminating, and the deletions
	// it would make are made here, as a user whom RBAC allows.
	g.Expect(admin.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Eventually(func() error { return bob.Delete(ctx, rpkg.DeepCopy()) }).WithTimeout(30 * time.Second).Should(Succeed())
	g.Eventually(func() error { return admin.Delete(ctx, cm.DeepCopy()) }).WithTimeout(30 * time.Second).Should(Succeed())
}
