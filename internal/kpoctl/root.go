// Package kpoctl is the command-line client of kpo: porchctl's verbs (repo, rpkg) against the
// Repository, PackageRevision and PackageDraft objects of any cluster kpo runs in, through the
// caller's kubeconfig. Every mutating command waits for the manager's outcome and fails with
// the message of the condition that says why.
package kpoctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// IOStreams are the standard streams a command reads and writes.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Output formats of -o.
const (
	outputTable = "table"
	// outputWide is the table with more columns, where a command has them (rpkg get).
	outputWide = "wide"
	outputYAML = "yaml"
	outputJSON = "json"
	outputName = "name"
)

// globalOptions are the flags every command shares, kubectl's where kubectl has them.
type globalOptions struct {
	streams IOStreams

	kubeconfig  string
	kubeContext string
	namespace   string
	as          string
	asGroups    []string
	output      string
	wait        bool
	timeout     time.Duration

	scheme *runtime.Scheme
	c      client.Client
	ns     string
}

// Run runs kpoctl with args and returns the process exit code: 0, or 1 after printing
// "error: …" to streams.ErrOut.
func Run(ctx context.Context, args []string, streams IOStreams) int {
	cmd := NewRootCommand(streams)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(streams.ErrOut, "error: %v\n", err)
		return 1
	}
	return 0
}

// NewRootCommand returns the kpoctl command tree writing to streams.
func NewRootCommand(streams IOStreams) *cobra.Command {
	o := &globalOptions{streams: streams}
	root := &cobra.Command{
		Use:   "kpoctl",
		Short: "Manage kpt packages in Git through kpo",
		Long: `kpoctl registers Git repositories of kpt packages and authors, proposes, approves and
deletes package revisions, as porchctl does for Porch. It talks to the Kubernetes API server of
your kubeconfig, like kubectl: RBAC and the kpo admission policies decide what you may do.`,
		Example: `  # Register a repository and list its packages
  kpoctl repo reg http://127.0.0.1:8180/blueprints.git --repo-basic-username kpo --repo-basic-password kpo-local-dev
  kpoctl rpkg get --repository blueprints`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	f := root.PersistentFlags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
	f.StringVar(&o.kubeContext, "context", "", "The kubeconfig context to use.")
	f.StringVarP(&o.namespace, "namespace", "n", "", "Namespace of the objects (default: the context's namespace, else \"default\").")
	f.StringVar(&o.as, "as", "", "Username to impersonate for the operation, as kubectl --as.")
	f.StringArrayVar(&o.asGroups, "as-group", nil, "Group to impersonate for the operation; repeat for several groups.")
	f.StringVarP(&o.output, "output", "o", outputTable, "Output format: table, wide, yaml, json or name.")
	f.BoolVar(&o.wait, "wait", true, "Wait for the kpo manager to carry out a change and report its outcome.")
	f.DurationVar(&o.timeout, "timeout", 60*time.Second, "How long to wait for the kpo manager.")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		switch o.output {
		case outputTable, outputWide, outputYAML, outputJSON, outputName:
			return nil
		}
		return fmt.Errorf("unknown output format %q: use -o table, wide, yaml, json or name", o.output)
	}

	root.AddCommand(newRepoCommand(o), newRpkgCommand(o), newFnCommand(o), newPkgCommand(o), newUICommand(o))
	return root
}

// client returns the API client for the kubeconfig flags, built once.
func (o *globalOptions) client() (client.Client, string, error) {
	if o.c != nil {
		return o.c, o.ns, nil
	}
	cfg, ns, err := o.restConfig()
	if err != nil {
		return nil, "", err
	}
	c, err := o.newClient(cfg)
	if err != nil {
		return nil, "", err
	}
	o.c, o.ns = c, ns
	return c, ns, nil
}

// restConfig reads the kubeconfig flags: the API server, the user's identity and the
// namespace.
func (o *globalOptions) restConfig() (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.kubeContext}
	overrides.Context.Namespace = o.namespace
	overrides.AuthInfo.Impersonate = o.as
	overrides.AuthInfo.ImpersonateGroups = o.asGroups
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", errors.New("no cluster configured: set KUBECONFIG or pass --kubeconfig (with `make run`, paste the export line it prints)")
		}
		return nil, "", fmt.Errorf("reading the kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return cfg, ns, nil
}

func (o *globalOptions) newClient(cfg *rest.Config) (client.Client, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "kpoctl"
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	o.scheme = newScheme()
	c, err := client.New(cfg, client.Options{Scheme: o.scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server %s: %w", cfg.Host, err)
	}
	return c, nil
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(kpov1.AddToScheme(s))
	return s
}
