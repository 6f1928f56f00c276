package kpoctl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

func newRepoCommand(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "repo",
		Aliases: []string{"repository"},
		Short:   "Register, list, sync and remove Git repositories of packages",
		Example: `  kpoctl repo reg http://127.0.0.1:8180/blueprints.git --repo-basic-username kpo --repo-basic-password kpo-local-dev
  kpoctl repo get`,
	}
	cmd.AddCommand(newRepoRegCommand(o), newRepoGetCommand(o), newRepoUnregCommand(o), newRepoSyncCommand(o))
	return cmd
}

type repoRegOptions struct {
	name, description, directory, branch string
	createBranch, deployment             bool
	username, password, bearerToken      string
	syncInterval                         time.Duration
}

func newRepoRegCommand(o *globalOptions) *cobra.Command {
	r := &repoRegOptions{}
	cmd := &cobra.Command{
		Use:     "reg URL",
		Aliases: []string{"register"},
		Short:   "Register a Git repository of kpt packages",
		Long: `Register a Git repository of kpt packages and wait until kpo has read it. With credentials,
a Secret <name>-auth is created and referenced by the Repository.`,
		Example: `  # A repository of blueprints, with basic-auth credentials
  kpoctl repo reg http://127.0.0.1:8180/blueprints.git --repo-basic-username kpo --repo-basic-password kpo-local-dev

  # A deployment repository whose packages live below deploy/, on a branch kpo creates
  kpoctl repo reg https://github.com/example/deployments.git --name edge --deployment \
      --directory deploy --branch edge --create-branch --repo-bearer-token "$TOKEN"`,
		Args: exactArgs(1, "URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(cmd.Context(), o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.name, "name", "", "Name of the Repository (default: the last element of the URL path, without .git).")
	f.StringVar(&r.description, "description", "", "Description of the repository.")
	f.StringVar(&r.directory, "directory", "", "Directory of the repository below which packages live (default: the root).")
	f.StringVar(&r.branch, "branch", "", "Branch holding the published packages (default: main).")
	f.BoolVar(&r.createBranch, "create-branch", false, "Create the branch when the repository does not have it.")
	f.BoolVar(&r.deployment, "deployment", false, "Mark the repository as a deployment repository.")
	f.StringVar(&r.username, "repo-basic-username", "", "Username for basic authentication to the Git server.")
	f.StringVar(&r.password, "repo-basic-password", "", "Password for basic authentication to the Git server.")
	f.StringVar(&r.bearerToken, "repo-bearer-token", "", "Bearer token for authentication to the Git server.")
	f.DurationVar(&r.syncInterval, "sync-interval", 0, "How often kpo re-reads the repository (default: 5m).")
	return cmd
}

func (r *repoRegOptions) run(ctx context.Context, o *globalOptions, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
		return fmt.Errorf("repository URL %q is not an http://, https:// or file:// URL", rawURL)
	}
	name := r.name
	if name == "" {
		name = strings.TrimSuffix(path.Base(strings.TrimSuffix(u.Path, "/")), ".git")
		if name == "" || name == "." || name == "/" {
			return fmt.Errorf("cannot derive a name from %q: pass --name", rawURL)
		}
	}
	if r.username != "" && r.bearerToken != "" {
		return errors.New("--repo-basic-username and --repo-bearer-token exclude each other: pass one of them")
	}
	if (r.username == "") != (r.password == "") {
		return errors.New("--repo-basic-username and --repo-basic-password go together: pass both")
	}
	c, ns, err := o.client()
	if err != nil {
		return err
	}

	repo := &kpov1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kpov1.RepositorySpec{
			Description: r.description,
			Type:        kpov1.GitRepositoryType,
			Deployment:  r.deployment,
			Git: kpov1.GitRepository{
				Repo: rawURL, Branch: r.branch, CreateBranch: r.createBranch, Directory: r.directory,
			},
		},
	}
	if r.syncInterval > 0 {
		repo.Spec.Sync = &kpov1.RepositorySync{Interval: &metav1.Duration{Duration: r.syncInterval}}
	}
	// Fail on an existing Repository before creating its Secret.
	if err := c.Get(ctx, client.ObjectKeyFromObject(repo), &kpov1.Repository{}); err == nil {
		return fmt.Errorf("repository %s already exists in namespace %s: pass another --name, or remove it first with `kpoctl repo unreg %s`", name, ns, name)
	}
	var secret *corev1.Secret
	switch {
	case r.username != "":
		secret = &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{
			corev1.BasicAuthUsernameKey: r.username, corev1.BasicAuthPasswordKey: r.password}}
	case r.bearerToken != "":
		secret = &corev1.Secret{Type: corev1.SecretTypeOpaque, StringData: map[string]string{"bearerToken": r.bearerToken}}
	}
	if secret != nil {
		secret.Name, secret.Namespace = name+"-auth", ns
		if err := c.Create(ctx, secret); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("secret %s already exists in namespace %s: delete it, or register with another --name", secret.Name, ns)
			}
			return apiError("secret", secret.Name, err)
		}
		repo.Spec.Git.SecretRef = &kpov1.LocalReference{Name: secret.Name}
	}
	if err := c.Create(ctx, repo); err != nil {
		if secret != nil {
			_ = c.Delete(ctx, secret)
		}
		return apiError(kindRepository, name, err)
	}
	if o.wait {
		err := o.waitFor(ctx, "repository "+name+" to be Ready", func(ctx context.Context) error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(repo), repo); err != nil {
				return err
			}
			return readyOutcome(kindRepository, name, repo.Generation, repo.Status.Conditions)
		})
		var cerr *conditionError
		if errors.As(err, &cerr) {
			cerr.Hint = fmt.Sprintf("The repository stays registered and kpo keeps retrying: fix the cause (`kubectl edit repository %s`, or the Secret it names), or remove it with `kpoctl repo unreg %s`.", name, name)
		}
		if err != nil {
			return err
		}
	}
	return o.printChange(repo, name, "registered")
}

func newRepoGetCommand(o *globalOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "get [NAME]",
		Aliases: []string{"list"},
		Short:   "List registered repositories",
		Example: `  kpoctl repo get
  kpoctl repo get blueprints -o yaml
  kpoctl repo get -A`,
		Args: optionalArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			var items []kpov1.Repository
			if len(args) == 1 {
				repo := &kpov1.Repository{}
				if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: args[0]}, repo); err != nil {
					return apiError(kindRepository, args[0], err)
				}
				items = append(items, *repo)
			} else {
				list := &kpov1.RepositoryList{}
				opts := []client.ListOption{}
				if !all {
					opts = append(opts, client.InNamespace(ns))
				} else {
					o.ns = ""
				}
				if err := c.List(ctx, list, opts...); err != nil {
					return fmt.Errorf("listing repositories: %w", err)
				}
				items = list.Items
			}
			objs := make([]runtime.Object, 0, len(items))
			for i := range items {
				objs = append(objs, &items[i])
			}
			return o.printObjects(objs, len(args) == 1, func() *table { return repoTable(items, all) })
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "List the repositories of every namespace.")
	return cmd
}

func repoTable(items []kpov1.Repository, withNamespace bool) *table {
	t := &table{header: []string{"NAME", "TYPE", "CONTENT", "DEPLOYMENT", "READY", "ADDRESS"}}
	if withNamespace {
		t.header = append([]string{"NAMESPACE"}, t.header...)
	}
	for _, r := range items {
		ready := "Unknown"
		if c := meta.FindStatusCondition(r.Status.Conditions, kpov1.ReadyCondition); c != nil {
			ready = string(c.Status)
		}
		deployment := ""
		if r.Spec.Deployment {
			deployment = "true"
		}
		typ := string(r.Spec.Type)
		if typ == "" {
			typ = string(kpov1.GitRepositoryType)
		}
		row := []string{r.Name, typ, "Package", deployment, ready, r.Spec.Git.Repo}
		if withNamespace {
			row = append([]string{r.Namespace}, row...)
		}
		t.rows = append(t.rows, row)
	}
	return t
}

func newRepoUnregCommand(o *globalOptions) *cobra.Command {
	var keepSecret bool
	cmd := &cobra.Command{
		Use:     "unreg NAME",
		Aliases: []string{"unregister"},
		Short:   "Remove a registered repository (its Git data is kept)",
		Long: `Remove a Repository and, once kpo has removed its package revisions and content ConfigMaps,
the credentials Secret it names (unless another Repository uses it, or --keep-auth-secret).
Nothing is deleted from Git.`,
		Example: `  kpoctl repo unreg blueprints
  kpoctl repo unreg blueprints --keep-auth-secret`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			repo := &kpov1.Repository{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, repo); err != nil {
				return apiError(kindRepository, name, err)
			}
			if err := c.Delete(ctx, repo); err != nil && !apierrors.IsNotFound(err) {
				return apiError(kindRepository, name, err)
			}
			if o.wait {
				if err := o.waitGone(ctx, kindRepository, repo); err != nil {
					return err
				}
			}
			if ref := repo.Spec.Git.SecretRef; ref != nil && !keepSecret {
				if err := deleteUnusedSecret(ctx, c, ns, ref.Name, name); err != nil {
					return err
				}
			}
			return o.printChange(nil, name, "unregistered")
		},
	}
	cmd.Flags().BoolVar(&keepSecret, "keep-auth-secret", false, "Keep the credentials Secret the repository names.")
	return cmd
}

// deleteUnusedSecret deletes the Secret name unless a Repository other than except names it.
func deleteUnusedSecret(ctx context.Context, c client.Client, ns, name, except string) error {
	list := &kpov1.RepositoryList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("listing repositories: %w", err)
	}
	for _, r := range list.Items {
		if r.Name != except && r.Spec.Git.SecretRef != nil && r.Spec.Git.SecretRef.Name == name {
			return nil
		}
	}
	err := c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("secret %s: %w (the repository is unregistered; delete the secret with kubectl)", name, err)
	}
	return nil
}

// waitGone waits until obj no longer exists.
func (o *globalOptions) waitGone(ctx context.Context, kind string, obj client.Object) error {
	c, _, err := o.client()
	if err != nil {
		return err
	}
	return o.waitFor(ctx, kind+" "+obj.GetName()+" to be deleted", func(ctx context.Context) error {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return errNotYet(fmt.Sprintf("still present, finalizers %v", obj.GetFinalizers()))
	})
}

func newRepoSyncCommand(o *globalOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "sync [NAME...]",
		Short: "Re-read repositories from Git now",
		Long: `Ask kpo to read repositories from Git now instead of at the next sync interval, and wait
until it has (the kpo.dev/sync-requested annotation, echoed in status.lastHandledSyncRequest).`,
		Example: `  kpoctl repo sync blueprints
  kpoctl repo sync --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if all == (len(args) > 0) {
				return errors.New("name the repositories to sync, or pass --all")
			}
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			names := args
			if all {
				list := &kpov1.RepositoryList{}
				if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
					return fmt.Errorf("listing repositories: %w", err)
				}
				names = nil
				for _, r := range list.Items {
					names = append(names, r.Name)
				}
			}
			var errs []error
			for _, name := range names {
				if err := o.syncRepository(ctx, c, ns, name); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "Sync every repository of the namespace.")
	return cmd
}

func (o *globalOptions) syncRepository(ctx context.Context, c client.Client, ns, name string) error {
	repo := &kpov1.Repository{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, repo); err != nil {
		return apiError(kindRepository, name, err)
	}
	request := strconv.FormatInt(time.Now().UnixNano(), 10)
	patch := client.MergeFrom(repo.DeepCopy())
	if repo.Annotations == nil {
		repo.Annotations = map[string]string{}
	}
	repo.Annotations[kpov1.SyncRequestedAnnotation] = request
	if err := c.Patch(ctx, repo, patch); err != nil {
		return apiError(kindRepository, name, err)
	}
	if o.wait {
		err := o.waitFor(ctx, "repository "+name+" to sync", func(ctx context.Context) error {
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, repo); err != nil {
				return err
			}
			if repo.Status.LastHandledSyncRequest != request {
				return errNotYet("sync request not handled yet")
			}
			return readyOutcome(kindRepository, name, repo.Generation, repo.Status.Conditions)
		})
		if err != nil {
			return err
		}
	}
	return o.printChange(nil, name, "synced")
}

// exactArgs is cobra.ExactArgs with an error naming the arguments expected.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s expects %s, got %d arguments: see `%s --help`", cmd.CommandPath(), names, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// optionalArg accepts no argument or one, with an error naming the one expected.
func optionalArg(names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			return fmt.Errorf("%s expects at most %s, got %d arguments: see `%s --help`", cmd.CommandPath(), names, len(args), cmd.CommandPath())
		}
		return nil
	}
}
