package kpoctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
)

// revisionIndex is every PackageRevision of the namespace, read with one List.
type revisionIndex struct {
	items  []kpov1.PackageRevision
	byName map[string]*kpov1.PackageRevision
}

func (o *globalOptions) listRevisions(ctx context.Context) (*revisionIndex, error) {
	c, ns, err := o.client()
	if err != nil {
		return nil, err
	}
	list := &kpov1.PackageRevisionList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing package revisions: %w", err)
	}
	slices.SortFunc(list.Items, func(a, b kpov1.PackageRevision) int { return strings.Compare(a.Name, b.Name) })
	x := &revisionIndex{items: list.Items, byName: make(map[string]*kpov1.PackageRevision, len(list.Items))}
	for i := range x.items {
		x.byName[x.items[i].Name] = &x.items[i]
	}
	return x, nil
}

// get returns the named revision, or the error `kpoctl rpkg get NAME` would give.
func (x *revisionIndex) get(name string) (*kpov1.PackageRevision, error) {
	if pr := x.byName[name]; pr != nil {
		return pr, nil
	}
	return nil, apiError(kindPackageRevision, name, apierrors.NewNotFound(kpov1.GroupVersion.WithResource("packagerevisions").GroupResource(), name))
}

// published returns the published revisions (revision > 0) of one package, oldest first.
func (x *revisionIndex) published(repo, pkg string) []*kpov1.PackageRevision {
	var out []*kpov1.PackageRevision
	for i := range x.items {
		pr := &x.items[i]
		if pr.Spec.Repository == repo && pr.Spec.PackageName == pkg && isPublished(pr) {
			out = append(out, pr)
		}
	}
	slices.SortFunc(out, func(a, b *kpov1.PackageRevision) int { return a.Status.Revision - b.Status.Revision })
	return out
}

func isPublished(pr *kpov1.PackageRevision) bool {
	return pr.Status.Lifecycle == kpov1.LifecyclePublished && pr.Status.Revision > 0
}

func samePackage(a, b *kpov1.PackageRevision) bool {
	return a.Spec.Repository == b.Spec.Repository && a.Spec.PackageName == b.Spec.PackageName
}

// downstreamFilter selects downstream packages: by repository and by label selector.
type downstreamFilter struct {
	repository string
	selector   string
}

// stringFlags is the part of a command's flag set that string flags need.
type stringFlags interface {
	StringVar(p *string, name, value, usage string)
	StringVarP(p *string, name, shorthand, value, usage string)
}

func (f *downstreamFilter) flags(fs stringFlags, verb string) {
	fs.StringVar(&f.repository, "repository", "", "With --all-downstreams: only "+verb+" the downstream packages of this repository.")
	fs.StringVarP(&f.selector, "selector", "l", "", "With --all-downstreams: only "+verb+" the downstream packages whose latest revision matches this label selector (e.g. kpo.dev/deployment=true).")
}

// downstreamScope is what rollback and upgrade act on: the package revision their argument
// names, or every downstream of the upstream --all-downstreams names, narrowed by filter.
type downstreamScope struct {
	// allDownstreams names the upstream whose downstreams are all acted on.
	allDownstreams string
	filter         downstreamFilter
}

// flags adds --all-downstreams, --repository and --selector; verb is what the command does to
// each downstream ("roll back").
func (s *downstreamScope) flags(fs stringFlags, verb string) {
	fs.StringVar(&s.allDownstreams, "all-downstreams", "", strings.ToUpper(verb[:1])+verb[1:]+" every downstream of the upstream package this revision belongs to.")
	s.filter.flags(fs, verb)
}

// scopeUsage is a command's own words for the argument errors of downstreamScope.check.
type scopeUsage struct {
	// acts completes "--all-downstreams … the downstreams of an upstream" ("rolls back").
	acts string
	// single says why --repository and --selector do not apply to one PACKAGE_REVISION.
	single string
	// missing is the error when neither PACKAGE_REVISION nor --all-downstreams is given.
	missing string
}

// check accepts exactly one of PACKAGE_REVISION and --all-downstreams UPSTREAM, and
// --repository and --selector only with the latter. It reports whether the command acts on
// all downstreams.
func (s *downstreamScope) check(args []string, u scopeUsage) (all bool, err error) {
	if s.allDownstreams != "" {
		if len(args) > 0 {
			return false, fmt.Errorf("--all-downstreams %s the downstreams of an upstream: drop the PACKAGE_REVISION argument", u.acts)
		}
		return true, nil
	}
	if s.filter.repository != "" || s.filter.selector != "" {
		return false, fmt.Errorf("--repository and --selector select downstreams of --all-downstreams UPSTREAM: %s", u.single)
	}
	if len(args) != 1 {
		return false, errors.New(u.missing)
	}
	return false, nil
}

// describe is the filter for a message, "" when there is none.
func (f *downstreamFilter) describe() string {
	var parts []string
	if f.repository != "" {
		parts = append(parts, "in repository "+f.repository)
	}
	if f.selector != "" {
		parts = append(parts, "matching "+f.selector)
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// A downstream is the latest published revision of a package cloned from an upstream package,
// with the upstream revision it is based on (its status.upstreamRevision).
type downstream struct {
	pr, based *kpov1.PackageRevision
}

// downstreams returns, in name order, the latest published revision of every package whose
// status.upstreamRevision is a revision of upstream's package, and that passes f.
func (x *revisionIndex) downstreams(upstream *kpov1.PackageRevision, f downstreamFilter) ([]downstream, error) {
	sel := labels.Everything()
	if f.selector != "" {
		var err error
		if sel, err = labels.Parse(f.selector); err != nil {
			return nil, fmt.Errorf("invalid --selector %q: %w", f.selector, err)
		}
	}
	var out []downstream
	for i := range x.items {
		pr := &x.items[i]
		if pr.Labels[kpov1.LatestRevisionLabel] != "true" || !isPublished(pr) {
			continue
		}
		based := x.byName[pr.Status.UpstreamRevision]
		if based == nil || !samePackage(based, upstream) {
			continue
		}
		if f.repository != "" && pr.Spec.Repository != f.repository {
			continue
		}
		if !sel.Matches(labels.Set(pr.Labels)) {
			continue
		}
		out = append(out, downstream{pr: pr, based: based})
	}
	return out, nil
}

// A bulkItem is one draft a bulk command asks for, or the reason it asks for none.
type bulkItem struct {
	// subject is the revision the draft acts on (the downstream upgraded or rolled back).
	subject string
	// action says what the draft does, for the report.
	action string
	target draftTarget
	source kpov1.PackageDraftSource
	// skip, when set, is why no draft is needed.
	skip string

	name  string
	draft *kpov1.PackageDraft
	// created is true when this run created draft, false when it existed already.
	created bool
	err     error
}

// bulkConcurrency bounds the PackageDrafts created at once.
const bulkConcurrency = 8

// runBulk creates one PackageDraft per item (named like the revision it produces, as
// createDraft does), then waits for all of them at once and reports, in item order, what was
// created, what was skipped and what failed. It is idempotent: an item whose draft is already
// requested by an existing PackageDraft with the same source (whose revision is not published
// yet) is not requested again. Failed drafts that produced nothing are removed, so running the
// command again retries them. It fails when any item failed.
func (o *globalOptions) runBulk(ctx context.Context, x *revisionIndex, items []*bulkItem, noun string) error {
	c, ns, err := o.client()
	if err != nil {
		return err
	}
	drafts := &kpov1.PackageDraftList{}
	if err := c.List(ctx, drafts, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("listing package drafts: %w", err)
	}
	existing := make(map[string]*kpov1.PackageDraft, len(drafts.Items))
	for i := range drafts.Items {
		existing[drafts.Items[i].Name] = &drafts.Items[i]
	}
	var toCreate []*bulkItem
	for _, it := range items {
		if it.skip != "" {
			continue
		}
		it.name = discovery.RevisionName(it.target.repository, it.target.packageName, it.target.workspace)
		if d := matchingDraft(drafts.Items, x, it); d != nil {
			it.draft = d
			continue
		}
		if d, ok := existing[it.name]; ok && !d.DeletionTimestamp.IsZero() {
			// A failed draft of an earlier run, on its way out: wait for it to go.
			if err := o.waitGone(ctx, kindPackageDraft, d); err != nil {
				it.err = err
				continue
			}
			delete(existing, it.name)
		}
		if _, ok := existing[it.name]; ok {
			it.err = fmt.Errorf("packagedraft %s already exists and asks for something else: choose another --workspace", it.name)
			continue
		}
		if _, ok := x.byName[it.name]; ok {
			it.err = fmt.Errorf("package %s already has workspace %s in repository %s (package revision %s): choose another --workspace",
				it.target.packageName, it.target.workspace, it.target.repository, it.name)
			continue
		}
		it.draft = &kpov1.PackageDraft{
			ObjectMeta: metav1.ObjectMeta{Name: it.name, Namespace: ns},
			Spec: kpov1.PackageDraftSpec{Repository: it.target.repository, PackageName: it.target.packageName,
				WorkspaceName: it.target.workspace, Source: it.source},
		}
		it.created = true
		toCreate = append(toCreate, it)
	}

	var wg sync.WaitGroup
	sem := make(chan struct{}, bulkConcurrency)
	for _, it := range toCreate {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := c.Create(ctx, it.draft); err != nil {
				it.err, it.created = apiError(kindPackageDraft, it.name, err), false
			}
		}()
	}
	wg.Wait()

	if o.wait {
		o.waitBulk(ctx, c, ns, items)
	}
	for _, it := range items {
		var cerr *conditionError
		if !errors.As(it.err, &cerr) {
			continue
		}
		switch {
		case !it.created:
			cerr.Hint = fmt.Sprintf("PackageDraft %s was created earlier; remove it with `kubectl delete packagedraft %s -n %s` to try again.", it.name, it.name, ns)
		case it.draft.Status.PackageRevision == "":
			if derr := c.Delete(ctx, it.draft); derr == nil {
				cerr.Hint = fmt.Sprintf("Nothing was created for %s (the PackageDraft was removed): fix the cause and run the command again.", it.subject)
			}
		}
	}
	return o.reportBulk(x, items, noun)
}

// matchingDraft returns an existing PackageDraft that asks for what it does, unless the revision
// it produced is published already (a rollback to the same revision can be asked again later).
func matchingDraft(drafts []kpov1.PackageDraft, x *revisionIndex, it *bulkItem) *kpov1.PackageDraft {
	for i := range drafts {
		d := &drafts[i]
		if d.Spec.Repository != it.target.repository || d.Spec.PackageName != it.target.packageName ||
			!d.DeletionTimestamp.IsZero() || !apiequality.Semantic.DeepEqual(d.Spec.Source, it.source) {
			continue
		}
		if pr := x.byName[d.Status.PackageRevision]; pr != nil && isPublished(pr) {
			continue
		}
		return d
	}
	return nil
}

// waitBulk waits, with one List per poll, until every item's PackageDraft reports its outcome
// or --timeout passes; it sets each item's draft and error.
func (o *globalOptions) waitBulk(ctx context.Context, c client.Client, ns string, items []*bulkItem) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	pending := map[string]*bulkItem{}
	for _, it := range items {
		if it.draft != nil && it.err == nil {
			pending[it.draft.Name] = it
		}
	}
	last := map[string]string{}
	for len(pending) > 0 {
		list := &kpov1.PackageDraftList{}
		err := c.List(ctx, list, client.InNamespace(ns))
		if err == nil {
			for i := range list.Items {
				d := &list.Items[i]
				it := pending[d.Name]
				if it == nil {
					continue
				}
				it.draft = d
				err := readyOutcome(kindPackageDraft, d.Name, d.Generation, d.Status.Conditions)
				if notYet, ok := err.(errNotYet); ok {
					last[d.Name] = string(notYet)
					continue
				}
				it.err = err
				delete(pending, d.Name)
			}
		}
		if len(pending) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			for name, it := range pending {
				state := last[name]
				if state == "" {
					state = "no status yet"
				}
				it.err = fmt.Errorf("timed out after %s waiting for packagedraft %s to create its revision (last status: %s): it goes on in the background; see `kpoctl rpkg get %s` later, or wait longer with --timeout",
					o.timeout, name, state, name)
			}
			return
		case <-time.After(pollInterval):
		}
	}
}

// reportBulk prints one line per item: created or requested revisions and skipped items on
// stdout, failures on stderr. It returns an error when any item failed.
func (o *globalOptions) reportBulk(x *revisionIndex, items []*bulkItem, noun string) error {
	var created, skipped, failed int
	var firstErr error
	for _, it := range items {
		switch {
		case it.err != nil:
			failed++
			if firstErr == nil {
				firstErr = it.err
			}
			if len(items) > 1 {
				fmt.Fprintf(o.streams.ErrOut, "error: %v\n", it.err)
			}
		case it.skip != "":
			skipped++
			if o.output != outputName {
				fmt.Fprintf(o.streams.Out, "%s skipped: %s\n", it.subject, it.skip)
			}
		case !it.created:
			skipped++
			if o.output != outputName {
				what := ""
				if name := it.draft.Status.PackageRevision; name != "" {
					what = " (revision " + name + ")"
					if pr := x.byName[name]; pr != nil {
						what = fmt.Sprintf(" (revision %s is %s)", name, pr.Status.Lifecycle)
					}
				}
				fmt.Fprintf(o.streams.Out, "%s skipped: packagedraft %s already requests it%s\n", it.subject, it.draft.Name, what)
			}
		default:
			created++
			name, verb := it.draft.Status.PackageRevision, "created"
			if !o.wait || name == "" {
				name, verb = it.name, "requested"
			}
			if o.output == outputName {
				fmt.Fprintf(o.streams.Out, "packagerevision.kpo.dev/%s\n", name)
			} else {
				fmt.Fprintf(o.streams.Out, "%s %s (%s)\n", name, verb, it.action)
			}
		}
	}
	if failed == 0 {
		return nil
	}
	if len(items) == 1 {
		return firstErr
	}
	return fmt.Errorf("%d of %d %s failed (%d created, %d skipped)", failed, len(items), noun, created, skipped)
}
