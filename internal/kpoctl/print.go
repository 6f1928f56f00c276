package kpoctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

// table is rows under a header, printed as kubectl prints them.
type table struct {
	header []string
	rows   [][]string
}

func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printObjects prints objs in the -o format: a table (from toTable), a List in YAML or JSON,
// or kind.group/name lines. When single, YAML and JSON print the object itself.
func (o *globalOptions) printObjects(objs []runtime.Object, single bool, toTable func() *table) error {
	w := o.streams.Out
	switch o.output {
	case outputName:
		for _, obj := range objs {
			gvk, err := o.gvk(obj)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s/%s\n", strings.ToLower(gvk.GroupKind().String()), obj.(metav1.Object).GetName())
		}
		return nil
	case outputYAML, outputJSON:
		for _, obj := range objs {
			gvk, err := o.gvk(obj)
			if err != nil {
				return err
			}
			obj.GetObjectKind().SetGroupVersionKind(gvk)
			obj.(metav1.Object).SetManagedFields(nil)
		}
		var v any
		if single && len(objs) == 1 {
			v = objs[0]
		} else {
			items := make([]any, 0, len(objs))
			for _, obj := range objs {
				items = append(items, obj)
			}
			v = map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}, "items": items}
		}
		var out []byte
		var err error
		if o.output == outputJSON {
			out, err = json.MarshalIndent(v, "", "    ")
			out = append(out, '\n')
		} else {
			out, err = yaml.Marshal(v)
		}
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	if len(objs) == 0 {
		ns := "namespace " + o.ns
		if o.ns == "" {
			ns = "any namespace"
		}
		fmt.Fprintf(o.streams.ErrOut, "No resources found in %s.\n", ns)
		return nil
	}
	return toTable().write(w)
}

func (o *globalOptions) gvk(obj runtime.Object) (schema.GroupVersionKind, error) {
	if o.scheme == nil {
		o.scheme = newScheme()
	}
	return apiutil.GVKForObject(obj, o.scheme)
}

// printChange reports a change to one object: "<name> <verb>" in table format, else the
// object in the -o format.
func (o *globalOptions) printChange(obj runtime.Object, name, verb string) error {
	if o.output == outputTable || o.output == outputWide || obj == nil {
		_, err := fmt.Fprintf(o.streams.Out, "%s %s\n", name, verb)
		return err
	}
	return o.printObjects([]runtime.Object{obj}, true, nil)
}
