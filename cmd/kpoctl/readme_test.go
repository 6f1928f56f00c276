package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"kpo.dev/kpo/internal/gitserver"
	"kpo.dev/kpo/internal/kpoctl"
	"kpo.dev/kpo/internal/testenv"
)

// The address and credentials of `make run`'s Git server, as the README's tour uses them.
const (
	readmeGitURL      = "http://127.0.0.1:8180"
	readmeGitUser     = "kpo"
	readmeGitPassword = "kpo-local-dev"
)

// consoleCommand is one `$ ` line of a console block of the README and the output printed
// under it.
type consoleCommand struct {
	line, output string
}

// readmeConsole returns the commands of the console blocks of the README section whose
// heading is heading (up to the next heading).
func readmeConsole(t *testing.T, heading string) []consoleCommand {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	var cmds []consoleCommand
	in := false
	for line := range strings.SplitSeq(section, "\n") {
		switch {
		case line == "```console":
			in = true
		case line == "```":
			in = false
		case in && strings.HasPrefix(line, "$ "):
			cmds = append(cmds, consoleCommand{line: strings.TrimPrefix(line, "$ ")})
		case in && len(cmds) > 0:
			cmds[len(cmds)-1].output += line + "\n"
		}
	}
	return cmds
}

// TestReadme_tourWithKpoctl runs the README's kpoctl tour as written, against the sample
// repositories `make run` serves (gitserver.SeedSamples), and checks that every command prints
// what the README shows: kpoctl's output exactly (but for the Git server's port), a shell
// command's words. The README stays true.
func TestReadme_tourWithKpoctl(t *testing.T) {
	g := NewWithT(t)
	cmds := readmeConsole(t, "### With kpoctl")
	g.Expect(len(cmds)).To(BeNumerically(">=", 10), "the tour's commands")

	srv, err := gitserver.Start(gitserver.Options{Root: t.TempDir(), Username: readmeGitUser, Password: readmeGitPassword})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = srv.Close() })
	g.Expect(gitserver.SeedSamples(srv)).To(Succeed())
	local := func(s string) string { return strings.ReplaceAll(s, readmeGitURL, srv.URL()) }

	_, dir, kubeconfig := newWorkspace(t)
	t.Chdir(dir) // the tour's paths are relative
	for _, c := range cmds {
		line, want := local(c.line), local(c.output)
		if rest, ok := strings.CutPrefix(line, "kpoctl "); ok {
			var stdout, stderr bytes.Buffer
			code := kpoctl.Run(context.Background(), append([]string{"--kubeconfig", kubeconfig}, strings.Fields(rest)...),
				kpoctl.IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr})
			g.Expect(code).To(Equal(0), "$ %s\n%s", c.line, stderr.String())
			g.Expect(stdout.String()).To(Equal(want), "$ %s", c.line)
			continue
		}
		out, err := exec.Command("sh", "-c", line).CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), "$ %s\n%s", c.line, out)
		g.Expect(strings.Fields(string(out))).To(Equal(strings.Fields(want)), "$ %s", c.line)
	}

	// "Git now has tag my-app/v1 on a commit of main".
	repo, err := srv.OpenRepo("deployments")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.ReadFile("refs/tags/my-app/v1", "my-app/Kptfile")
	g.Expect(err).NotTo(HaveOccurred(), "tag my-app/v1")
}
