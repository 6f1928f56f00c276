package gitserver

import "fmt"

// SeedSamples creates the repositories config/samples registers and the README tour uses:
// blueprints, with package basens published as v1, and an empty deployments repository.
func SeedSamples(srv *Server) error {
	blueprints, err := srv.CreateRepo("blueprints")
	if err != nil {
		return err
	}
	v1, err := blueprints.Commit("main", Change{
		Message: "Publish basens v1\n\n" + `kpt:{"package":"basens","workspaceName":"v1","revision":1,"task":{"type":"init"}}`,
		Files: map[string]string{
			"basens/Kptfile": `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: basens
  annotations:
    config.kubernetes.io/local-config: "true"
info:
  description: A namespace for an application
`,
			"basens/namespace.yaml": `apiVersion: v1
kind: Namespace
metadata:
  name: example
`,
			"basens/README.md": "# basens\n\nA namespace for an application.\n",
		},
	})
	if err != nil {
		return fmt.Errorf("seeding blueprints: %w", err)
	}
	if err := blueprints.Tag("basens/v1", v1); err != nil {
		return err
	}
	deployments, err := srv.CreateRepo("deployments")
	if err != nil {
		return err
	}
	_, err = deployments.Commit("main", Change{Message: "Initial commit", Files: map[string]string{"README.md": "# deployments\n"}})
	return err
}
