package controller

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"kpo.dev/kpo/internal/git"
)

// Trailers kpo writes into commit messages and reads back from Git.
const (
	// draftTrailer records in a draft's first commit which PackageDraft (by UID) created it.
	// It is how a PackageDraft recognises its own revision: after an interrupted reconcile, and
	// before it ever publishes one.
	draftTrailer = "Kpo-Draft: "
	// coAuthorTrailer names an editor of an edit commit besides its author, as Git hosts read it.
	coAuthorTrailer = "Co-authored-by: "
)

// maxHistory bounds how many commits of one revision are walked.
const maxHistory = 1000

// revisionHistory returns the commits of one revision of package pkg, workspace ws, newest
// first: from head along first parents while the commits carry the kpt: line of that package
// and workspace. An approval commit continues with the proposal it merged. The last commit is
// the one that started the revision (init, clone, copy or upgrade).
func revisionHistory(src *git.Repo, head, pkg, ws string) ([]git.Commit, error) {
	var history []git.Commit
	for next := head; next != "" && len(history) < maxHistory; {
		c, err := src.CommitInfo(next)
		if err != nil {
			return nil, fmt.Errorf("reading the history of %s at %s: %w", pkg, shortHash(next), err)
		}
		kc, ok := git.ParseKptCommit(c.Message)
		if !ok || kc.Package != pkg || kc.WorkspaceName != ws {
			break
		}
		history = append(history, c)
		switch task := taskType(kc); {
		case task == "approve" && len(c.Parents) == 2:
			next = c.Parents[1]
		case len(c.Parents) > 0 && (task == "edit" || task == ""):
			next = c.Parents[0]
		default:
			next = "" // the commit that started the revision
		}
	}
	return history, nil
}

// taskType is the type of the task a kpt: line records ("init", "edit", "approve", …).
func taskType(kc git.KptCommit) string {
	var task struct {
		Type string `json:"type"`
	}
	if len(kc.Task) == 0 || json.Unmarshal(kc.Task, &task) != nil {
		return ""
	}
	return task.Type
}

// draftCreator returns the PackageDraft UID recorded in the first commit of a revision's
// history, or "" when no PackageDraft created it.
func draftCreator(history []git.Commit) string {
	if len(history) == 0 {
		return ""
	}
	if v := trailerValues(history[len(history)-1].Message, draftTrailer); len(v) > 0 {
		return v[0]
	}
	return ""
}

// revisionEditors returns who edited a revision's content: the authors and co-authors of its
// edit commits, each once.
func revisionEditors(history []git.Commit) []string {
	var editors []string
	add := func(name string) {
		if name != "" && !slices.Contains(editors, name) {
			editors = append(editors, name)
		}
	}
	for _, c := range history {
		kc, _ := git.ParseKptCommit(c.Message)
		if taskType(kc) != "edit" {
			continue
		}
		add(c.AuthorName)
		for _, v := range trailerValues(c.Message, coAuthorTrailer) {
			name, _, _ := strings.Cut(v, " <")
			add(strings.TrimSpace(name))
		}
	}
	return editors
}

// trailerValues returns the values of the lines of message that start with key.
func trailerValues(message, key string) []string {
	var out []string
	for _, line := range strings.Split(message, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), key); ok {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}
