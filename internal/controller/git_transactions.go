package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/discovery"
	"kpo.dev/kpo/internal/git"
)

// maxCASAttempts bounds how often a Git write that lost a compare-and-swap race is retried
// from fresh state before the reconcile fails and is requeued.
const maxCASAttempts = 5

// refReader is what a Git write reads of the clone's refs: one ref, or the refs below a prefix
// (one package's tags). Both cost the same in a repository of ten refs or of thirty thousand;
// *git.Repo serves them from its ref index.
type refReader interface {
	Ref(name string) (string, bool)
	RefsWithPrefix(prefix string) []git.Ref
}

// withCAS builds ref updates from the clone's refs and pushes them; a lost compare-and-swap race
// is retried from a new fetch, never forced. No updates means nothing to do.
func withCAS(ctx context.Context, src *git.Repo, build func(refs refReader) ([]git.RefUpdate, error)) error {
	var err error
	for attempt := range maxCASAttempts {
		if attempt > 0 {
			if err := src.Fetch(ctx); err != nil {
				return err
			}
		}
		var updates []git.RefUpdate
		if updates, err = build(src); err != nil || len(updates) == 0 {
			return err
		}
		if err = src.PushRefs(ctx, updates); !errors.Is(err, git.ErrNonFastForward) {
			return err
		}
	}
	return err
}

// moveRef renames a branch: creates to at from's commit and deletes from, atomically. With
// expected set, from must stand at that commit: a branch that moved is not renamed.
func moveRef(ctx context.Context, src *git.Repo, from, to, expected string) error {
	return withCAS(ctx, src, func(refs refReader) ([]git.RefUpdate, error) {
		head, ok := refs.Ref(from)
		if !ok {
			return nil, fmt.Errorf("branch %s does not exist", from)
		}
		if expected != "" && head != expected {
			return nil, &stepError{Reason: kpov1.ContentPendingReason, RetryAfter: time.Second,
				Err: fmt.Errorf("branch %s moved to %s, after the content at %s was checked: checking again", from, shortHash(head), shortHash(expected))}
		}
		return []git.RefUpdate{{Name: to, New: head}, {Name: from, Old: head}}, nil
	})
}

// deleteRefs deletes the refs that still exist.
func deleteRefs(ctx context.Context, src *git.Repo, names ...string) error {
	return withCAS(ctx, src, func(refs refReader) ([]git.RefUpdate, error) {
		var updates []git.RefUpdate
		for _, name := range names {
			if old, ok := refs.Ref(name); ok {
				updates = append(updates, git.RefUpdate{Name: name, Old: old})
			}
		}
		return updates, nil
	})
}

// highestRevision is the highest N of the tags <path>/v<N>. It reads the tags below <path>/
// only, not every tag of the repository.
func highestRevision(refs refReader, path string) int {
	highest := 0
	for _, ref := range refs.RefsWithPrefix(git.TagPrefix(path)) {
		if pr, ok := git.ParsePackageRef(ref.Name); ok && pr.Kind == git.RefPublished && pr.Package == path && pr.Revision > highest {
			highest = pr.Revision
		}
	}
	return highest
}

// commitMessage is a commit message in Porch's form: a summary, optional trailers, and the
// kpt:{json} line.
func commitMessage(summary, pkg, ws string, revision int, task, approver string) string {
	msg := summary + "\n\n"
	if approver != "" {
		msg += discovery.ApprovedByTrailer + approver + "\n"
	}
	kc := git.KptCommit{Package: pkg, WorkspaceName: ws, Revision: revision,
		Task: []byte(`{"type":` + strconv.Quote(task) + `}`)}
	return msg + kc.Line() + "\n"
}

// createBranch pushes an empty root commit as the registered branch, refusing to overwrite a
// branch someone else created meanwhile.
func createBranch(ctx context.Context, src *git.Repo, repo *kpov1.Repository) (string, error) {
	author, email := commitAuthor(repo)
	hash, err := src.CreateCommit(git.NewCommit{
		Message:    fmt.Sprintf("Create branch %s\n", branchOf(repo)),
		AuthorName: author, AuthorEmail: email, Time: time.Now(),
	})
	if err != nil {
		return "", err
	}
	if err := src.PushRefs(ctx, []git.RefUpdate{{Name: git.BranchRef(branchOf(repo)), New: hash}}); err != nil {
		return "", err
	}
	return hash, nil
}
