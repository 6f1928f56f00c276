package kpoctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/lifecycle"
)

// readContent returns a package revision and the files of its content ConfigMap.
func (o *globalOptions) readContent(ctx context.Context, name string) (*kpov1.PackageRevision, *corev1.ConfigMap, map[string][]byte, error) {
	c, ns, pr, err := o.packageRevision(ctx, name)
	if err != nil {
		return nil, nil, nil, err
	}
	if ce := pr.Status.ContentError; ce != nil {
		return nil, nil, nil, fmt.Errorf("packagerevision %s has no content: %s: %s", name, ce.Reason, ce.Message)
	}
	if pr.Status.ResourcesRef == nil && lifecycle.PublishedContent(pr) {
		if pr, err = o.requestContent(ctx, c, pr); err != nil {
			return nil, nil, nil, err
		}
	}
	cmName := name
	if pr.Status.ResourcesRef != nil && pr.Status.ResourcesRef.Name != "" {
		cmName = pr.Status.ResourcesRef.Name
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: cmName}, cm); err != nil {
		return nil, nil, nil, fmt.Errorf("content configmap %s of packagerevision %s: %w", cmName, name, err)
	}
	files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("content configmap %s of packagerevision %s: %w", cmName, name, err)
	}
	return pr, cm, files, nil
}

// requestContent asks the manager for the content ConfigMap of a published revision and
// waits until its status names it.
func (o *globalOptions) requestContent(ctx context.Context, c client.Client, pr *kpov1.PackageRevision) (*kpov1.PackageRevision, error) {
	name := pr.Name
	if err := lifecycle.RequestContent(ctx, c, pr); err != nil {
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("packagerevision %s is published: its content is in a ConfigMap only on request, "+
				"and requesting it (annotation %s) needs patch on packagerevisions (role kpo-author): %w",
				name, kpov1.ContentRequestedAnnotation, err)
		}
		return nil, apiError(kindPackageRevision, name, err)
	}
	err := o.waitFor(ctx, fmt.Sprintf("the content of packagerevision %s", name), func(ctx context.Context) error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(pr), pr); err != nil {
			return apiError(kindPackageRevision, name, err)
		}
		loaded, err := lifecycle.ContentLoaded(pr)
		if blocked := (*lifecycle.BlockedError)(nil); errors.As(err, &blocked) {
			return &conditionError{Kind: kindPackageRevision, Name: name, Condition: blocked.Condition}
		}
		if err != nil {
			return err
		}
		if !loaded {
			return errNotYet("status.resourcesRef is not set yet")
		}
		return nil
	})
	return pr, err
}

func newRpkgPullCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "pull PACKAGE_REVISION [DIR]",
		Aliases: []string{"source", "read"},
		Short:   "Write the files of a package revision to a directory, or a ResourceList to stdout",
		Long: `Write every file of a package revision into DIR (created when missing; files there are
overwritten). Without DIR, print its YAML resources as a ResourceList (config.kubernetes.io/v1),
each annotated with its file path, for kpt fn eval and other KRM functions.`,
		Example: `  kpoctl rpkg pull deployments.my-app.first ./my-app
  kpoctl rpkg pull deployments.my-app.first | kpt fn eval - --image set-namespace:v0.4 -- namespace=prod`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%s expects PACKAGE_REVISION and an optional DIR, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			_, _, files, err := o.readContent(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if len(args) == 2 {
				return writeDir(args[1], files)
			}
			return writeResourceList(o.streams.Out, files)
		},
	}
}

func writeDir(dir string, files map[string][]byte) error {
	for _, p := range slices.Sorted(maps.Keys(files)) {
		dest := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil { //nolint:gosec // G301: directories of the package the user checks out, like git's (umask applies)
			return err
		}
		if err := os.WriteFile(dest, files[p], 0o644); err != nil { //nolint:gosec // G306: package files the user checks out, readable like any file git writes (umask applies)
			return err
		}
	}
	return nil
}

// isYAMLFile says whether a package file holds resources: *.yaml, *.yml and the Kptfile.
func isYAMLFile(p string) bool {
	base := path.Base(p)
	return base == "Kptfile" || strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")
}

// writeResourceList prints the resources of the YAML files as a ResourceList, each with its
// path and index annotations, as kpt does.
func writeResourceList(w io.Writer, files map[string][]byte) error {
	var nodes []*yaml.RNode
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if !isYAMLFile(p) {
			continue
		}
		read, err := (&kio.ByteReader{
			Reader:         bytes.NewReader(files[p]),
			SetAnnotations: map[string]string{kioutil.PathAnnotation: p, kioutil.LegacyPathAnnotation: p}, //nolint:staticcheck // kpt reads both
		}).Read()
		if err != nil {
			return fmt.Errorf("file %s: %w", p, err)
		}
		nodes = append(nodes, read...)
	}
	return kio.ByteWriter{
		Writer: w, KeepReaderAnnotations: true,
		WrappingAPIVersion: "config.kubernetes.io/v1", WrappingKind: "ResourceList",
	}.Write(nodes)
}

// readResourceList turns a ResourceList (or a plain stream of resources) into files by their
// path annotations, in index order; a resource without a path goes to <kind>_<name>.yaml.
func readResourceList(r io.Reader) (map[string][]byte, error) {
	nodes, err := (&kio.ByteReader{Reader: r, OmitReaderAnnotations: true}).Read()
	if err != nil {
		return nil, fmt.Errorf("reading a ResourceList from stdin: %w", err)
	}
	type item struct {
		index int
		node  *yaml.RNode
	}
	byPath := map[string][]item{}
	for i, n := range nodes {
		p, idx, _ := kioutil.GetFileAnnotations(n)
		if p == "" {
			p = strings.ToLower(n.GetKind()+"_"+n.GetName()) + ".yaml"
		}
		index := i
		if v, err := strconv.Atoi(idx); err == nil {
			index = v
		}
		for _, a := range []string{kioutil.PathAnnotation, kioutil.IndexAnnotation, kioutil.IdAnnotation,
			kioutil.LegacyPathAnnotation, kioutil.LegacyIndexAnnotation, kioutil.LegacyIdAnnotation, kioutil.SeqIndentAnnotation} { //nolint:staticcheck // kpt writes both
			if err := n.PipeE(yaml.ClearAnnotation(a)); err != nil {
				return nil, err
			}
		}
		if err := yaml.ClearEmptyAnnotations(n); err != nil {
			return nil, err
		}
		byPath[p] = append(byPath[p], item{index, n})
	}
	files := map[string][]byte{}
	for p, items := range byPath {
		slices.SortStableFunc(items, func(a, b item) int { return a.index - b.index })
		var docs []string
		for _, it := range items {
			s, err := it.node.String()
			if err != nil {
				return nil, fmt.Errorf("resource for %s: %w", p, err)
			}
			docs = append(docs, s)
		}
		files[p] = []byte(strings.Join(docs, "---\n"))
	}
	return files, nil
}

// readDir returns the files below dir (the .git directory excluded) by slash path; anything
// but files and directories is refused.
func readDir(dir string) (map[string][]byte, error) {
	files, err := packageFiles(dir, func(p string) error {
		return fmt.Errorf("%s is not a regular file: a package holds only files and directories", p)
	})
	if err != nil {
		return nil, fmt.Errorf("reading package directory %s: %w", dir, err)
	}
	return files, nil
}

// packageFiles reads every regular file under dir, keyed by slash-separated relative path,
// leaving .git directories out; irregular says what to do with anything else (a symbolic
// link, a device): nil skips it.
func packageFiles(dir string, irregular func(path string) error) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == ".git":
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return irregular(p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p) //nolint:gosec // G304: a file below the package directory the user named, found by walking it
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	return files, err
}

func newRpkgPushCommand(o *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "push PACKAGE_REVISION [DIR]",
		Aliases: []string{"sink", "write"},
		Short:   "Replace the content of a draft with the files of a directory, or a ResourceList from stdin",
		Long: `Replace the content of a Draft package revision with the files of DIR, and wait until kpo
has rendered, validated and committed it to the draft branch. Without DIR, a ResourceList is read
from stdin: its resources replace the package's YAML files (by their path annotations); other
files (README.md, …) are kept. Invalid content is refused with the manager's message, and the
draft keeps its last good commit.`,
		Example: `  kpoctl rpkg pull deployments.my-app.first ./my-app
  vi ./my-app/namespace.yaml
  kpoctl rpkg push deployments.my-app.first ./my-app

  kpoctl rpkg pull deployments.my-app.first | kpt fn eval - --image set-labels:v0.2 -- app=my-app | kpoctl rpkg push deployments.my-app.first`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%s expects PACKAGE_REVISION and an optional DIR, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.push(cmd.Context(), args)
		},
	}
}

func (o *globalOptions) push(ctx context.Context, args []string) error {
	name := args[0]
	pr, cm, current, err := o.readContent(ctx, name)
	if err != nil {
		return err
	}
	if pr.Status.Lifecycle != kpov1.LifecycleDraft || pr.Spec.Lifecycle != kpov1.LifecycleDraft {
		return fmt.Errorf("packagerevision %s is %s: only a Draft's content can be pushed; start a new draft with `kpoctl rpkg copy %s --workspace NAME`", name, pr.Spec.Lifecycle, name)
	}
	var files map[string][]byte
	if len(args) == 2 {
		if files, err = readDir(args[1]); err != nil {
			return err
		}
	} else {
		if files, err = readResourceList(o.streams.In); err != nil {
			return err
		}
		for p, b := range current {
			if !isYAMLFile(p) {
				files[p] = b
			}
		}
	}
	data, binaryData, err := content.ToConfigMap(files)
	if err != nil {
		return fmt.Errorf("cannot push to %s: %w", name, err)
	}
	c, _, err := o.client()
	if err != nil {
		return err
	}
	before := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition)
	cm.Data, cm.BinaryData = data, binaryData
	if err := c.Update(ctx, cm); err != nil {
		return apiError("configmap", cm.Name, err)
	}
	if !o.wait {
		return o.printChange(nil, name, "pushed")
	}
	start := time.Now()
	err = o.waitFor(ctx, "packagerevision "+name+" to commit the pushed content", func(ctx context.Context) error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(pr), pr); err != nil {
			return err
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
			return err
		}
		// A Ready condition equal to the one before the push may not describe the pushed
		// content yet: trust it only after a grace period.
		ready := meta.FindStatusCondition(pr.Status.Conditions, kpov1.ReadyCondition)
		stale := ready != nil && before != nil && sameCondition(*before, *ready) && time.Since(start) < 3*time.Second
		if ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason != kpov1.ProgressingReason && !stale {
			return &conditionError{Kind: kindPackageRevision, Name: name, Condition: *ready,
				Hint: "Nothing was committed: the draft keeps its last good content. Fix the files and push again."}
		}
		got, err := content.FromConfigMap(cm.Data, cm.BinaryData)
		if err != nil {
			return errNotYet(err.Error())
		}
		// The manager sets the digest to what it committed (after rendering, which may change
		// the files); until then the annotation still describes the previous content.
		if cm.Annotations[kpov1.ContentDigestAnnotation] != content.Digest(got) {
			return errNotYet("content not committed yet")
		}
		if stale && ready.Status != metav1.ConditionTrue {
			return errNotYet(conditionText(ready))
		}
		return readyOutcome(kindPackageRevision, name, pr.Generation, pr.Status.Conditions)
	})
	o.printRender(pr, err != nil)
	if err != nil {
		return err
	}
	return o.printChange(nil, name, "pushed")
}

func sameCondition(a, b metav1.Condition) bool {
	return a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message && a.LastTransitionTime.Equal(&b.LastTransitionTime)
}

// printRender prints the Rendered condition and the render results, when the manager reports
// them: to stderr when the push failed.
func (o *globalOptions) printRender(pr *kpov1.PackageRevision, failed bool) {
	w := o.streams.Out
	if failed {
		w = o.streams.ErrOut
	}
	if c := meta.FindStatusCondition(pr.Status.Conditions, kpov1.RenderedCondition); c != nil && (c.Status != metav1.ConditionTrue || len(pr.Status.RenderResults) > 0) {
		fmt.Fprintf(w, "render: %s (%s): %s\n", map[metav1.ConditionStatus]string{metav1.ConditionTrue: "succeeded", metav1.ConditionFalse: "failed"}[c.Status], c.Reason, c.Message)
	}
	for _, r := range pr.Status.RenderResults {
		sev := r.Severity
		if sev == "" {
			sev = "info"
		}
		line := fmt.Sprintf("  [%s] %s: %s", sev, r.Image, r.Message)
		if r.Resource != "" {
			line += " (" + r.Resource + ")"
		}
		if r.File != "" {
			line += " in " + r.File
		}
		fmt.Fprintln(w, line)
	}
}
