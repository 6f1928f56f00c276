package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ClusterConfigFiles are the files of config/ besides the CRDs that a cluster install applies
// and that the tests and `make run` install too, applied in this order. Each policy file holds
// its policy before its binding (config/policies/kustomization.yaml lists the same files).
var ClusterConfigFiles = []string{
	filepath.Join("config", "rbac", "user_roles.yaml"),
	filepath.Join("config", "policies", "approve-guard.yaml"),
	filepath.Join("config", "policies", "readiness-gates.yaml"),
	filepath.Join("config", "policies", "approved-by-stamp.yaml"),
	filepath.Join("config", "policies", "approved-by-guard.yaml"),
	filepath.Join("config", "policies", "declarative-approval.yaml"),
	filepath.Join("config", "policies", "manager-creates-revisions.yaml"),
	filepath.Join("config", "policies", "deletion-guard.yaml"),
	filepath.Join("config", "policies", "edited-by-stamp.yaml"),
	filepath.Join("config", "policies", "resolve-conflicts-stamp.yaml"),
	filepath.Join("config", "policies", "read-only-content.yaml"),
	filepath.Join("config", "policies", "manager-owned-labels.yaml"),
	filepath.Join("config", "policies", "packagevariant-approved-by-stamp.yaml"),
	filepath.Join("config", "policies", "packagevariant-approval.yaml"),
	filepath.Join("config", "functions", "functions.yaml"),
}

// InstallConfig server-side applies ClusterConfigFiles (the CRDs are installed by Start).
func InstallConfig(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	for _, name := range ClusterConfigFiles {
		data, err := os.ReadFile(filepath.Join(RepoRoot(), name)) //nolint:gosec // G304: one of the repository's own ClusterConfigFiles
		if err != nil {
			return err
		}
		objs, err := decodeAll(data)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for _, obj := range objs {
			obj.SetManagedFields(nil)
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("kpo-install"), client.ForceOwnership); err != nil {
				return fmt.Errorf("%s: applying %s %s: %w", name, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
	return nil
}

func decodeAll(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(obj.Object) > 0 {
			out = append(out, obj)
		}
	}
}
