package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// patchStatus is how every writer of kpo's status fields writes them. It reads the freshest
// copy of the object (key, into obj), lets setOwned set the fields and conditions its caller
// owns (the API types say which writer owns which), and patches the status subresource only
// when that changed something — compared with semantic equality, so a time read back from JSON
// equals the same instant built from a Git commit — with optimistic locking. A conflict reads
// the object again and reapplies setOwned: one writer never undoes another's fields, and a
// stale cache never writes stale conditions. A deleted object is nothing to patch.
func patchStatus[T client.Object](ctx context.Context, c client.Client, key client.ObjectKey, obj T, setOwned func(T)) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if err := c.Get(ctx, key, obj); err != nil {
			return err
		}
		before := obj.DeepCopyObject().(T)
		setOwned(obj)
		if equality.Semantic.DeepEqual(before, obj) {
			return nil
		}
		return c.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
	if err = client.IgnoreNotFound(err); err != nil {
		return fmt.Errorf("patching status: %w", err)
	}
	return nil
}

// ensureFinalizer is the first step of every reconciler: it adds finalizer to obj unless it is
// there already.
func ensureFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	controllerutil.AddFinalizer(obj, finalizer)
	if err := c.Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("adding finalizer %s: %w", finalizer, err)
	}
	return nil
}

// releaseFinalizer is the last step of every deletion: it removes finalizer from obj, once the
// cleanup it guards is done.
func releaseFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if !controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	controllerutil.RemoveFinalizer(obj, finalizer)
	if err := c.Patch(ctx, obj, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing finalizer %s: %w", finalizer, err)
	}
	return nil
}

// dropManagedFields empties obj's managed fields (the API server's record of which client
// wrote which field), which the manager's create and first status write of a published
// revision leave behind: a list of every field it set, more than half of the object as the API
// server keeps it in memory and serves it to `kubectl get`. A published revision is the
// manager's alone and never written again but for a label, so the record tells nobody
// anything. The patch is a metadata write that changes no field and is made once per revision,
// with optimistic locking: if anyone wrote in between, their record stays and so does ours.
func dropManagedFields(ctx context.Context, c client.Client, obj client.Object) error {
	if len(obj.GetManagedFields()) == 0 {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"managedFields":[{}]}}`, obj.GetResourceVersion())
	if err := c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil && !apierrors.IsConflict(err) {
		return client.IgnoreNotFound(err)
	}
	return nil
}
