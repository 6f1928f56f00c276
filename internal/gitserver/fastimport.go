package gitserver

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
)

// FastImport writes a git fast-import stream: commits of whole packages and tags on them, one
// second apart from 2024-01-01, committed by Committer.
type FastImport struct {
	// Committer and Email name the committer (and author) of every commit.
	Committer, Email string

	w    *bufio.Writer
	mark int
	when int64
}

// Commit writes a commit on ref with message msg, on top of from (a mark ":N" or a commit;
// empty continues ref), setting the files of directory dir (paths relative to it), and
// returns its mark.
func (f *FastImport) Commit(ref, from, msg, dir string, files map[string]string) int {
	f.mark++
	f.when++
	fmt.Fprintf(f.w, "commit %s\nmark :%d\ncommitter %s <%s> %d +0000\n", ref, f.mark, f.Committer, f.Email, f.when)
	f.data(msg)
	if from != "" {
		fmt.Fprintf(f.w, "from %s\n", from)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(f.w, "M 100644 inline %s/%s\n", dir, p)
		f.data(files[p])
	}
	fmt.Fprint(f.w, "\n")
	return f.mark
}

// Tag points refs/tags/name at the commit of mark.
func (f *FastImport) Tag(name string, mark int) {
	fmt.Fprintf(f.w, "reset refs/tags/%s\nfrom :%d\n\n", name, mark)
}

func (f *FastImport) data(s string) { fmt.Fprintf(f.w, "data %d\n%s\n", len(s), s) }

// Import creates the bare repository name with git fast-import, fed by write, and packs its
// refs as a Git host keeps them (git gc does the same): git http-backend reads every loose ref
// file for each request, which would make the test server slower than a real one.
func (s *Server) Import(name, committer, email string, write func(*FastImport) error) (*Repo, error) {
	r, err := s.CreateRepo(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("git", "fast-import", "--quiet", "--done")
	cmd.Dir = r.Dir
	cmd.Env = append(gitEnv(), "GIT_DIR="+r.Dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting git fast-import: %w", err)
	}
	werr := writeStream(stdin, committer, email, write)
	cerr := stdin.Close()
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git fast-import of %s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	if werr != nil {
		return nil, werr
	}
	if cerr != nil {
		return nil, cerr
	}
	if _, err := runGit(r.Dir, nil, nil, "pack-refs", "--all"); err != nil {
		return nil, err
	}
	return r, nil
}

// writeStream runs write on a FastImport over out and ends the stream.
func writeStream(out io.Writer, committer, email string, write func(*FastImport) error) error {
	f := &FastImport{Committer: committer, Email: email, w: bufio.NewWriterSize(out, 1<<20), when: 1704067200}
	if err := write(f); err != nil {
		return err
	}
	fmt.Fprint(f.w, "done\n")
	return f.w.Flush()
}
