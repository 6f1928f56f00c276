package render

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/kptfile"
)

// DefaultCacheSize is the number of entries a CachingEvaluator keeps when Size is zero.
const DefaultCacheSize = 256

// CachingEvaluator remembers the output of successful function runs, keyed by the function
// (image or exec), the digest of its functionConfig and the digest of its input items, and
// replays it instead of running the function again. It keeps at most Size entries, evicting
// the least recently used. Failures are not cached. Safe for concurrent use.
type CachingEvaluator struct {
	// Next runs the function on a miss.
	Next Evaluator
	// Size bounds the number of entries (DefaultCacheSize when zero or negative).
	Size int

	mu      sync.Mutex
	lru     *list.List // of *cacheEntry, most recent first
	entries map[string]*list.Element
}

type cacheEntry struct {
	key     string
	items   []*yaml.RNode
	results framework.Results
	stderr  []byte
}

// Evaluate replays a cached run of fn over the same input, or runs Next and caches its
// result when it succeeds.
func (c *CachingEvaluator) Evaluate(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	key, err := cacheKey(fn, rl)
	if err != nil {
		return err
	}
	if e, ok := c.get(key); ok {
		rl.Items = copyNodes(e.items)
		rl.Results = copyResults(e.results)
		_, _ = StderrWriter(ctx).Write(e.stderr)
		return nil
	}
	var stderr bytes.Buffer
	if err := c.Next.Evaluate(WithStderr(ctx, io.MultiWriter(StderrWriter(ctx), &stderr)), fn, rl); err != nil {
		return err
	}
	if hasErrorResult(rl.Results) {
		return nil
	}
	c.put(&cacheEntry{key: key, items: copyNodes(rl.Items), results: copyResults(rl.Results), stderr: stderr.Bytes()})
	return nil
}

// PreservesComments delegates to Next.
func (c *CachingEvaluator) PreservesComments(fn kptfile.Function) bool {
	return preservesComments(c.Next, fn)
}

// Len returns the number of cached entries.
func (c *CachingEvaluator) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru == nil {
		return 0
	}
	return c.lru.Len()
}

func (c *CachingEvaluator) get(key string) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry), true
}

func (c *CachingEvaluator) put(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru == nil {
		c.lru, c.entries = list.New(), map[string]*list.Element{}
	}
	if el, ok := c.entries[e.key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[e.key] = c.lru.PushFront(e)
	size := c.Size
	if size <= 0 {
		size = DefaultCacheSize
	}
	for c.lru.Len() > size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}

// cacheKey digests the function, its config and its input items (annotations included:
// the path and index annotations are part of what a function may read and change).
func cacheKey(fn kptfile.Function, rl *framework.ResourceList) (string, error) {
	h := sha256.New()
	who := "image:" + fn.Image
	if fn.Image == "" {
		who = "exec:" + fn.Exec
	}
	fmt.Fprintf(h, "%q\n", who)
	if rl.FunctionConfig != nil {
		s, err := rl.FunctionConfig.String()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "config %d\n%s", len(s), s)
	}
	var items bytes.Buffer
	if err := (kio.ByteWriter{Writer: &items, KeepReaderAnnotations: true}).Write(rl.Items); err != nil {
		return "", err
	}
	fmt.Fprintf(h, "items %d %d\n", len(rl.Items), items.Len())
	h.Write(items.Bytes())
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyNodes(nodes []*yaml.RNode) []*yaml.RNode {
	out := make([]*yaml.RNode, len(nodes))
	for i, n := range nodes {
		out[i] = n.Copy()
	}
	return out
}

func copyResults(results framework.Results) framework.Results {
	if results == nil {
		return nil
	}
	out := make(framework.Results, len(results))
	for i, r := range results {
		if r == nil {
			continue
		}
		c := *r
		if r.ResourceRef != nil {
			ref := *r.ResourceRef
			c.ResourceRef = &ref
		}
		if r.Field != nil {
			f := *r.Field
			c.Field = &f
		}
		if r.File != nil {
			f := *r.File
			c.File = &f
		}
		out[i] = &c
	}
	return out
}
