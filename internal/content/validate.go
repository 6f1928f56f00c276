package content

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"kpo.dev/kpo/internal/kptfile"
)

// Validate checks a package's files and returns every problem found, joined, each naming
// its file:
//   - every path passes ValidatePath;
//   - every .yaml and .yml file parses as YAML (several documents separated by "---" are
//     fine) without a key defined twice in one mapping, and the error gives the line;
//   - every file named Kptfile, the root one and those of nested subpackages alike, is a
//     valid kpt.dev/v1 Kptfile (kptfile.Decode). kpt treats any directory holding a
//     Kptfile as a package, so a broken nested Kptfile breaks rendering just as a broken
//     root one does.
//
// Other files (README.md, scripts, binaries) are not inspected.
func Validate(files map[string][]byte) error {
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := ValidatePath(p); err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case path.Base(p) == kptfile.FileName:
			if _, err := kptfile.Decode(files[p]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
			}
		case strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml"):
			if err := parseYAML(files[p]); err != nil {
				errs = append(errs, fmt.Errorf("%s: invalid YAML: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// parseYAML parses every document of data and returns the first syntax error or
// duplicate mapping key.
func parseYAML(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if err := checkDuplicateKeys(&doc); err != nil {
			return err
		}
	}
}

// checkDuplicateKeys refuses a mapping that defines a key twice. The YAML spec forbids it
// and the API server refuses such a resource, but parsing into a node tree (as kyaml and
// kpt do) silently keeps both, so the mistake would otherwise surface only at apply time.
func checkDuplicateKeys(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			if key.Kind != yaml.ScalarNode || key.Value == "<<" {
				continue
			}
			if first, ok := seen[key.Value]; ok {
				return fmt.Errorf("line %d: key %q is defined again (first at line %d): keep one of them", key.Line, key.Value, first)
			}
			seen[key.Value] = key.Line
		}
	}
	for _, child := range n.Content {
		if err := checkDuplicateKeys(child); err != nil {
			return err
		}
	}
	return nil
}
