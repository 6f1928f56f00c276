package crash_test

import (
	"context"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/content"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/kptfile"
)

// The invariants, as violation messages start with them.
const (
	invConsecutiveTags    = "consecutive tags"
	invNoDuplicateTags    = "no duplicate tags"
	invApprovalsTagged    = "every approval tagged"
	invPublishedHasTag    = "every published PackageRevision has its tag"
	invTagHasRevision     = "every tag has its PackageRevision"
	invBranchHasRevision  = "no orphaned branch"
	invRevisionHasBranch  = "no orphaned PackageRevision"
	invExpectedState      = "state the accepted operations ask for"
	invEditsInGit         = "every accepted edit in Git"
	invReady              = "everything Ready"
	invContentMatchesGit  = "content ConfigMap equals Git"
	invNoStuckDeletion    = "no stuck deletion"
	invManagerStaysAlive  = "the manager exits only when killed"
	invTrafficNotStranded = "traffic never stranded"
	invUserIntentKept     = "the user's spec is never overwritten"
	invVariantOneDraft    = "at most one open draft per variant"
	invVariantFollows     = "every variant's downstream follows its upstream"
	invVariantCleanedUp   = "nothing left of a deleted variant"
	invDeletionComplete   = "an approved deletion leaves nothing behind"
	invPublishedKept      = "every published revision keeps its tag"
)

// checker compares the cluster and the served Git repositories with each other and with what
// the accepted operations ask for.
type checker struct {
	c       client.Client
	ns      string
	gitRepo map[string]*gitserver.Repo
	workers []*worker
	// Git objects are immutable: what was read once by hash is kept.
	messages map[string]string
	blobs    map[string]string
	// variantRevisions counts, as of the last check, the revisions of the variants' downstream
	// packages that were published (for the summary).
	variantRevisions int
}

// repoState is what one check read.
type repoState struct {
	refs map[string]string // full name → hash
}

// violations returns every invariant that does not hold right now, sorted, each saying which
// invariant and which object.
func (k *checker) violations(ctx context.Context) ([]string, error) {
	var out []string
	add := func(inv, format string, args ...any) {
		out = append(out, inv+": "+fmt.Sprintf(format, args...))
	}

	repos := &kpov1.RepositoryList{}
	prs := &kpov1.PackageRevisionList{}
	drafts := &kpov1.PackageDraftList{}
	pvs := &kpov1.PackageVariantList{}
	cms := &corev1.ConfigMapList{}
	for _, l := range []client.ObjectList{repos, prs, drafts, pvs} {
		if err := k.c.List(ctx, l, client.InNamespace(k.ns)); err != nil {
			return nil, err
		}
	}
	if err := k.c.List(ctx, cms, client.InNamespace(k.ns), client.MatchingLabels{kpov1.ContentLabel: "true"}); err != nil {
		return nil, err
	}
	state := map[string]*repoState{}
	for name, r := range k.gitRepo {
		refs, err := r.Refs()
		if err != nil {
			return nil, fmt.Errorf("reading refs of %s: %w", name, err)
		}
		state[name] = &repoState{refs: refs}
	}
	prByName := map[string]*kpov1.PackageRevision{}
	for i := range prs.Items {
		prByName[prs.Items[i].Name] = &prs.Items[i]
	}
	draftByName := map[string]*kpov1.PackageDraft{}
	for i := range drafts.Items {
		draftByName[drafts.Items[i].Name] = &drafts.Items[i]
	}
	cmByName := map[string]*corev1.ConfigMap{}
	for i := range cms.Items {
		cmByName[cms.Items[i].Name] = &cms.Items[i]
	}

	// Everything Ready for its generation, nothing stuck in deletion.
	for _, r := range repos.Items {
		k.checkReady(add, "Repository", r.Name, r.Generation, r.Status.Conditions, r.DeletionTimestamp, r.Finalizers)
	}
	for _, pr := range prs.Items {
		k.checkReady(add, "PackageRevision", pr.Name, pr.Generation, pr.Status.Conditions, pr.DeletionTimestamp, pr.Finalizers)
	}
	for _, d := range drafts.Items {
		k.checkReady(add, "PackageDraft", d.Name, d.Generation, d.Status.Conditions, d.DeletionTimestamp, d.Finalizers)
	}
	for _, pv := range pvs.Items {
		k.checkReady(add, "PackageVariant", pv.Name, pv.Generation, pv.Status.Conditions, pv.DeletionTimestamp, pv.Finalizers)
	}

	// Tags, per package: v1..vN without gaps but the revisions whose deletion the test
	// approved, one per approved workspace.
	deletedNumbers := map[string]bool{} // "<repo>/<package>/v<N>" of the approved deletions
	for _, w := range k.workers {
		for _, p := range w.pkgs {
			for _, r := range p.revs {
				if deletedPublished(r) {
					deletedNumbers[fmt.Sprintf("%s/%s/v%d", p.repo, p.name, r.number)] = true
				}
			}
		}
	}
	tagWorkspace := map[string]string{} // full tag ref → workspace of its kpt line
	for repoName, st := range state {
		tags := map[string]map[int]string{} // package path → N → ref
		for ref := range st.refs {
			pr, ok := git.ParsePackageRef(ref)
			if !ok || pr.Kind != git.RefPublished {
				continue
			}
			if tags[pr.Package] == nil {
				tags[pr.Package] = map[int]string{}
			}
			tags[pr.Package][pr.Revision] = ref
			ws, err := k.kptWorkspace(repoName, st.refs[ref])
			if err != nil {
				return nil, err
			}
			tagWorkspace[ref] = ws
		}
		for pkg, byN := range tags {
			ns := slices.Sorted(maps.Keys(byN))
			for n := 1; n < ns[len(ns)-1]; n++ {
				if _, ok := byN[n]; !ok && !deletedNumbers[fmt.Sprintf("%s/%s/v%d", repoName, pkg, n)] {
					add(invConsecutiveTags, "repository %s package %s: tags %s: want v1..v%d without gaps but approved deletions (v%d missing)",
						repoName, pkg, versions(ns), ns[len(ns)-1], n)
					break
				}
			}
			seen := map[string]int{}
			for _, n := range ns {
				ws := tagWorkspace[byN[n]]
				if prev, ok := seen[ws]; ok {
					add(invNoDuplicateTags, "repository %s package %s: v%d and v%d both publish workspace %q",
						repoName, pkg, prev, n, ws)
				} else {
					seen[ws] = n
				}
			}
		}
	}

	// What the accepted operations ask for.
	modelled := map[string]bool{}
	modelledDrafts := map[string]bool{}
	for _, w := range k.workers {
		for _, p := range w.pkgs {
			st := state[p.repo]
			var approved, deleted []string // workspaces
			for _, r := range p.revs {
				if r.lifecycle == "" {
					continue // never accepted: nothing expected
				}
				modelled[r.name] = true
				modelledDrafts[r.draft] = true
				switch {
				case deletedPublished(r):
					deleted = append(deleted, r.workspace)
					if cm := cmByName[r.name]; cm != nil {
						add(invDeletionComplete, "ConfigMap %s: left behind: the test approved the deletion of PackageRevision %s", cm.Name, r.name)
					}
				case r.lifecycle == kpov1.LifecyclePublished || r.lifecycle == kpov1.LifecycleDeletionProposed:
					approved = append(approved, r.workspace)
				}
				k.checkRevision(add, st, r, prByName[r.name], draftByName[r.draft], tagWorkspace)
			}
			if len(approved) > 0 {
				modelled[discovery.RevisionName(p.repo, p.name, "main")] = true
				if _, ok := prByName[discovery.RevisionName(p.repo, p.name, "main")]; !ok {
					add(invExpectedState, "PackageRevision %s: does not exist, but package %s was approved %d times",
						discovery.RevisionName(p.repo, p.name, "main"), p.name, len(approved))
				}
			}
			tagged := map[string][]string{}
			for ref, ws := range tagWorkspace {
				if pr, ok := git.ParsePackageRef(ref); ok && pr.Package == p.name && st.refs[ref] != "" {
					tagged[ws] = append(tagged[ws], strings.TrimPrefix(ref, "refs/tags/"))
				}
			}
			for _, ws := range approved {
				if len(tagged[ws]) == 0 {
					add(invApprovalsTagged, "PackageRevision %s: its approval was accepted, but no tag of %s in repository %s publishes workspace %q",
						discovery.RevisionName(p.repo, p.name, ws), p.name, p.repo, ws)
				}
			}
			for ws, refs := range tagged {
				switch {
				case slices.Contains(deleted, ws):
					add(invDeletionComplete, "repository %s: tag %s still publishes workspace %q of %s, whose deletion the test approved",
						p.repo, strings.Join(refs, ", "), ws, discovery.RevisionName(p.repo, p.name, ws))
				case !slices.Contains(approved, ws):
					add(invApprovalsTagged, "repository %s: tag %s publishes workspace %q of %s, which the test never approved",
						p.repo, strings.Join(refs, ", "), ws, p.name)
				}
			}
		}
	}
	k.checkVariants(add, pvs.Items, prs.Items, drafts.Items, prByName, modelled, modelledDrafts)
	for name, pr := range prByName {
		if !modelled[name] {
			add(invExpectedState, "PackageRevision %s: exists (%s, revision %d), but the test never created it", name, pr.Status.Lifecycle, pr.Status.Revision)
		}
	}
	for name := range draftByName {
		if !modelledDrafts[name] {
			add(invExpectedState, "PackageDraft %s: exists, but the test never created it", name)
		}
	}

	// PackageRevisions ↔ refs.
	for _, pr := range prs.Items {
		st := state[pr.Spec.Repository]
		if st == nil || pr.Status.Revision < 0 {
			continue
		}
		path := pr.Spec.PackageName
		switch pr.Status.Lifecycle {
		case kpov1.LifecyclePublished, kpov1.LifecycleDeletionProposed:
			tag := git.TagRef(path, pr.Status.Revision)
			hash, ok := st.refs[tag]
			if pr.Status.Lifecycle == kpov1.LifecycleDeletionProposed {
				branch := git.DeletionProposedRef(path, pr.Status.Revision)
				if b, ok := st.refs[branch]; !ok || b != hash {
					add(invRevisionHasBranch, "PackageRevision %s: DeletionProposed, but branch %s is %s, not at tag %s (%s)",
						pr.Name, shortRef(branch), short(b), shortRef(tag), short(hash))
				}
			}
			switch {
			case !ok:
				add(invPublishedHasTag, "PackageRevision %s: %s revision %d, but tag %s does not exist",
					pr.Name, pr.Status.Lifecycle, pr.Status.Revision, strings.TrimPrefix(tag, "refs/tags/"))
			case tagWorkspace[tag] != pr.Spec.WorkspaceName:
				add(invPublishedHasTag, "PackageRevision %s: revision %d, but tag %s publishes workspace %q",
					pr.Name, pr.Status.Revision, strings.TrimPrefix(tag, "refs/tags/"), tagWorkspace[tag])
			case hash != pr.Status.Commit:
				add(invPublishedHasTag, "PackageRevision %s: status.commit %s, but tag %s is at %s",
					pr.Name, short(pr.Status.Commit), strings.TrimPrefix(tag, "refs/tags/"), short(hash))
			}
		case kpov1.LifecycleDraft, kpov1.LifecycleProposed:
			ref := git.DraftRef(path, pr.Spec.WorkspaceName)
			if pr.Status.Lifecycle == kpov1.LifecycleProposed {
				ref = git.ProposedRef(path, pr.Spec.WorkspaceName)
			}
			hash, ok := st.refs[ref]
			switch {
			case !ok:
				add(invRevisionHasBranch, "PackageRevision %s: %s, but branch %s does not exist in repository %s",
					pr.Name, pr.Status.Lifecycle, strings.TrimPrefix(ref, "refs/heads/"), pr.Spec.Repository)
			case hash != pr.Status.Commit:
				add(invRevisionHasBranch, "PackageRevision %s: status.commit %s, but branch %s is at %s",
					pr.Name, short(pr.Status.Commit), strings.TrimPrefix(ref, "refs/heads/"), short(hash))
			}
		default:
			add(invRevisionHasBranch, "PackageRevision %s: status.lifecycle %q", pr.Name, pr.Status.Lifecycle)
		}
	}
	for repoName, st := range state {
		for ref := range st.refs {
			pr, ok := git.ParsePackageRef(ref)
			if !ok {
				continue
			}
			switch pr.Kind {
			case git.RefPublished:
				ws := tagWorkspace[ref]
				name := discovery.RevisionName(repoName, pr.Package, ws)
				obj := prByName[name]
				switch {
				case obj == nil:
					add(invTagHasRevision, "repository %s: tag %s (workspace %q) has no PackageRevision %s",
						repoName, strings.TrimPrefix(ref, "refs/tags/"), ws, name)
				case obj.Status.Revision != pr.Revision:
					add(invTagHasRevision, "repository %s: tag %s (workspace %q): PackageRevision %s has revision %d",
						repoName, strings.TrimPrefix(ref, "refs/tags/"), ws, name, obj.Status.Revision)
				}
			case git.RefDraft, git.RefProposed:
				want := kpov1.LifecycleDraft
				if pr.Kind == git.RefProposed {
					want = kpov1.LifecycleProposed
				}
				name := discovery.RevisionName(repoName, pr.Package, pr.Workspace)
				obj := prByName[name]
				switch {
				case obj == nil:
					add(invBranchHasRevision, "repository %s: branch %s has no PackageRevision %s",
						repoName, strings.TrimPrefix(ref, "refs/heads/"), name)
				case obj.Status.Lifecycle != want:
					add(invBranchHasRevision, "repository %s: branch %s is left behind: PackageRevision %s is %s (ref %s)",
						repoName, strings.TrimPrefix(ref, "refs/heads/"), name, obj.Status.Lifecycle, obj.Status.Ref)
				}
			case git.RefDeletionProposed:
				// The test proposes deletions of its packages' revisions; a deleted variant's
				// finalizer those of its downstream package (policy delete). The branch is at the
				// tag's commit, whose kpt line names the workspace even once the tag is gone.
				ws, err := k.kptWorkspace(repoName, st.refs[ref])
				if err != nil {
					return nil, err
				}
				name := discovery.RevisionName(repoName, pr.Package, ws)
				obj := prByName[name]
				r := k.revisionOf(repoName, pr.Package, ws)
				switch {
				case r != nil && r.deleted:
					add(invDeletionComplete, "repository %s: branch %s is left behind: the test approved the deletion of PackageRevision %s",
						repoName, strings.TrimPrefix(ref, "refs/heads/"), name)
				case r == nil && !k.deletedVariantPackage(repoName, pr.Package):
					add(invBranchHasRevision, "repository %s: branch %s: the test never proposed a deletion",
						repoName, strings.TrimPrefix(ref, "refs/heads/"))
				case obj == nil || obj.Status.Lifecycle != kpov1.LifecycleDeletionProposed:
					state := "does not exist"
					if obj != nil {
						state = fmt.Sprintf("is %s (ref %s)", obj.Status.Lifecycle, obj.Status.Ref)
					}
					add(invBranchHasRevision, "repository %s: branch %s is left behind: PackageRevision %s %s",
						repoName, strings.TrimPrefix(ref, "refs/heads/"), name, state)
				}
			}
		}
	}

	// Content ConfigMaps: one per draft or proposal, and per published revision only while its
	// status names one (its content was requested), holding what Git holds.
	for _, pr := range prs.Items {
		cm := cmByName[pr.Name]
		published := pr.Status.Lifecycle == kpov1.LifecyclePublished || pr.Status.Lifecycle == kpov1.LifecycleDeletionProposed
		switch {
		case cm == nil && published && pr.Status.ResourcesRef == nil:
			continue
		case cm == nil:
			add(invContentMatchesGit, "PackageRevision %s (%s): content ConfigMap %s does not exist", pr.Name, pr.Status.Lifecycle, pr.Name)
			continue
		case published && pr.Status.ResourcesRef == nil:
			add(invContentMatchesGit, "ConfigMap %s: left behind: PackageRevision %s is %s and its content was not requested",
				cm.Name, pr.Name, pr.Status.Lifecycle)
		}
		if l := cm.Labels[kpov1.LifecycleLabel]; l != string(pr.Status.Lifecycle) {
			add(invContentMatchesGit, "ConfigMap %s: label %s=%s, but PackageRevision %s is %s",
				cm.Name, kpov1.LifecycleLabel, l, pr.Name, pr.Status.Lifecycle)
		}
		files, err := content.FromConfigMap(cm.Data, cm.BinaryData)
		if err != nil {
			add(invContentMatchesGit, "ConfigMap %s: %v", cm.Name, err)
			continue
		}
		if d := content.Digest(files); d != cm.Annotations[kpov1.ContentDigestAnnotation] {
			add(invContentMatchesGit, "ConfigMap %s (PackageRevision %s, %s): holds content that was never committed (digest %s, committed %s)",
				cm.Name, pr.Name, pr.Status.Lifecycle, short(d), short(cm.Annotations[kpov1.ContentDigestAnnotation]))
		}
	}
	for name := range cmByName {
		if prByName[name] == nil {
			add(invContentMatchesGit, "ConfigMap %s: content ConfigMap of no PackageRevision", name)
		}
	}

	sort.Strings(out)
	return slices.Compact(out), nil
}

// checkRevision checks one revision the test created against the accepted operations.
func (k *checker) checkRevision(add func(string, string, ...any), st *repoState, r *revision, pr *kpov1.PackageRevision, d *kpov1.PackageDraft, tagWorkspace map[string]string) {
	switch {
	case r.draftDeleted && d != nil:
		add(invExpectedState, "PackageDraft %s: the test deleted it, but it still exists (finalizers %v)", r.draft, d.Finalizers)
	case !r.draftDeleted && d == nil:
		add(invExpectedState, "PackageDraft %s: does not exist, but the test never deleted it", r.draft)
	}
	if r.deleted {
		switch {
		case pr == nil:
		case string(pr.UID) == r.deletedUID:
			add(invExpectedState, "PackageRevision %s: the test deleted it (spec %s; %s), but it still exists (%s, ref %s, finalizers %v)",
				r.name, r.lifecycle, r.deletedObject, pr.Status.Lifecycle, pr.Status.Ref, pr.Finalizers)
		default:
			add(invExpectedState, "PackageRevision %s: the test deleted it (spec %s; %s), but it came back: uid %s created %s (%s, ref %s, commit %s)",
				r.name, r.lifecycle, r.deletedObject, pr.UID, pr.CreationTimestamp.Format("15:04:05"), pr.Status.Lifecycle, pr.Status.Ref, short(pr.Status.Commit))
		}
		return
	}
	if pr == nil {
		add(invExpectedState, "PackageRevision %s: does not exist, but the test never deleted it (last set %s; %d accepted edits)",
			r.name, r.lifecycle, len(r.markers))
		return
	}
	if pr.Spec.Lifecycle != r.lifecycle || pr.Status.Lifecycle != r.lifecycle {
		recreated := ""
		if r.uid != "" && string(pr.UID) != r.uid {
			recreated = fmt.Sprintf(" (recreated: uid %s created %s; the manager first produced uid %s)",
				pr.UID, pr.CreationTimestamp.Format("15:04:05"), r.uid)
		}
		add(invExpectedState, "PackageRevision %s: the test last set spec.lifecycle %s, but spec.lifecycle is %s and status.lifecycle %s%s",
			r.name, r.lifecycle, pr.Spec.Lifecycle, pr.Status.Lifecycle, recreated)
	}
	if r.number > 0 {
		// Once published, a revision's tag never moves nor goes, whatever else is deleted.
		tag := git.TagRef(r.pkg.name, r.number)
		if hash := st.refs[tag]; hash != r.commit {
			now := "is at " + short(hash)
			if hash == "" {
				now = "does not exist"
			}
			add(invPublishedKept, "PackageRevision %s: published as %s at %s, but that tag %s", r.name, shortRef(tag), short(r.commit), now)
		}
	}
	if len(r.markers) == 0 {
		return
	}
	var refs []string
	switch r.lifecycle {
	case kpov1.LifecycleDraft:
		refs = []string{git.DraftRef(r.pkg.name, r.workspace)}
	case kpov1.LifecycleProposed:
		refs = []string{git.ProposedRef(r.pkg.name, r.workspace)}
	case kpov1.LifecyclePublished:
		for ref, ws := range tagWorkspace {
			if p, ok := git.ParsePackageRef(ref); ok && p.Package == r.pkg.name && ws == r.workspace && st.refs[ref] != "" {
				refs = append(refs, ref)
			}
		}
	}
	for _, ref := range refs {
		hash, ok := st.refs[ref]
		if !ok {
			continue // reported as a missing branch or tag
		}
		data, err := k.readBlob(r.pkg.repo, hash, r.pkg.name+"/"+markersFile)
		if err != nil {
			add(invEditsInGit, "PackageRevision %s: %d accepted edits, but %s has no %s", r.name, len(r.markers), shortRef(ref), markersFile)
			continue
		}
		var missing []string
		for _, m := range r.markers {
			if !hasMarker(data, m) {
				missing = append(missing, m)
			}
		}
		if len(missing) > 0 {
			add(invEditsInGit, "PackageRevision %s (%s at %s): %d of %d accepted edits missing: %s",
				r.name, shortRef(ref), short(hash), len(missing), len(r.markers), strings.Join(missing, ", "))
		}
	}
}

func (k *checker) checkReady(add func(string, string, ...any), kind, name string, generation int64, conds []metav1.Condition, deleting *metav1.Time, finalizers []string) {
	if deleting != nil {
		add(invNoStuckDeletion, "%s %s: deleted at %s, still held by finalizers %v", kind, name, deleting.Format("15:04:05"), finalizers)
		return
	}
	c := meta.FindStatusCondition(conds, kpov1.ReadyCondition)
	switch {
	case c == nil:
		add(invReady, "%s %s: no Ready condition", kind, name)
	case c.Status != metav1.ConditionTrue:
		add(invReady, "%s %s: Ready=%s reason %s: %s", kind, name, c.Status, c.Reason, c.Message)
	case c.ObservedGeneration != generation:
		add(invReady, "%s %s: Ready=True for generation %d, but generation is %d", kind, name, c.ObservedGeneration, generation)
	}
}

// kptWorkspace returns the workspace of the kpt line of a commit.
func (k *checker) kptWorkspace(repo, hash string) (string, error) {
	msg, ok := k.messages[hash]
	if !ok {
		out, err := gitOut(k.gitRepo[repo].Dir, "log", "-1", "--format=%B", hash)
		if err != nil {
			return "", err
		}
		msg = out
		k.messages[hash] = msg
	}
	kc, ok := git.ParseKptCommit(msg)
	if !ok {
		return "", nil
	}
	return kc.WorkspaceName, nil
}

// readBlob returns the content of path at commit hash.
func (k *checker) readBlob(repo, hash, path string) (string, error) {
	key := hash + ":" + path
	if data, ok := k.blobs[key]; ok {
		return data, nil
	}
	data, err := gitOut(k.gitRepo[repo].Dir, "cat-file", "blob", key)
	if err != nil {
		return "", err
	}
	k.blobs[key] = data
	return data, nil
}

// gitOut runs the system git on a served bare repository (the test reads Git as another Git
// client would; the manager never runs git).
func gitOut(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"--git-dir", dir}, args...)...)
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

func versions(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = "v" + strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func shortRef(ref string) string {
	return strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/")
}

// checkVariants checks the PackageVariants the test created, and their downstream packages,
// against the accepted operations. It marks the revisions and PackageDrafts of the downstream
// packages as expected: only the variants write there.
func (k *checker) checkVariants(add func(string, string, ...any), pvs []kpov1.PackageVariant, prs []kpov1.PackageRevision,
	drafts []kpov1.PackageDraft, prByName map[string]*kpov1.PackageRevision, modelled, modelledDrafts map[string]bool) {
	pvByName := map[string]*kpov1.PackageVariant{}
	for i := range pvs {
		pvByName[pvs[i].Name] = &pvs[i]
	}
	modelledVariants := map[string]bool{}
	k.variantRevisions = 0
	for _, w := range k.workers {
		for _, v := range w.variants {
			modelledVariants[v.name] = true
			var revs []*kpov1.PackageRevision
			var open []string
			for i := range prs {
				if pr := &prs[i]; pr.Spec.Repository == v.repo && pr.Spec.PackageName == v.pkg {
					revs = append(revs, pr)
					modelled[pr.Name] = true
					if pr.Status.Revision > 0 {
						k.variantRevisions++
					}
					if isOpen(pr) {
						open = append(open, pr.Name)
					}
				}
			}
			var ds []*kpov1.PackageDraft
			for i := range drafts {
				if d := &drafts[i]; d.Spec.Repository == v.repo && d.Spec.PackageName == v.pkg {
					ds = append(ds, d)
					modelledDrafts[d.Name] = true
				}
			}
			if len(open) > 1 {
				sort.Strings(open)
				add(invVariantOneDraft, "PackageVariant %s: %d open revisions of downstream package %s/%s: %s",
					v.name, len(open), v.repo, v.pkg, strings.Join(open, ", "))
			}
			pv := pvByName[v.name]
			switch {
			case v.deleted:
				k.checkDeletedVariant(add, v, pv, revs, ds)
			case pv == nil:
				add(invExpectedState, "PackageVariant %s: does not exist, but the test never deleted it", v.name)
			default:
				k.checkVariantFollows(add, v, pv, revs, prByName)
			}
		}
	}
	for name := range pvByName {
		if !modelledVariants[name] {
			add(invExpectedState, "PackageVariant %s: exists, but the test never created it", name)
		}
	}
}

// checkVariantFollows checks that a live variant handled its generation and that its newest
// downstream revision (its open one, else its newest published one) is based on the newest
// published revision of the upstream package, in its status and in the upstreamLock
// of its Kptfile in Git, has the upstream's accepted edits, and carries the variant's labels
// and annotations.
func (k *checker) checkVariantFollows(add func(string, string, ...any), v *variantModel, pv *kpov1.PackageVariant,
	revs []*kpov1.PackageRevision, prByName map[string]*kpov1.PackageRevision) {
	if pv.Status.ObservedGeneration != pv.Generation {
		add(invReady, "PackageVariant %s: status.observedGeneration %d, but generation is %d", v.name, pv.Status.ObservedGeneration, pv.Generation)
	}
	// The newest upstream revision is the one with the highest revision number: the test
	// approves a package's revisions in any order. That it is one the test approved is
	// checked with the upstream package.
	var up *kpov1.PackageRevision
	for _, pr := range prByName {
		if pr.Spec.Repository == v.upstream.repo && pr.Spec.PackageName == v.upstream.name &&
			pr.Status.Lifecycle == kpov1.LifecyclePublished && pr.Status.Revision > 0 && (up == nil || pr.Status.Revision > up.Status.Revision) {
			up = pr
		}
	}
	if up == nil {
		return // the variant waits for a published upstream revision: not Ready, reported as such
	}
	var newest *kpov1.PackageRevision
	for _, pr := range revs {
		switch {
		case pr.Labels[kpov1.PackageVariantLabel] != v.name:
		case isOpen(pr):
			newest = pr
		case newest != nil && isOpen(newest):
		case pr.Status.Lifecycle == kpov1.LifecyclePublished && pr.Status.Revision > 0 && (newest == nil || pr.Status.Revision > newest.Status.Revision):
			newest = pr
		}
	}
	if newest == nil {
		add(invVariantFollows, "PackageVariant %s: owns no revision of downstream package %s/%s", v.name, v.repo, v.pkg)
		return
	}
	if newest.Status.UpstreamRevision != up.Name {
		add(invVariantFollows, "PackageVariant %s: its newest revision %s (%s) is based on %s, not on %s, the newest revision of %s/%s",
			v.name, newest.Name, newest.Status.Lifecycle, quoteOrNone(newest.Status.UpstreamRevision), up.Name, v.upstream.repo, v.upstream.name)
	}
	for key, want := range v.labels {
		if got, ok := newest.Labels[key]; !ok || got != want {
			add(invVariantFollows, "PackageVariant %s: its newest revision %s has label %s=%q, want %q", v.name, newest.Name, key, got, want)
		}
	}
	for key, want := range v.annotations {
		if got, ok := newest.Annotations[key]; !ok || got != want {
			add(invVariantFollows, "PackageVariant %s: its newest revision %s has annotation %s=%q, want %q", v.name, newest.Name, key, got, want)
		}
	}
	data, err := k.readBlob(v.repo, newest.Status.Commit, v.pkg+"/Kptfile")
	if err != nil {
		add(invVariantFollows, "PackageVariant %s: %s: no Kptfile at commit %s: %v", v.name, newest.Name, short(newest.Status.Commit), err)
		return
	}
	switch kf, err := kptfile.Decode([]byte(data)); {
	case err != nil:
		add(invVariantFollows, "PackageVariant %s: %s: the Kptfile at commit %s: %v", v.name, newest.Name, short(newest.Status.Commit), err)
	case kf.UpstreamLock == nil || kf.UpstreamLock.Git == nil || kf.UpstreamLock.Git.Commit != up.Status.Commit:
		lock := "no upstreamLock"
		if kf.UpstreamLock != nil && kf.UpstreamLock.Git != nil {
			lock = fmt.Sprintf("upstreamLock %s at %s", kf.UpstreamLock.Git.Ref, short(kf.UpstreamLock.Git.Commit))
		}
		add(invVariantFollows, "PackageVariant %s: the Kptfile of %s (commit %s) has %s, but %s is at %s",
			v.name, newest.Name, short(newest.Status.Commit), lock, up.Name, short(up.Status.Commit))
	}
	// A package without edits has no markers file: both read as empty.
	upMarkers, _ := k.readBlob(v.upstream.repo, up.Status.Commit, v.upstream.name+"/"+markersFile)
	downMarkers, _ := k.readBlob(v.repo, newest.Status.Commit, v.pkg+"/"+markersFile)
	var missing []string
	for _, m := range strings.Split(strings.TrimSpace(upMarkers), "\n") {
		if m != "" && !hasMarker(downMarkers, m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		add(invVariantFollows, "PackageVariant %s: %s lacks %d edits of its upstream %s: %s (at commit %s)",
			v.name, newest.Name, len(missing), up.Name, strings.Join(missing, ", "), short(newest.Status.Commit))
	}
}

// checkDeletedVariant checks what a deleted variant left: under deletionPolicy delete, no
// draft, proposal or PackageDraft, every published revision proposed for deletion; under
// orphan, nothing labelled or owned as the variant's.
func (k *checker) checkDeletedVariant(add func(string, string, ...any), v *variantModel, pv *kpov1.PackageVariant,
	revs []*kpov1.PackageRevision, ds []*kpov1.PackageDraft) {
	if pv != nil && string(pv.UID) != v.uid {
		add(invExpectedState, "PackageVariant %s: the test deleted it (uid %s), but it came back: uid %s", v.name, v.uid, pv.UID)
	} // the one deleted, still there, is a stuck deletion
	if v.policy == kpov1.DeletionPolicyOrphan {
		for _, pr := range revs {
			if pr.Labels[kpov1.PackageVariantLabel] == v.name {
				add(invVariantCleanedUp, "PackageRevision %s: still labelled %s=%s, but the variant was deleted with deletionPolicy orphan",
					pr.Name, kpov1.PackageVariantLabel, v.name)
			}
		}
		for _, d := range ds {
			if d.Labels[kpov1.PackageVariantLabel] == v.name || slices.ContainsFunc(d.OwnerReferences, func(o metav1.OwnerReference) bool { return string(o.UID) == v.uid }) {
				add(invVariantCleanedUp, "PackageDraft %s: still PackageVariant %s's, but the variant was deleted with deletionPolicy orphan", d.Name, v.name)
			}
		}
		return
	}
	for _, pr := range revs {
		switch {
		case pr.Status.Revision < 0:
			// The package as on the registered branch: not a revision the variant owns.
		case isOpen(pr):
			add(invVariantCleanedUp, "PackageRevision %s: %s (spec %s), but PackageVariant %s was deleted with deletionPolicy delete",
				pr.Name, pr.Status.Lifecycle, pr.Spec.Lifecycle, v.name)
		case pr.Spec.Lifecycle != kpov1.LifecycleDeletionProposed || pr.Status.Lifecycle != kpov1.LifecycleDeletionProposed:
			add(invVariantCleanedUp, "PackageRevision %s: spec %s, status %s, but PackageVariant %s was deleted with deletionPolicy delete: want DeletionProposed (uid %s created %s, label %s=%q)",
				pr.Name, pr.Spec.Lifecycle, pr.Status.Lifecycle, v.name, pr.UID, pr.CreationTimestamp.Format("15:04:05"), kpov1.PackageVariantLabel, pr.Labels[kpov1.PackageVariantLabel])
		}
	}
	for _, d := range ds {
		add(invVariantCleanedUp, "PackageDraft %s: PackageVariant %s was deleted with deletionPolicy delete, but the PackageDraft is still there (finalizers %v)",
			d.Name, v.name, d.Finalizers)
	}
}

// deletedPublished tells whether the test approved the deletion of r, a published revision.
func deletedPublished(r *revision) bool {
	return r.deleted && r.lifecycle == kpov1.LifecycleDeletionProposed
}

// revisionOf returns the revision the test created as workspace ws of package pkg of repo.
func (k *checker) revisionOf(repo, pkg, ws string) *revision {
	for _, w := range k.workers {
		for _, p := range w.pkgs {
			if p.repo != repo || p.name != pkg {
				continue
			}
			for _, r := range p.revs {
				if r.workspace == ws {
					return r
				}
			}
		}
	}
	return nil
}

// deletedVariantPackage tells whether repo/pkg is the downstream package of a variant the
// test deleted with deletionPolicy delete: the only downstream packages with deletions proposed.
func (k *checker) deletedVariantPackage(repo, pkg string) bool {
	for _, w := range k.workers {
		for _, v := range w.variants {
			if v.deleted && v.policy == kpov1.DeletionPolicyDelete && v.repo == repo && v.pkg == pkg {
				return true
			}
		}
	}
	return false
}

// isOpen tells whether a revision is a draft or a proposal, or on its way to one.
func isOpen(pr *kpov1.PackageRevision) bool {
	for _, l := range []kpov1.Lifecycle{pr.Status.Lifecycle, pr.Spec.Lifecycle} {
		if l == kpov1.LifecycleDraft || l == kpov1.LifecycleProposed {
			return true
		}
	}
	return false
}
