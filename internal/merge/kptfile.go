package merge

import (
	"fmt"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/yaml/merge3"

	"kpo.dev/kpo/internal/kptfile"
)

// syntheticNamePrefix marks the function names kpt (and kpo) invent as merge keys while
// merging pipelines whose functions have no names.
const syntheticNamePrefix = "_kpt-merge_"

// decodeKptfile decodes a Kptfile of one of the trees; a missing one is empty.
func decodeKptfile(tree, p string, data []byte, ok bool) (*kptfile.Kptfile, error) {
	if !ok {
		return &kptfile.Kptfile{}, nil
	}
	k, err := kptfile.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrInvalidInput, tree, p, err)
	}
	return k, nil
}

// mergeKptfile merges the Kptfile of the package at dir the way kpt does: labels,
// annotations, info, pipeline and inventory three-way (functions keyed by name); name,
// namespace, upstream, upstreamLock and status from local. root says whether dir is the
// package being updated: its upstream and upstreamLock become the input's new ones, while a
// nested package's take upstream's.
func (u *updater) mergeKptfile(dir string, root bool) error {
	p := join(dir, kptfile.FileName)
	lb, ok := u.local[p]
	if !ok {
		return nil
	}
	local, err := decodeKptfile("local", p, lb, true)
	if err != nil {
		return err
	}
	ub, uok := u.upstream[p]
	updated, err := decodeKptfile("upstream", p, ub, uok)
	if err != nil {
		return err
	}
	ob, ook := u.origin[p]
	origin, err := decodeKptfile("origin", p, ob, ook)
	if err != nil {
		return err
	}
	if err := mergeKptfiles(local, updated, origin); err != nil {
		return fmt.Errorf("merging %s: %w", p, err)
	}
	if root {
		if u.in.NewUpstream != nil {
			local.Upstream = u.in.NewUpstream
		}
		if u.in.NewLock != nil {
			local.UpstreamLock = u.in.NewLock
		}
	} else {
		if updated.Upstream != nil {
			local.Upstream = updated.Upstream
		}
		if updated.UpstreamLock != nil {
			local.UpstreamLock = updated.UpstreamLock
		}
	}
	out, err := kptfile.Encode(local)
	if err != nil {
		return err
	}
	u.local[p] = out
	return nil
}

// mergeKptfiles merges updated's changes since origin into local.
func mergeKptfiles(local, updated, origin *kptfile.Kptfile) error {
	synthetic := needsSyntheticNames(local, updated, origin)
	if synthetic {
		for _, k := range []*kptfile.Kptfile{local, updated, origin} {
			nameFunctions(k)
		}
	}
	var docs [3]string
	for i, k := range []*kptfile.Kptfile{local, origin, updated} {
		b, err := kptfile.Encode(k)
		if err != nil {
			return err
		}
		docs[i] = string(b)
	}
	merged, err := merge3.MergeStrings(docs[0], docs[1], docs[2], true)
	if err != nil {
		return err
	}
	var m kptfile.Kptfile
	if err := yaml.Unmarshal([]byte(merged), &m); err != nil {
		return err
	}
	if synthetic {
		for _, k := range []*kptfile.Kptfile{local, updated, origin, &m} {
			unnameFunctions(k)
		}
	}
	local.Metadata.Labels = m.Metadata.Labels
	local.Metadata.Annotations = m.Metadata.Annotations
	local.Info = m.Info
	local.Pipeline = m.Pipeline
	local.Inventory = m.Inventory
	return nil
}

// needsSyntheticNames reports whether no function of any of the Kptfiles has a name and no
// list names the same image (without tag) or exec twice: then the image is the merge key.
func needsSyntheticNames(kfs ...*kptfile.Kptfile) bool {
	for _, k := range kfs {
		if k.Pipeline == nil {
			continue
		}
		for _, fns := range [][]kptfile.Function{k.Pipeline.Mutators, k.Pipeline.Validators} {
			var seen []string
			for _, f := range fns {
				key := functionKey(f)
				if f.Name != "" || slices.Contains(seen, key) {
					return false
				}
				seen = append(seen, key)
			}
		}
	}
	return true
}

func functionKey(f kptfile.Function) string {
	if f.Exec != "" {
		return f.Exec
	}
	image, _, _ := strings.Cut(f.Image, ":")
	return image
}

func nameFunctions(k *kptfile.Kptfile) {
	if k.Pipeline == nil {
		return
	}
	for _, fns := range [][]kptfile.Function{k.Pipeline.Mutators, k.Pipeline.Validators} {
		for i := range fns {
			if fns[i].Name == "" {
				fns[i].Name = syntheticNamePrefix + functionKey(fns[i])
			}
		}
	}
}

func unnameFunctions(k *kptfile.Kptfile) {
	if k.Pipeline == nil {
		return
	}
	for _, fns := range [][]kptfile.Function{k.Pipeline.Mutators, k.Pipeline.Validators} {
		for i := range fns {
			if strings.HasPrefix(fns[i].Name, syntheticNamePrefix) {
				fns[i].Name = ""
			}
		}
	}
}

// clearRenderStatus drops the Rendered condition and render status, as kpt's fast-forward
// does, since they describe content that has just been replaced.
func clearRenderStatus(k *kptfile.Kptfile) {
	if k.Status == nil {
		return
	}
	k.Status.RenderStatus = nil
	k.Status.Conditions = slices.DeleteFunc(k.Status.Conditions, func(c kptfile.Condition) bool { return c.Type == "Rendered" })
	if len(k.Status.Conditions) == 0 {
		k.Status = nil
	}
}
