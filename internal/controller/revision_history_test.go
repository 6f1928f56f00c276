package controller

import (
	"testing"

	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/git"
)

func TestRevisionHistory_creatorAndEditorsComeFromTheCommits(t *testing.T) {
	g := NewWithT(t)
	line := func(task string) string {
		return git.KptCommit{Package: "web", WorkspaceName: "w", Task: []byte(`{"type":"` + task + `"}`)}.Line()
	}
	history := []git.Commit{ // newest first, as revisionHistory returns them
		{AuthorName: "carol", Message: "Edit web\n\n" + coAuthorTrailer + "dave <dave>\n\n" + line("edit")},
		{AuthorName: "alice", Message: "Edit web\n\n" + line("edit")},
		{AuthorName: "carol", Message: "Edit web\n\n" + line("edit")},
		{AuthorName: "kpo", Message: "Init web\n\n" + draftTrailer + "uid-1\n\n" + line("init")},
	}
	g.Expect(draftCreator(history)).To(Equal("uid-1"))
	g.Expect(revisionEditors(history)).To(Equal([]string{"carol", "dave", "alice"}), "the manager that created it is no editor")
	g.Expect(draftCreator(history[:1])).To(BeEmpty(), "the creator is in the first commit only")
	g.Expect(draftCreator(nil)).To(BeEmpty())
}
