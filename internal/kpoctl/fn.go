package kpoctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	goyaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/fn"
	"kpo.dev/kpo/internal/fn/builtin"
	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// outputStdout is kpt's -o value that writes the rendered resources to stdout.
const outputStdout = "stdout"

// resultsFileName is the file --results-dir gets, as kpt names it.
const resultsFileName = "results.yaml"

// newFnCommand is kpt's `fn` group on local packages: no cluster involved.
func newFnCommand(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fn",
		Short: "Render and evaluate KRM functions on a local package, as kpt fn does",
		Example: `  kpoctl fn render my-app
  kpoctl fn eval my-app --image set-labels -- tier=backend`,
		// The group's own -o (a directory or stdout) replaces the output format flag.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newFnRenderCommand(o), newFnEvalCommand(o))
	return cmd
}

// fnRunOptions are the flags render and eval share with kpt.
type fnRunOptions struct {
	output      string
	unwrap      bool
	resultsDir  string
	allowExec   bool
	imagePrefix string
	pullPolicy  string
	truncate    bool
}

func (f *fnRunOptions) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "", "Where to write the result instead of in place: a directory that must not exist yet, or \"stdout\" (a ResourceList; see --unwrap).")
	fl.BoolVar(&f.unwrap, "unwrap", false, "With -o stdout, write the resources as a YAML stream instead of a ResourceList.")
	fl.StringVar(&f.resultsDir, "results-dir", "", "Write the functions' structured results to results.yaml in this directory.")
	fl.BoolVar(&f.allowExec, "allow-exec", false, "Allow exec functions (local binaries) to run.")
	fl.StringVar(&f.imagePrefix, "image-prefix", render.DefaultImagePrefix, "Registry path that qualifies short function image names.")
	fl.StringVar(&f.pullPolicy, "image-pull-policy", "IfNotPresent", "Pull policy for images run by a local container runtime: Always, IfNotPresent or Never (built-ins ignore it).")
	fl.BoolVar(&f.truncate, "truncate-output", true, "Accepted for kpt compatibility; kpoctl prints function output in full.")
}

func (f *fnRunOptions) evaluator() (*fn.LocalEvaluator, error) {
	pull := ""
	switch strings.ToLower(f.pullPolicy) {
	case "always":
		pull = "always"
	case "ifnotpresent", "":
		pull = "missing"
	case "never":
		pull = "never"
	default:
		return nil, fmt.Errorf("unknown image pull policy %q: use Always, IfNotPresent or Never", f.pullPolicy)
	}
	return &fn.LocalEvaluator{AllowExec: f.allowExec, ImagePrefix: f.imagePrefix, PullPolicy: pull}, nil
}

func newFnRenderCommand(o *globalOptions) *cobra.Command {
	f := &fnRunOptions{}
	cmd := &cobra.Command{
		Use:   "render [DIR]",
		Short: "Run the Kptfile pipelines of a local package (kpt fn render)",
		Long: `render runs the mutators and validators of every Kptfile of the package in DIR (default: the
current directory), subpackages first, and writes the result back in place, with the outcome in
the root Kptfile's status as kpt writes it. Built-in functions run in process; exec functions
need --allow-exec; any other image runs through a local container runtime (docker, podman or
nerdctl) when one is installed.`,
		Example: `  kpoctl fn render my-app
  kpoctl fn render my-app -o stdout --unwrap | kubectl apply -f -
  kpoctl fn render my-app -o /tmp/rendered --results-dir /tmp/results`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runFnRender(cmd.Context(), o.streams, f, dir)
		},
	}
	f.addFlags(cmd)
	return cmd
}

func runFnRender(ctx context.Context, streams IOStreams, f *fnRunOptions, dir string) error {
	ev, err := f.evaluator()
	if err != nil {
		return err
	}
	if f.unwrap && f.output != outputStdout {
		return errors.New("--unwrap only goes with -o stdout")
	}
	if f.output != "" && f.output != outputStdout {
		if _, err := os.Lstat(f.output); err == nil {
			return fmt.Errorf("directory %q already exists, please delete the directory and retry", f.output)
		}
	}
	dir, err = filepath.EvalSymlinks(dir)
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	if err != nil {
		return fmt.Errorf("reading the package: %w", err)
	}
	files, err := readLocalPackage(dir)
	if err != nil {
		return err
	}
	opts := render.Options{Evaluator: ev.Evaluator, ResolveTag: builtin.ResolveTag}
	name := filepath.Base(dir)

	var (
		out       map[string][]byte
		resources []*yaml.RNode
		results   []render.Result
		renderErr error
	)
	if f.output == "" {
		out, results, renderErr = render.Render(ctx, files, opts)
	} else {
		resources, results, renderErr = render.OutOfPlace(ctx, files, opts)
	}
	printProgress(streams.ErrOut, name, results, renderErr, f.imagePrefix, f.output == "")
	if f.resultsDir != "" {
		if err := writeResults(f.resultsDir, results, renderErr, f.imagePrefix); err != nil {
			return err
		}
	}

	switch {
	case f.output == "":
		if out == nil {
			out = files
		}
		out = render.WithStatus(out, results, renderErr, f.imagePrefix)
		if err := writeLocalPackage(dir, files, out); err != nil {
			return err
		}
	case renderErr != nil && resources == nil:
	case f.output == outputStdout:
		attachDocumentComments(resources)
		if err := writeResourceStream(streams.Out, resources, f.unwrap); err != nil {
			return err
		}
	default:
		attachDocumentComments(resources)
		rendered, err := render.WriteResources(resources)
		if err != nil {
			return err
		}
		if err := writeLocalPackage(f.output, nil, rendered); err != nil {
			return err
		}
	}
	if renderErr != nil {
		return renderErr
	}
	if f.resultsDir != "" {
		fmt.Fprintf(streams.ErrOut, "For complete results, see %s\n", filepath.Join(f.resultsDir, resultsFileName))
	}
	return nil
}

// readLocalPackage reads every regular file under dir, keyed by slash-separated relative
// path; .git directories and symbolic links are left out, as kpt leaves them out.
func readLocalPackage(dir string) (map[string][]byte, error) {
	files, err := packageFiles(dir, func(string) error { return nil })
	if err != nil {
		return nil, fmt.Errorf("reading the package %s: %w", dir, err)
	}
	return files, nil
}

// writeLocalPackage brings dir from before to after: changed and new files are written,
// files of before that after lacks are removed, and directories left empty by that too.
func writeLocalPackage(dir string, before, after map[string][]byte) error {
	for _, p := range slices.Sorted(maps.Keys(after)) {
		if old, ok := before[p]; ok && bytes.Equal(old, after[p]) {
			continue
		}
		dest := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil { //nolint:gosec // G301: directories of the package the user renders, like git's (umask applies)
			return err
		}
		mode := fs.FileMode(0o644)
		if st, err := os.Stat(dest); err == nil {
			mode = st.Mode().Perm()
		}
		if err := os.WriteFile(dest, after[p], mode); err != nil {
			return err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(before)) {
		if _, kept := after[p]; kept {
			continue
		}
		dest := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.Remove(dest); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if os.Remove(filepath.Join(dir, filepath.FromSlash(d))) != nil {
				break // not empty
			}
		}
	}
	return nil
}

// writeResourceStream writes resources to w as kpt's -o stdout does: a ResourceList that keeps
// the path and index annotations, or with unwrap a plain YAML stream without them.
func writeResourceStream(w io.Writer, resources []*yaml.RNode, unwrap bool) error {
	bw := kio.ByteWriter{Writer: w, KeepReaderAnnotations: true,
		WrappingKind: kio.ResourceListKind, WrappingAPIVersion: kio.ResourceListAPIVersion}
	if unwrap {
		bw = kio.ByteWriter{Writer: w, ClearAnnotations: []string{kioutil.PathAnnotation, kioutil.LegacyPathAnnotation}} //nolint:staticcheck // kpt writes both
		return bw.Write(resources)
	}
	return bw.Write(resources)
}

// displayImage is the image as kpt shows it: fully qualified, or the exec command.
func displayImage(r render.Result, prefix string) string {
	if r.Function.Exec != "" {
		return r.Function.Exec
	}
	if r.Function.Image != "" {
		return render.QualifyImage(r.Function.Image, prefix)
	}
	return r.Image
}

// printProgress writes kpt's account of a render to w: per function [RUNNING] and
// [PASS]/[FAIL] with its results and stderr, and a summary line on success.
func printProgress(w io.Writer, root string, results []render.Result, renderErr error, prefix string, inPlace bool) {
	pkgName := func(dir string) string {
		if dir == "." || dir == "" {
			return root
		}
		return path.Join(root, dir)
	}
	current := ""
	packages := map[string]bool{}
	for _, r := range results {
		if r.Package != current {
			if current != "" {
				fmt.Fprintln(w)
			}
			current = r.Package
			fmt.Fprintf(w, "Package %q:\n", pkgName(r.Package))
		}
		packages[r.Package] = true
		img := displayImage(r, prefix)
		on := ""
		if len(r.Function.Selectors) > 0 || len(r.Function.Exclusions) > 0 {
			on = fmt.Sprintf(" on %d resource(s)", r.Resources)
		}
		fmt.Fprintf(w, "[RUNNING] %q%s on package %q\n", img, on, pkgName(r.Package))
		if r.ExitCode == 0 {
			fmt.Fprintf(w, "[PASS] %q in 0s\n", img)
		} else {
			fmt.Fprintf(w, "[FAIL] %q in 0s\n", img)
		}
		printResults(w, r.Results)
		printStderr(w, r.Stderr)
		if r.ExitCode != 0 {
			fmt.Fprintf(w, "  Exit code: %d\n", r.ExitCode)
		}
	}
	switch {
	case renderErr != nil:
	case !inPlace:
		// kpt sums up only a render in place; out of place it ends with a blank line.
		fmt.Fprintln(w)
	default:
		fmt.Fprintf(w, "\nSuccessfully executed %d function(s) in %d package(s).\n", len(results), max(len(packages), 1))
	}
}

// printResults writes results as kpt does: [severity] and what they are about, then the message.
func printResults(w io.Writer, results framework.Results) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintln(w, "  [Results]:")
	for _, r := range results {
		if r == nil {
			continue
		}
		var about []string
		if r.ResourceRef != nil {
			id := r.ResourceRef
			ref := strings.Join(slices.DeleteFunc([]string{id.APIVersion, id.Kind, id.Namespace, id.Name}, func(s string) bool { return s == "" }), "/")
			if ref != "" {
				about = append(about, ref)
			}
		}
		if r.Field != nil && r.Field.Path != "" {
			about = append(about, r.Field.Path)
		}
		sep := ""
		if len(about) > 0 {
			sep = " " + strings.Join(about, " ")
		}
		fmt.Fprintf(w, "    [%s]%s: %s\n", severityOf(r), sep, r.Message)
	}
}

func severityOf(r *framework.Result) string {
	if r.Severity == "" {
		return string(framework.Info)
	}
	return string(r.Severity)
}

// functionResultList is the file --results-dir gets (kpt's FunctionResultList).
type functionResultList struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	ExitCode int                          `yaml:"exitCode"`
	Items    []kptfile.PipelineStepResult `yaml:"items"`
}

// writeResults writes results.yaml into dir as kpt does for --results-dir.
func writeResults(dir string, results []render.Result, renderErr error, prefix string) error {
	list := functionResultList{APIVersion: "kpt.dev/v1", Kind: "FunctionResultList"}
	list.Metadata.Name = "fnresults"
	if renderErr != nil {
		list.ExitCode = 1
	}
	for _, r := range results {
		step := render.StepResult(r, prefix)
		step.ErrorResults = nil
		list.Items = append(list.Items, step)
	}
	var buf bytes.Buffer
	enc := goyaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(list); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: the results directory the user named (umask applies)
		return err
	}
	return os.WriteFile(filepath.Join(dir, resultsFileName), buf.Bytes(), 0o644) //nolint:gosec // G306: results are no secret, as with kpt
}

// fnEvalOptions are fn eval's own flags.
type fnEvalOptions struct {
	fnRunOptions
	image         string
	execPath      string
	fnConfig      string
	includeMeta   bool
	match         selectorFlags
	exclude       selectorFlags
	container     fn.ContainerOptions
	asCurrentUser bool
}

// selectorFlags are one of kpt fn eval's --match-… and --exclude-… flag sets: a resource is
// matched when it matches every flag of the set given.
type selectorFlags struct {
	apiVersion, kind, name, namespace string
	labels, annotations               map[string]string
}

func (f *selectorFlags) addFlags(cmd *cobra.Command, prefix, doing string) {
	fl := cmd.Flags()
	fl.StringVar(&f.apiVersion, prefix+"-api-version", "", doing+" resources of this apiVersion.")
	fl.StringVar(&f.kind, prefix+"-kind", "", doing+" resources of this kind.")
	fl.StringVar(&f.name, prefix+"-name", "", doing+" resources of this name.")
	fl.StringVar(&f.namespace, prefix+"-namespace", "", doing+" resources in this namespace.")
	fl.StringToStringVar(&f.labels, prefix+"-labels", nil, doing+" resources with these labels (KEY=VALUE,...).")
	fl.StringToStringVar(&f.annotations, prefix+"-annotations", nil, doing+" resources with these annotations (KEY=VALUE,...).")
}

// selectors is the set as a Kptfile function's selectors or exclusions: none when no flag was given.
func (f *selectorFlags) selectors() []kptfile.Selector {
	s := kptfile.Selector{APIVersion: f.apiVersion, Kind: f.kind, Name: f.name, Namespace: f.namespace, Labels: f.labels, Annotations: f.annotations}
	if s.APIVersion == "" && s.Kind == "" && s.Name == "" && s.Namespace == "" && len(s.Labels) == 0 && len(s.Annotations) == 0 {
		return nil
	}
	return []kptfile.Selector{s}
}

func newFnEvalCommand(o *globalOptions) *cobra.Command {
	f := &fnEvalOptions{}
	cmd := &cobra.Command{
		Use:   "eval [DIR|-] (--image IMAGE | --exec COMMAND) [-- KEY=VALUE...]",
		Short: "Run one function over a local package or a ResourceList on stdin (kpt fn eval)",
		Long: `eval runs one function, given by --image or --exec, over the resources of DIR (default: the
current directory, subpackages included, Kptfiles only with --include-meta-resources) and writes
them back in place, or over the ResourceList (or YAML stream) read from stdin when DIR is "-",
then written to stdout. Its function config is --fn-config, or a ConfigMap of the KEY=VALUE
arguments after --.`,
		Example: `  kpoctl fn eval my-app --image set-namespace:latest -- namespace=staging
  kpoctl fn render my-app -o stdout | kpoctl fn eval - --image set-labels -- tier=backend`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, kv := ".", args
			if n := cmd.ArgsLenAtDash(); n >= 0 {
				if n > 1 {
					return errors.New("at most one DIR before --")
				}
				if n == 1 {
					dir = args[0]
				}
				kv = args[n:]
			} else if len(args) > 1 {
				return errors.New("at most one DIR; give function config after --")
			} else if len(args) == 1 {
				dir, kv = args[0], nil
			}
			return runFnEval(cmd.Context(), o.streams, f, dir, kv)
		},
	}
	f.addFlags(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.image, "image", "i", "", "Image of the function to run (a short name is completed with --image-prefix).")
	fl.StringVar(&f.execPath, "exec", "", "Command line of a local function binary to run (naming it is the permission: no --allow-exec needed).")
	fl.StringVar(&f.fnConfig, "fn-config", "", "File holding the function config.")
	fl.BoolVarP(&f.includeMeta, "include-meta-resources", "m", false, "Give the function the Kptfiles too.")
	f.match.addFlags(cmd, "match", "Run the function on")
	f.exclude.addFlags(cmd, "exclude", "Do not run the function on")
	fl.BoolVar(&f.container.Network, "network", false, "Give a function run by a container runtime the host's network (default: none).")
	fl.StringArrayVar(&f.container.Mounts, "mount", nil, "Mount into a function's container, as kpt: type=bind|volume|tmpfs,src=SRC,dst=DST[,rw=true] (read-only unless rw=true); repeatable.")
	fl.StringArrayVarP(&f.container.Env, "env", "e", nil, "Environment variable for a function process, KEY=VALUE or KEY (this shell's value); repeatable.")
	fl.BoolVar(&f.asCurrentUser, "as-current-user", false, "Run a function's container as the current user and group instead of the image's user.")
	return cmd
}

func runFnEval(ctx context.Context, streams IOStreams, f *fnEvalOptions, dir string, kv []string) error {
	if (f.image == "") == (f.execPath == "") {
		return errors.New("give exactly one of --image and --exec")
	}
	if f.fnConfig != "" && len(kv) > 0 {
		return errors.New("give the function config either with --fn-config or after --, not both")
	}
	function := kptfile.Function{Image: f.image, Exec: f.execPath, Selectors: f.match.selectors(), Exclusions: f.exclude.selectors()}
	if function.Image != "" {
		function.Image = render.QualifyImage(function.Image, f.imagePrefix)
	}
	f.allowExec = f.allowExec || f.execPath != "" // naming the binary on the command line is the permission
	local, err := f.evaluator()
	if err != nil {
		return err
	}
	local.Container = f.container
	for _, m := range f.container.Mounts {
		if _, err := fn.ParseMount(m); err != nil {
			return err
		}
	}
	if f.asCurrentUser {
		local.Container.User = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	config, err := evalConfig(f.fnConfig, kv)
	if err != nil {
		return err
	}

	fromStdin := dir == "-"
	var (
		items []*yaml.RNode
		rw    *kio.LocalPackageReadWriter
		meta  []*yaml.RNode
	)
	if fromStdin {
		r := &kio.ByteReader{Reader: streams.In, PreserveSeqIndent: true, WrapBareSeqNode: true}
		if items, err = r.Read(); err != nil {
			return fmt.Errorf("reading resources from stdin: %w", err)
		}
	} else {
		rw = &kio.LocalPackageReadWriter{PackagePath: dir, PreserveSeqIndent: true, WrapBareSeqNode: true,
			MatchFilesGlob: append([]string{kptfile.FileName}, kio.MatchAll...), IncludeSubpackages: true, PackageFileName: kptfile.FileName}
		all, err := rw.Read()
		if err != nil {
			return fmt.Errorf("reading the package %s: %w", dir, err)
		}
		for _, n := range all {
			if n.GetKind() == "Kptfile" && !f.includeMeta {
				meta = append(meta, n)
				continue
			}
			items = append(items, n)
		}
	}

	img := function.Image
	if img == "" {
		img = function.Exec
	}
	fmt.Fprintf(streams.ErrOut, "[RUNNING] %q\n", img)
	var (
		stderr  bytes.Buffer
		results framework.Results
	)
	items, err = render.Selective(items, function, func(selected []*yaml.RNode) ([]*yaml.RNode, error) {
		out, res, err := evalOnce(ctx, local, function, config, selected, &stderr)
		results = res
		return out, err
	})
	result := render.Result{Image: img, Function: function, Results: results, Stderr: stderr.String()}
	var fe *render.FunctionError
	switch {
	case errors.As(err, &fe):
		result.ExitCode, result.Stderr = max(fe.ExitCode, 1), fe.Stderr
		if len(result.Results) == 0 {
			result.Results = fe.Results
		}
	case err != nil:
		result.ExitCode, result.ExecutionError = 1, err.Error()
	}
	if result.ExitCode == 0 {
		fmt.Fprintf(streams.ErrOut, "[PASS] %q in 0s\n", img)
	} else {
		fmt.Fprintf(streams.ErrOut, "[FAIL] %q in 0s\n", img)
	}
	printResults(streams.ErrOut, result.Results)
	printStderr(streams.ErrOut, result.Stderr)
	if f.resultsDir != "" {
		if werr := writeResults(f.resultsDir, []render.Result{result}, err, f.imagePrefix); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	switch {
	case f.output == outputStdout || (fromStdin && f.output == ""):
		return writeResourceStream(streams.Out, items, f.unwrap)
	case f.output != "":
		if _, err := os.Lstat(f.output); err == nil {
			return fmt.Errorf("directory %q already exists, please delete the directory and retry", f.output)
		}
		return kio.LocalPackageWriter{PackagePath: f.output}.Write(items)
	}
	return rw.Write(append(items, meta...))
}

// evalOnce runs function over items as fn eval does and returns its output and results. A
// function that runs as a process loses comments and field order: ids map its output back to
// copies of the input, from which they are restored, as around kpt's functions.
func evalOnce(ctx context.Context, local *fn.LocalEvaluator, function kptfile.Function, config *yaml.RNode, items []*yaml.RNode, stderr io.Writer) ([]*yaml.RNode, framework.Results, error) {
	originals := make([]*yaml.RNode, len(items))
	for i, n := range items {
		if err := n.PipeE(yaml.SetAnnotation(kioutil.IdAnnotation, strconv.Itoa(i))); err != nil {
			return nil, nil, err
		}
		originals[i] = n.Copy()
	}
	rl := &framework.ResourceList{Items: items, FunctionConfig: config}
	ev, err := local.Evaluator(function)
	if err == nil {
		err = ev.Evaluate(render.WithStderr(ctx, stderr), function, rl)
	}
	if err == nil {
		if cp, ok := ev.(render.CommentPreserver); !ok || !cp.PreservesComments(function) {
			err = render.RestoreComments(originals, rl.Items)
		}
	}
	for _, n := range append(rl.Items, items...) {
		if _, cerr := n.Pipe(yaml.ClearAnnotation(kioutil.IdAnnotation)); cerr != nil && err == nil {
			err = cerr
		}
	}
	return rl.Items, rl.Results, err
}

// evalConfig is fn eval's function config: the resource in file, or a ConfigMap of kv.
func evalConfig(file string, kv []string) (*yaml.RNode, error) {
	if file != "" {
		data, err := os.ReadFile(file) //nolint:gosec // G304: the function config file the user named
		if err != nil {
			return nil, fmt.Errorf("reading the function config: %w", err)
		}
		return yaml.Parse(string(data))
	}
	if len(kv) == 0 {
		return nil, nil
	}
	cm := yaml.MustParse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: function-input\ndata: {}\n")
	data := cm.Field("data").Value
	for _, pair := range kv {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("function config %q is not KEY=VALUE", pair)
		}
		if err := data.PipeE(yaml.SetField(k, yaml.NewStringRNode(v))); err != nil {
			return nil, err
		}
	}
	return cm, nil
}

// attachDocumentComments moves each resource's document comments (a file's licence header)
// onto the resource itself, as kpt's output out of place has them: in a list they go with
// the item, and a blank line between them and the resource is gone.
func attachDocumentComments(resources []*yaml.RNode) {
	for _, n := range resources {
		if doc := n.Document(); doc.Kind == yaml.DocumentNode && doc.HeadComment != "" {
			node := n.YNode()
			node.HeadComment = strings.TrimSuffix(doc.HeadComment+"\n"+node.HeadComment, "\n")
			doc.HeadComment = ""
		}
	}
}

// printStderr writes a function's stderr as kpt does: every line indented, a final newline
// of the function's own giving an indented empty line.
func printStderr(w io.Writer, stderr string) {
	if stderr == "" {
		return
	}
	fmt.Fprintln(w, "  Stderr:")
	for _, line := range strings.Split(stderr, "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
}
