package kptfile

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	yaml "go.yaml.in/yaml/v3"
)

// realisticKptfile is a downstream package's Kptfile as kpt writes it: kpt's field order,
// two-space indentation, sequences indented under their key.
const realisticKptfile = `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: wordpress
  namespace: blog
  labels:
    team: web
  annotations:
    config.kubernetes.io/local-config: "true"
upstream:
  type: git
  git:
    repo: https://github.com/kptdev/kpt
    directory: /package-examples/wordpress
    ref: v1.0.0
  updateStrategy: resource-merge
upstreamLock:
  type: git
  git:
    repo: https://github.com/kptdev/kpt
    directory: /package-examples/wordpress
    ref: package-examples/wordpress/v1.0.0
    commit: 3f1e2a4bde0c2a7f6e2b0c1d9a8e7f6a5b4c3d2e
info:
  site: https://example.com/wordpress
  emails:
    - web@example.com
  license: Apache-2.0
  licenseFile: LICENSE
  description: A WordPress blog with a MySQL database
  keywords:
    - wordpress
    - blog
  man: docs/README.md
  readinessGates:
    - conditionType: DatabaseReady
pipeline:
  mutators:
    - image: gcr.io/kpt-fn/set-labels:v0.2.0
      configMap:
        app: wordpress
        tier: frontend
      name: label-frontend
      selectors:
        - kind: Deployment
          name: wordpress
        - apiVersion: v1
          kind: Service
          labels:
            tier: frontend
      exclude:
        - namespace: kube-system
          annotations:
            kpo.dev/skip: "true"
    - exec: ./bin/set-image
      configPath: fn-config/set-image.yaml
  validators:
    - image: gcr.io/kpt-fn/kubeconform:v0.1
inventory:
  namespace: blog
  name: inventory-wordpress
  inventoryID: 2a6b9c1e-wordpress
status:
  conditions:
    - type: DatabaseReady
      status: "False"
      reason: Pending
      message: waiting for the database
`

func TestDecode_realisticKptfile_roundTripsByteForByte(t *testing.T) {
	g := NewWithT(t)

	k, err := Decode([]byte(realisticKptfile))
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(k.Metadata.Name).To(Equal("wordpress"))
	g.Expect(k.Upstream.UpdateStrategy).To(Equal(ResourceMerge))
	g.Expect(k.UpstreamLock.Git.Commit).To(Equal("3f1e2a4bde0c2a7f6e2b0c1d9a8e7f6a5b4c3d2e"))
	g.Expect(k.Info.ReadinessGates).To(Equal([]ReadinessGate{{ConditionType: "DatabaseReady"}}))
	g.Expect(k.Pipeline.Mutators).To(HaveLen(2))
	g.Expect(k.Pipeline.Mutators[0].Selectors[1]).To(Equal(Selector{
		APIVersion: "v1", Kind: "Service", Labels: map[string]string{"tier": "frontend"},
	}))
	g.Expect(k.Pipeline.Mutators[0].Exclusions).To(Equal([]Selector{{
		Namespace: "kube-system", Annotations: map[string]string{"kpo.dev/skip": "true"},
	}}))
	g.Expect(k.Pipeline.Mutators[1].ConfigPath).To(Equal("fn-config/set-image.yaml"))
	g.Expect(k.Status.Conditions[0].Status).To(Equal(ConditionFalse))

	out, err := Encode(k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out)).To(Equal(realisticKptfile))
}

func TestDecode_renderStatusWrittenByKpt_isKept(t *testing.T) {
	g := NewWithT(t)
	in := `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: app
status:
  renderStatus:
    mutationSteps:
      - image: gcr.io/kpt-fn/set-namespace:v0.4
        stderr: boom
        exitCode: 1
        errorResults:
          - message: namespace is required
            severity: error
            resourceRef:
              kind: ConfigMap
              name: cfg
            field:
              path: data.namespace
            file:
              path: fn-config.yaml
              index: 1
    errorSummary: set-namespace failed
`
	k, err := Decode([]byte(in))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k.Status.RenderStatus.MutationSteps[0].ExitCode).To(Equal(1))
	g.Expect(k.Status.RenderStatus.MutationSteps[0].ErrorResults[0].File).To(Equal(&FileRef{Path: "fn-config.yaml", Index: 1}))

	out, err := Encode(k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out)).To(Equal(in))
}

func TestDecode_compactSequences_areAccepted(t *testing.T) {
	g := NewWithT(t)
	// kpt pkg init writes sequences without indentation under their key.
	k, err := Decode([]byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\ninfo:\n  keywords:\n  - a\n  - b\n"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k.Info.Keywords).To(Equal([]string{"a", "b"}))
}

func TestDecode_everyUpdateStrategy_isAccepted(t *testing.T) {
	for _, s := range UpdateStrategies {
		t.Run(string(s), func(t *testing.T) {
			g := NewWithT(t)
			k, err := Decode([]byte("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\nupstream:\n  updateStrategy: " + string(s) + "\n"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(k.Upstream.UpdateStrategy).To(Equal(s))
		})
	}
}

func TestDecode_invalidKptfile_isRefusedWithAMessageSayingWhatToFix(t *testing.T) {
	const head = "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n"
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error, in any order
	}{
		{
			name: "empty file",
			in:   "",
			want: []string{"the Kptfile is empty"},
		},
		{
			name: "not YAML",
			in:   "apiVersion: kpt.dev/v1\nkind: [Kptfile\n",
			want: []string{"not valid YAML", "line "},
		},
		{
			name: "not a mapping",
			in:   "- a\n- b\n",
			want: []string{"must be a YAML mapping"},
		},
		{
			name: "two documents",
			in:   head + "---\n" + head,
			want: []string{"second YAML document", "exactly one document"},
		},
		{
			name: "old apiVersion",
			in:   "apiVersion: kpt.dev/v1alpha1\nkind: Kptfile\nmetadata:\n  name: app\n",
			want: []string{`apiVersion "kpt.dev/v1alpha1" is an old Kptfile version`, "convert the package to kpt.dev/v1"},
		},
		{
			name: "foreign apiVersion",
			in:   "apiVersion: v1\nkind: Kptfile\nmetadata:\n  name: app\n",
			want: []string{`apiVersion "v1" is not a Kptfile apiVersion: set apiVersion: kpt.dev/v1`},
		},
		{
			name: "missing apiVersion",
			in:   "kind: Kptfile\nmetadata:\n  name: app\n",
			want: []string{"apiVersion is missing"},
		},
		{
			name: "wrong kind",
			in:   "apiVersion: kpt.dev/v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
			want: []string{`kind "ConfigMap" is not Kptfile: set kind: Kptfile`},
		},
		{
			name: "missing name",
			in:   "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  namespace: x\n",
			want: []string{"metadata.name is missing"},
		},
		{
			name: "unknown top-level field",
			in:   head + "upstreem:\n  type: git\n",
			want: []string{`line 5: unknown field "upstreem" at the top level`, "known fields: apiVersion, info, inventory, kind, metadata, pipeline, status, upstream, upstreamLock"},
		},
		{
			name: "unknown nested field names its path",
			in:   head + "pipeline:\n  mutators:\n    - image: a\n    - image: b\n      selectors:\n        - kinds: Deployment\n",
			want: []string{`line 10: unknown field "kinds" in pipeline.mutators[1].selectors[0]`},
		},
		{
			name: "unknown metadata field",
			in:   head + "  uid: 1234\n",
			want: []string{`unknown field "uid" in metadata`},
		},
		{
			name: "duplicate key",
			in:   head + "  name: other\n",
			want: []string{`line 5: mapping key "name" already defined at line 4`},
		},
		{
			name: "wrong type",
			in:   head + "info:\n  keywords: blog\n",
			want: []string{"line 6: cannot unmarshal"},
		},
		{
			name: "function with neither image nor exec",
			in:   head + "pipeline:\n  mutators:\n    - name: nothing\n",
			want: []string{"pipeline.mutators[0] names no function: set image"},
		},
		{
			name: "function with both image and exec",
			in:   head + "pipeline:\n  validators:\n    - image: a\n      exec: b\n",
			want: []string{`pipeline.validators[0] sets both image "a" and exec "b": keep only one`},
		},
		{
			name: "function with configPath and configMap",
			in:   head + "pipeline:\n  mutators:\n    - image: a\n      configPath: c.yaml\n      configMap:\n        k: v\n",
			want: []string{"pipeline.mutators[0] sets both configPath and configMap"},
		},
		{
			name: "configPath outside the package",
			in:   head + "pipeline:\n  mutators:\n    - image: a\n      configPath: ../secrets.yaml\n",
			want: []string{`pipeline.mutators[0].configPath "../secrets.yaml" leaves the package`},
		},
		{
			name: "absolute configPath",
			in:   head + "pipeline:\n  mutators:\n    - image: a\n      configPath: /etc/passwd\n",
			want: []string{`configPath "/etc/passwd" is absolute`},
		},
		{
			name: "unknown update strategy",
			in:   head + "upstream:\n  type: git\n  updateStrategy: rebase\n",
			want: []string{`upstream.updateStrategy "rebase" is not an update strategy: use one of "resource-merge", "fast-forward", "force-delete-replace", "copy-merge"`},
		},
		{
			name: "unknown upstream type",
			in:   head + "upstream:\n  type: oci\n",
			want: []string{`upstream.type "oci" is not supported: use "git"`},
		},
		{
			name: "unknown upstreamLock type",
			in:   head + "upstreamLock:\n  type: svn\n",
			want: []string{`upstreamLock.type "svn" is not supported`},
		},
		{
			name: "bad condition status",
			in:   head + "status:\n  conditions:\n    - type: Ready\n      status: \"yes\"\n",
			want: []string{`status.conditions[0].status "yes" is not a condition status`},
		},
		{
			name: "empty readiness gate",
			in:   head + "info:\n  readinessGates:\n    - conditionType: \"\"\n",
			want: []string{"info.readinessGates[0].conditionType is empty"},
		},
		{
			name: "null function",
			in:   head + "pipeline:\n  mutators:\n    -\n    - image: a\n",
			want: []string{`line 7: pipeline.mutators[0] is empty (null): fill it in or remove its "-"`},
		},
		{
			name: "null list items",
			in:   head + "info:\n  keywords: [~, a]\nstatus:\n  conditions:\n    - null\n",
			want: []string{"line 6: info.keywords[0] is empty (null)", "line 9: status.conditions[0] is empty (null)"},
		},
		{
			name: "every problem is reported at once",
			in:   "apiVersion: kpt.dev/v1beta1\nkind: Kptfile\nmetadata:\n  labelz: {}\npipeline:\n  mutators:\n    - {}\n",
			want: []string{`unknown field "labelz"`, "old Kptfile version", "metadata.name is missing", "names no function"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			k, err := Decode([]byte(tt.in))
			g.Expect(k).To(BeNil())
			g.Expect(err).To(HaveOccurred())
			g.Expect(errors.Is(err, ErrInvalid)).To(BeTrue(), "error should wrap ErrInvalid")
			for _, w := range tt.want {
				g.Expect(err.Error()).To(ContainSubstring(w))
			}
		})
	}
}

func TestEncode_minimalKptfile_omitsEmptyFields(t *testing.T) {
	g := NewWithT(t)
	out, err := Encode(&Kptfile{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   ObjectMeta{Name: "app"},
		Pipeline:   &Pipeline{Mutators: []Function{{Image: "set-namespace:v0.4", ConfigMap: map[string]string{"namespace": "prod"}}}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out)).To(Equal(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: app
pipeline:
  mutators:
    - image: set-namespace:v0.4
      configMap:
        namespace: prod
`))
}

func TestEncode_nilKptfile_isAnError(t *testing.T) {
	g := NewWithT(t)
	_, err := Encode(nil)
	g.Expect(err).To(HaveOccurred())
}

func TestNewInit_writesWhatKptPkgInitWrites(t *testing.T) {
	tests := []struct {
		name, pkg, description, site string
		keywords                     []string
		want                         *Kptfile
	}{
		{
			name: "defaults the description",
			pkg:  "nginx",
			want: &Kptfile{
				APIVersion: APIVersion, Kind: Kind,
				Metadata: ObjectMeta{Name: "nginx", Annotations: map[string]string{LocalConfigAnnotation: "true"}},
				Info:     &PackageInfo{Description: DefaultDescription},
			},
		},
		{
			name: "names the package after the last path segment",
			pkg:  "catalog/web/nginx/", description: "NGINX web server",
			keywords: []string{"web", "proxy"}, site: "https://nginx.org",
			want: &Kptfile{
				APIVersion: APIVersion, Kind: Kind,
				Metadata: ObjectMeta{Name: "nginx", Annotations: map[string]string{LocalConfigAnnotation: "true"}},
				Info: &PackageInfo{
					Site: "https://nginx.org", Description: "NGINX web server", Keywords: []string{"web", "proxy"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(NewInit(tt.pkg, tt.description, tt.keywords, tt.site)).To(Equal(tt.want))
		})
	}
}

func TestInitFiles_writesKptfileReadmeAndPackageContext(t *testing.T) {
	g := NewWithT(t)
	files, err := InitFiles("catalog/nginx", "", []string{"web"}, "https://nginx.org")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).To(HaveLen(3))
	g.Expect(files).To(HaveKey(FileName))
	g.Expect(files).To(HaveKey(ReadmeFile))
	g.Expect(files).To(HaveKey(PackageContextFile))

	g.Expect(string(files[FileName])).To(Equal(`apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: nginx
  annotations:
    config.kubernetes.io/local-config: "true"
info:
  site: https://nginx.org
  description: sample description
  keywords:
    - web
`))
	_, err = Decode(files[FileName])
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(string(files[ReadmeFile])).To(HavePrefix("# nginx\n\n## Description\nsample description\n"))

	var ctx struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name        string            `yaml:"name"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
	}
	g.Expect(yaml.Unmarshal(files[PackageContextFile], &ctx)).To(Succeed())
	g.Expect(ctx.APIVersion).To(Equal("v1"))
	g.Expect(ctx.Kind).To(Equal("ConfigMap"))
	g.Expect(ctx.Metadata.Name).To(Equal(PackageContextName))
	g.Expect(ctx.Metadata.Annotations).To(Equal(map[string]string{LocalConfigAnnotation: "true"}))
	g.Expect(ctx.Data).To(Equal(map[string]string{"name": "example"}))
}

func TestInitFiles_emptyName_isRefused(t *testing.T) {
	for _, name := range []string{"", "/", "//"} {
		g := NewWithT(t)
		_, err := InitFiles(name, "d", nil, "")
		g.Expect(err).To(MatchError(ContainSubstring("package name is empty")), "name %q", name)
	}
}

func TestUpdateStrategies_listsEveryStrategyOnce(t *testing.T) {
	g := NewWithT(t)
	var names []string
	for _, s := range UpdateStrategies {
		names = append(names, string(s))
	}
	g.Expect(strings.Join(names, ",")).To(Equal("resource-merge,fast-forward,force-delete-replace,copy-merge"))
}

func TestDecode_manyAliases_takesLinearTime(t *testing.T) {
	// Each of n functions aliases one with n aliased selectors: n² nodes once expanded, from
	// a file of a few tens of kilobytes. Walking every expansion took over ten seconds.
	const n = 3000
	var b strings.Builder
	b.WriteString("apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\npipeline:\n  mutators:\n")
	b.WriteString("    - &f {image: a, selectors: [&s {kind: Deployment}" + strings.Repeat(", *s", n) + "]}\n")
	b.WriteString(strings.Repeat("    - *f\n", n))
	start := time.Now()
	_, _ = Decode([]byte(b.String()))
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Decode of a %d-byte Kptfile took %s", b.Len(), d)
	}
}
