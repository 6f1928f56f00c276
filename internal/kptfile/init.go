package kptfile

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// DefaultDescription is the description `kpt pkg init` writes when none is given.
const DefaultDescription = "sample description"

// PackageContextFile is the file `kpt pkg init` writes next to the Kptfile: a local-config
// ConfigMap named PackageContextName that functions (set-namespace, for one) read the
// package's name from. In a blueprint its data.name is the placeholder "example"; a
// deployment clone sets it to the real name.
const PackageContextFile = "package-context.yaml"

// PackageContextName is the name of the ConfigMap in PackageContextFile.
const PackageContextName = "kptfile.kpt.dev"

// ReadmeFile is the package documentation file `kpt pkg init` writes.
const ReadmeFile = "README.md"

// NewInit returns the Kptfile `kpt pkg init` writes for a new package: metadata.name is
// the last segment of name (a package path such as "catalog/nginx" gives "nginx"), the
// Kptfile is marked local-config so it is never applied to a cluster, and info carries the
// description (DefaultDescription when empty), keywords and site.
func NewInit(name, description string, keywords []string, site string) *Kptfile {
	if description == "" {
		description = DefaultDescription
	}
	return &Kptfile{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata: ObjectMeta{
			Name:        packageName(name),
			Annotations: map[string]string{LocalConfigAnnotation: "true"},
		},
		Info: &PackageInfo{
			Site:        site,
			Description: description,
			Keywords:    keywords,
		},
	}
}

// InitFiles returns the files of a new package as `kpt pkg init` creates them: the Kptfile
// of NewInit, a README.md naming and describing the package, and package-context.yaml
// (see PackageContextFile). kpt pkg init writes these three files, and Porch's init task,
// which kpo replaces, writes the same, so a package kpo initialises renders the same way
// under kpt. The README's wording is kpo's own, not byte-identical to kpt's template.
func InitFiles(name, description string, keywords []string, site string) (map[string][]byte, error) {
	k := NewInit(name, description, keywords, site)
	if k.Metadata.Name == "" {
		return nil, errors.New("package name is empty: give the package a name, e.g. \"nginx\" or \"catalog/nginx\"")
	}
	kptfile, err := Encode(k)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		FileName:           kptfile,
		ReadmeFile:         []byte(readme(k.Metadata.Name, k.Info.Description)),
		PackageContextFile: PackageContext("example"),
	}, nil
}

// packageName is the last segment of a slash-separated package path.
func packageName(name string) string {
	name = strings.Trim(name, "/")
	if name == "" {
		return ""
	}
	return path.Base(name)
}

func readme(name, description string) string {
	return fmt.Sprintf("# %s\n\n## Description\n%s\n\n"+
		"## Usage\n\n"+
		"Fetch the package:\n\n    kpt pkg get REPO_URI[.git]/PKG_PATH[@VERSION] %s\n\n"+
		"Show its resources:\n\n    kpt pkg tree %s\n\n"+
		"Render its function pipeline:\n\n    kpt fn render %s\n",
		name, description, name, name, name)
}

// PackageContext is the package-context.yaml of a package: a local-config ConfigMap named
// kptfile.kpt.dev whose data.name is the name a deployment instance of the package has, as
// kpt's --for-deployment and Porch's clone into a deployment repository write it.
func PackageContext(name string) []byte {
	return []byte("apiVersion: v1\n" +
		"kind: ConfigMap\n" +
		"metadata:\n" +
		"  name: " + PackageContextName + "\n" +
		"  annotations:\n" +
		"    " + LocalConfigAnnotation + ": \"true\"\n" +
		"data:\n" +
		"  name: " + name + "\n")
}
