package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/kptfile"
)

// revisionSync makes the PackageRevisions of one Repository equal to a discovered set.
type revisionSync struct {
	client.Client
	repo *kpov1.Repository
	src  *git.Repo
}

// apply creates missing PackageRevisions, updates changed ones and deletes vanished ones,
// with their content ConfigMaps, and moves the latest-revision label.
func (s *revisionSync) apply(ctx context.Context, revs []discovery.Revision) error {
	existing := &kpov1.PackageRevisionList{}
	if err := s.List(ctx, existing, client.InNamespace(s.repo.Namespace),
		client.MatchingLabels{kpov1.RepositoryLabel: s.repo.Name}); err != nil {
		return fmt.Errorf("listing package revisions: %w", err)
	}
	current := make(map[string]*kpov1.PackageRevision, len(existing.Items))
	for i := range existing.Items {
		current[existing.Items[i].Name] = &existing.Items[i]
	}

	latest := discovery.LatestRevisions(revs, s.name)
	var errs []error
	for _, rev := range revs {
		name := s.name(rev)
		if err := s.applyRevision(ctx, rev, current[name], latest[rev.Package] == name); err != nil {
			errs = append(errs, fmt.Errorf("package revision %s: %w", name, err))
		}
		delete(current, name)
	}
	for _, pr := range current {
		if err := s.deleteRevision(ctx, pr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *revisionSync) name(rev discovery.Revision) string {
	return discovery.RevisionName(s.repo.Name, rev.Package, rev.Workspace)
}

// applyRevision brings one PackageRevision, its labels, spec.lifecycle, content and status
// in line with rev. A lifecycle the API server refuses to move to (Git changed behind kpo's
// back, e.g. a draft was published by another tool) recreates the object.
func (s *revisionSync) applyRevision(ctx context.Context, rev discovery.Revision, pr *kpov1.PackageRevision, latest bool) error {
	if pr == nil {
		pr = &kpov1.PackageRevision{ObjectMeta: metav1.ObjectMeta{Name: s.name(rev), Namespace: s.repo.Namespace}}
	}
	before := pr.DeepCopy()
	gitMoved := pr.Status.Ref != rev.Ref
	s.setMeta(pr, rev, latest)
	pr.Spec.Repository = s.repo.Name
	pr.Spec.PackageName = rev.Package
	pr.Spec.WorkspaceName = rev.Workspace
	if pr.Spec.Lifecycle == "" || gitMoved {
		pr.Spec.Lifecycle = rev.Lifecycle
	}

	switch {
	case pr.ResourceVersion == "":
		if err := s.Create(ctx, pr); err != nil {
			return fmt.Errorf("creating: %w", err)
		}
	case !reflect.DeepEqual(before.ObjectMeta, pr.ObjectMeta) || before.Spec.Lifecycle != pr.Spec.Lifecycle:
		err := s.Patch(ctx, pr, client.MergeFrom(before))
		if apierrors.IsInvalid(err) {
			log.FromContext(ctx).Info("recreating package revision whose lifecycle changed in Git", "name", pr.Name, "lifecycle", rev.Lifecycle)
			return s.recreate(ctx, pr, rev, latest)
		}
		if err != nil {
			return fmt.Errorf("updating: %w", err)
		}
	}
	return s.syncContentAndStatus(ctx, rev, pr)
}

func (s *revisionSync) recreate(ctx context.Context, pr *kpov1.PackageRevision, rev discovery.Revision, latest bool) error {
	if err := s.deleteRevision(ctx, pr); err != nil {
		return err
	}
	return s.applyRevision(ctx, rev, nil, latest)
}

// setMeta sets the labels and owner reference the manager owns.
func (s *revisionSync) setMeta(pr *kpov1.PackageRevision, rev discovery.Revision, latest bool) {
	labels := maps.Clone(pr.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[kpov1.RepositoryLabel] = s.repo.Name
	labels[kpov1.PackageLabel] = discovery.PackageLabelValue(rev.Package)
	if latest {
		labels[kpov1.LatestRevisionLabel] = "true"
	} else {
		delete(labels, kpov1.LatestRevisionLabel)
	}
	pr.Labels = labels
	_ = controllerutil.SetOwnerReference(s.repo, pr, s.Scheme())
}

// syncContentAndStatus rewrites the content ConfigMap when the package's Git tree changed
// and patches the status. A package whose files do not fit a ConfigMap gets Ready=False
// with reason PackageTooLarge and no ConfigMap.
func (s *revisionSync) syncContentAndStatus(ctx context.Context, rev discovery.Revision, pr *kpov1.PackageRevision) error {
	tree, err := s.src.TreeHash(rev.Commit, rev.Path)
	if err != nil {
		return fmt.Errorf("reading tree of %s at %s: %w", rev.Path, shortHash(rev.Commit), err)
	}
	before := pr.DeepCopy()
	st := &pr.Status
	st.Revision = rev.Revision
	st.Ref = rev.Ref
	if rev.Revision > 0 {
		publishedAt := metav1.NewTime(rev.PublishedAt)
		st.PublishedAt = &publishedAt
		if st.PublishedBy == "" {
			st.PublishedBy = rev.PublishedBy
		}
	}

	if st.Tree != tree || st.ResourcesRef == nil {
		st.Commit = rev.Commit
		st.Tree = tree
		if err := s.writeContent(ctx, rev, pr); err != nil {
			var tooLarge *contentError
			if !errors.As(err, &tooLarge) {
				return err
			}
			st.ResourcesRef = nil
			setRevisionReady(pr, metav1.ConditionFalse, tooLarge.reason, tooLarge.Error())
			return s.patchStatus(ctx, before, pr)
		}
	}
	setRevisionReady(pr, metav1.ConditionTrue, kpov1.UpToDateReason,
		fmt.Sprintf("%s at commit %s", rev.Ref, shortHash(st.Commit)))
	return s.patchStatus(ctx, before, pr)
}

func (s *revisionSync) patchStatus(ctx context.Context, before, pr *kpov1.PackageRevision) error {
	if reflect.DeepEqual(before.Status, pr.Status) {
		return nil
	}
	if err := s.Status().Patch(ctx, pr, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("patching status: %w", err)
	}
	return nil
}

// contentError is a package whose files cannot be stored in its ConfigMap.
type contentError struct {
	reason string
	err    error
}

func (e *contentError) Error() string { return e.err.Error() }
func (e *contentError) Unwrap() error { return e.err }

// writeContent reads the package's files from Git into the content ConfigMap (named like the
// PackageRevision, owned by it) and copies upstream and upstreamLock from its Kptfile.
func (s *revisionSync) writeContent(ctx context.Context, rev discovery.Revision, pr *kpov1.PackageRevision) error {
	files, err := s.src.ReadTree(rev.Commit, rev.Path)
	if err != nil {
		return fmt.Errorf("reading files: %w", err)
	}
	pr.Status.Upstream, pr.Status.UpstreamLock = upstreamOf(files)

	data, binary, err := content.ToConfigMap(files)
	if err != nil {
		reason := kpov1.InvalidContentReason
		if errors.Is(err, content.ErrTooLarge) {
			reason = kpov1.PackageTooLargeReason
		}
		return &contentError{reason: reason, err: err}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: pr.Name, Namespace: pr.Namespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, s.Client, cm, func() error {
		if cm.Labels == nil {
			cm.Labels = map[string]string{}
		}
		cm.Labels[kpov1.RepositoryLabel] = s.repo.Name
		cm.Labels[kpov1.PackageLabel] = discovery.PackageLabelValue(rev.Package)
		cm.Labels[kpov1.ContentLabel] = "true"
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[kpov1.ContentCommitAnnotation] = rev.Commit
		cm.Data, cm.BinaryData = data, binary
		return controllerutil.SetControllerReference(pr, cm, s.Scheme())
	}); err != nil {
		return fmt.Errorf("writing content config map: %w", err)
	}
	pr.Status.ResourcesRef = &corev1.LocalObjectReference{Name: cm.Name}
	return nil
}

// upstreamOf returns the Kptfile's upstream and upstreamLock; a package without a valid
// Kptfile has neither.
func upstreamOf(files map[string][]byte) (*kpov1.Upstream, *kpov1.Upstream) {
	data, ok := files[kptfile.FileName]
	if !ok {
		return nil, nil
	}
	kf, err := kptfile.Decode(data)
	if err != nil {
		return nil, nil
	}
	var up, lock *kpov1.Upstream
	if u := kf.Upstream; u != nil && u.Git != nil {
		up = &kpov1.Upstream{Type: string(u.Type), Git: &kpov1.UpstreamGit{Repo: u.Git.Repo, Directory: u.Git.Directory, Ref: u.Git.Ref}}
	}
	if l := kf.UpstreamLock; l != nil && l.Git != nil {
		lock = &kpov1.Upstream{Type: string(l.Type), Git: &kpov1.UpstreamGit{Repo: l.Git.Repo, Directory: l.Git.Directory, Ref: l.Git.Ref, Commit: l.Git.Commit}}
	}
	return up, lock
}

// deleteRevision deletes a PackageRevision whose ref vanished from Git, and its ConfigMap.
func (s *revisionSync) deleteRevision(ctx context.Context, pr *kpov1.PackageRevision) error {
	if err := s.Delete(ctx, pr); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting package revision %s: %w", pr.Name, err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: pr.Name, Namespace: pr.Namespace}}
	if err := s.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting config map %s: %w", pr.Name, err)
	}
	return nil
}
