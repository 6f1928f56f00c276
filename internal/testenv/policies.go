package testenv

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// ManagerConfig is cfg acting as the manager's identity, the one the admission policies exempt.
func ManagerConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: kpov1.ManagerUsername, Groups: []string{"system:masters"}}
	return c
}

// WaitForPolicies returns once the admission policies are enforced: they take a moment after
// creation to reach the admission plugins (and the mutating one the CRD's schema). It probes
// with dry-run requests as the admin of cfg: creating a PackageRevision must be refused, and
// approving one must be stamped with the approver.
func WaitForPolicies(ctx context.Context, cfg *rest.Config) error {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(kpov1.AddToScheme(scheme))
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	manager, err := client.New(ManagerConfig(cfg), client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kpo-policy-probe-"}}
	if err := admin.Create(ctx, ns); err != nil {
		return err
	}
	defer func() { _ = admin.Delete(context.Background(), ns) }()
	probe := &kpov1.PackageRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "probe.pkg.ws", Namespace: ns.Name},
		Spec: kpov1.PackageRevisionSpec{Repository: "probe", PackageName: "pkg", WorkspaceName: "ws",
			Lifecycle: kpov1.LifecycleProposed},
	}
	if err := manager.Create(ctx, probe); err != nil {
		return fmt.Errorf("creating the policy probe: %w", err)
	}
	defer func() { _ = manager.Delete(context.Background(), probe) }()

	enforced := func() error {
		other := probe.DeepCopy()
		other.ResourceVersion, other.Name = "", "probe.pkg.other"
		if err := admin.Create(ctx, other, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "PackageDraft") {
			return fmt.Errorf("creating a PackageRevision is not refused yet (%v)", err)
		}
		approved := probe.DeepCopy()
		patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"lifecycle":"Published"}}`))
		if err := admin.Patch(ctx, approved, patch, client.DryRunAll); err != nil {
			return fmt.Errorf("approving is not admitted yet: %w", err)
		}
		if approved.Annotations[kpov1.ApprovedByAnnotation] == "" {
			return fmt.Errorf("approvals are not stamped yet")
		}
		return nil
	}
	if err := PollUntil(ctx, 200*time.Millisecond, 90*time.Second, func(context.Context) (error, error) {
		return enforced(), nil
	}); err != nil {
		return fmt.Errorf("admission policies not enforced: %w", err)
	}
	return nil
}

// PollUntil calls check every interval, the first time at once, until it reports neither a
// reason to wait nor an error. check returns notYet, why the wait goes on, or err, which ends
// it at once. When timeout (or ctx) ends the wait first, PollUntil returns the last notYet, so
// the error says what was still missing rather than that time ran out.
func PollUntil(ctx context.Context, interval, timeout time.Duration, check func(context.Context) (notYet, err error)) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		notYet, err := check(ctx)
		if notYet != nil {
			last = notYet
		}
		return err == nil && notYet == nil, err
	})
	if err != nil && last != nil && wait.Interrupted(err) {
		return last
	}
	return err
}
