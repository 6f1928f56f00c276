package scale

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"kpo.dev/kpo/internal/gitserver"
)

// Size is one point of the benchmark: Repositories × Packages × Tags published revisions,
// plus Drafts draft branches per repository, of packages of about PackageBytes.
type Size struct {
	Repositories, Packages, Tags int
	// Drafts is the number of draft branches per repository (drafts/<package>/bench of the
	// first Drafts packages).
	Drafts int
	// PackageBytes is the approximate size of every package's files.
	PackageBytes int
}

// String is the size as the -sizes flag spells it: RxPxT.
func (s Size) String() string {
	return fmt.Sprintf("%dx%dx%d", s.Repositories, s.Packages, s.Tags)
}

// Published is the number of published revisions (tags) of all repositories.
func (s Size) Published() int { return s.Repositories * s.Packages * s.Tags }

// RevisionsPerRepository is the number of PackageRevisions kpo makes of one repository: every
// tag, every package on the registered branch (revision -1) and every draft.
func (s Size) RevisionsPerRepository() int { return s.Packages*(s.Tags+1) + min(s.Drafts, s.Packages) }

// PackageRevisions is the number of PackageRevisions of all repositories.
func (s Size) PackageRevisions() int { return s.Repositories * s.RevisionsPerRepository() }

// ParseSizes parses "RxPxT[,RxPxT…]" (e.g. "3x50x3,10x100x3").
func ParseSizes(text string, drafts, packageBytes int) ([]Size, error) {
	var sizes []Size
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var s Size
		if _, err := fmt.Sscanf(part, "%dx%dx%d", &s.Repositories, &s.Packages, &s.Tags); err != nil ||
			s.Repositories < 1 || s.Packages < 1 || s.Tags < 1 || fmt.Sprintf("%dx%dx%d", s.Repositories, s.Packages, s.Tags) != part {
			return nil, fmt.Errorf("size %q: want RxPxT with positive integers, e.g. 10x100x3", part)
		}
		s.Drafts, s.PackageBytes = drafts, packageBytes
		sizes = append(sizes, s)
	}
	if len(sizes) == 0 {
		return nil, fmt.Errorf("no sizes in %q", text)
	}
	return sizes, nil
}

// RepositoryName is the name of the i-th repository (Git and Repository object).
func RepositoryName(i int) string { return fmt.Sprintf("repo-%03d", i) }

// PackageName is the name (and path) of the i-th package of a repository.
func PackageName(i int) string { return fmt.Sprintf("pkg-%04d", i) }

// DraftWorkspace is the workspace of the generated drafts.
const DraftWorkspace = "bench"

// PackageFiles returns the files of revision rev of package pkg of repository repo, paths
// relative to the package: a Kptfile, a Deployment whose image names the revision, a Service
// and ConfigMaps filled with data derived from the names until about size bytes. Everything
// is deterministic, every .yaml file is a Kubernetes resource, and only deployment.yaml
// changes from one revision to the next.
func PackageFiles(repo, pkg string, rev, size int) map[string]string {
	files := map[string]string{
		"Kptfile": fmt.Sprintf(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: %s
  annotations:
    config.kubernetes.io/local-config: "true"
info:
  description: Scale benchmark package %s of %s
`, pkg, pkg, repo),
		"deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  labels:
    app: %[1]s
spec:
  replicas: 2
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      containers:
      - name: app
        image: registry.example.com/%[2]s/%[1]s:v%[3]d
        ports:
        - containerPort: 8080
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
`, pkg, repo, rev),
		"service.yaml": fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector:
    app: %[1]s
  ports:
  - port: 80
    targetPort: 8080
`, pkg),
	}
	total := 0
	for _, f := range files {
		total += len(f)
	}
	for i := 0; total < size; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-settings-%d\ndata:\n", pkg, i)
		for k := 0; k < 12 && total+b.Len() < size; k++ {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d/%d", repo, pkg, i, k)))
			fmt.Fprintf(&b, "  key-%02d: %s\n", k, hex.EncodeToString(sum[:]))
		}
		files[fmt.Sprintf("settings-%d.yaml", i)] = b.String()
		total += b.Len()
	}
	return files
}

// kptLine is the commit line Porch and kpo write on a publishing commit.
func kptLine(pkg, ws string, rev int) string {
	return fmt.Sprintf(`kpt:{"package":%q,"workspaceName":%q,"revision":"%d","task":{"type":"approve"}}`, pkg, ws, rev)
}

// PublishMessage is the message of the commit that publishes revision rev of pkg.
func PublishMessage(pkg string, rev int) string {
	return fmt.Sprintf("Approve %s v%d\n\n%s\nApproved-by: bench-approver\n", pkg, rev, kptLine(pkg, fmt.Sprintf("v%d", rev), rev))
}

// GenerateRepository creates the bare repository name on srv with git fast-import: for each
// tag t in 1..Tags, one commit on main per package (its revision t, with the kpt line and an
// Approved-by trailer) tagged <package>/v<t>; then Drafts draft branches off main, each a
// commit changing one package. The refs are then packed, as a Git host keeps them (git gc does
// the same): git http-backend reads every loose ref file for each request, which would make
// the test server slower than a real one.
func GenerateRepository(_ context.Context, srv *gitserver.Server, name string, size Size) error {
	_, err := srv.Import(name, "kpo bench", "bench@example.com", func(f *gitserver.FastImport) error {
		var mainHead int
		for t := 1; t <= size.Tags; t++ {
			for p := range size.Packages {
				pkg := PackageName(p)
				mainHead = f.Commit("refs/heads/main", "", PublishMessage(pkg, t), pkg, PackageFiles(name, pkg, t, size.PackageBytes))
				f.Tag(fmt.Sprintf("%s/v%d", pkg, t), mainHead)
			}
		}
		for d := range min(size.Drafts, size.Packages) {
			pkg := PackageName(d)
			f.Commit(fmt.Sprintf("refs/heads/drafts/%s/%s", pkg, DraftWorkspace), fmt.Sprintf(":%d", mainHead),
				"Draft "+pkg, pkg, PackageFiles(name, pkg, size.Tags+1, size.PackageBytes))
		}
		return nil
	})
	return err
}

// PushTag publishes revision rev of pkg as another Git client would: a commit on main with the
// package's files of that revision and tag <pkg>/v<rev>.
func PushTag(repo *gitserver.Repo, pkg string, rev, size int) error {
	files := map[string]string{}
	for p, content := range PackageFiles(repo.Name, pkg, rev, size) {
		files[pkg+"/"+p] = content
	}
	hash, err := repo.Commit("main", gitserver.Change{Files: files, Message: PublishMessage(pkg, rev)})
	if err != nil {
		return err
	}
	return repo.Tag(fmt.Sprintf("%s/v%d", pkg, rev), hash)
}
