package fn

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"kpo.dev/kpo/internal/kptfile"
	"kpo.dev/kpo/internal/render"
)

// DefaultCacheSize is the number of entries a CachingEvaluator keeps when Size is zero.
const DefaultCacheSize = 256

// CachingEvaluator remembers the output of successful function runs, keyed by the function
// (image or exec), the digest of its functionConfig and the digest of its input items, and
// replays it instead of running the function again. It keeps at most Size entries, evicting
// the least recently used. Failures are not cached. Safe for concurrent use.
//
// What it remembers is the output with the input's comments and field order already
// restored (see render.RestoreComments), so a hit costs a copy of the output and nothing else.
type CachingEvaluator struct {
	// Next runs the function on a miss.
	Next render.Evaluator
	// Size bounds the number of entries: DefaultCacheSize when zero, and no caching at all
	// (every run goes to Next) when negative.
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
	if c.Size < 0 {
		return c.next(ctx, fn, rl)
	}
	key := cacheKey(fn, rl)
	if e, ok := c.get(key); ok {
		rl.Items = copyNodes(e.items)
		rl.Results = copyResults(e.results)
		_, _ = render.StderrWriter(ctx).Write(e.stderr)
		return nil
	}
	var stderr bytes.Buffer
	if err := c.next(render.WithStderr(ctx, io.MultiWriter(render.StderrWriter(ctx), &stderr)), fn, rl); err != nil {
		return err
	}
	if hasErrorResult(rl.Results) {
		return nil
	}
	c.put(&cacheEntry{key: key, items: copyNodes(rl.Items), results: copyResults(rl.Results), stderr: stderr.Bytes()})
	return nil
}

// next runs Next and, when Next does not keep comments itself, restores them on its output
// from a copy of its input, as render.Render would.
func (c *CachingEvaluator) next(ctx context.Context, fn kptfile.Function, rl *framework.ResourceList) error {
	restore := !preservesComments(c.Next, fn)
	var input []*yaml.RNode
	if restore {
		input = copyNodes(rl.Items)
	}
	if err := c.Next.Evaluate(ctx, fn, rl); err != nil {
		return err
	}
	if restore && !hasErrorResult(rl.Results) {
		if err := render.RestoreComments(input, rl.Items); err != nil {
			return &render.RestoreCommentsError{Err: err}
		}
	}
	return nil
}

// PreservesComments reports true: the output a CachingEvaluator returns has its comments
// restored already.
func (c *CachingEvaluator) PreservesComments(kptfile.Function) bool { return true }

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

// cacheKey digests the function, its config and its input items: every node's kind, tag,
// style, value, anchor and comments, and the shape of the tree (annotations included: the
// path and index annotations are part of what a function may read and change, and comments
// are restored from the input). Positions (line, column) are left out.
func cacheKey(fn kptfile.Function, rl *framework.ResourceList) string {
	h := sha256.New()
	who := "image:" + fn.Image
	if fn.Image == "" {
		who = "exec:" + fn.Exec
	}
	fmt.Fprintf(h, "%q\n", who)
	d := digester{w: h}
	if rl.FunctionConfig != nil {
		d.str("config")
		d.node(rl.FunctionConfig.Document())
	}
	d.str("items")
	d.int(len(rl.Items))
	for _, n := range rl.Items {
		d.node(n.Document())
	}
	d.flush()
	return hex.EncodeToString(h.Sum(nil))
}

// digester writes an unambiguous serialization of yaml.Node trees to w, buffered.
type digester struct {
	w   io.Writer
	buf []byte
}

func (d *digester) int(v int) {
	d.buf = binary.AppendVarint(d.buf, int64(v))
}

func (d *digester) str(s string) {
	d.int(len(s))
	d.buf = append(d.buf, s...)
	if len(d.buf) >= 32<<10 {
		d.flush()
	}
}

func (d *digester) flush() {
	_, _ = d.w.Write(d.buf)
	d.buf = d.buf[:0]
}

func (d *digester) node(n *yaml.Node) {
	if n == nil {
		d.int(0)
		return
	}
	d.int(1 + int(n.Kind))
	d.int(int(n.Style))
	d.str(n.Tag)
	d.str(n.Value)
	d.str(n.Anchor)
	d.str(n.HeadComment)
	d.str(n.LineComment)
	d.str(n.FootComment)
	if n.Kind == yaml.AliasNode {
		// an alias is its anchor's name (Value); its target is digested where it is defined
		if n.Alias != nil {
			d.str(n.Alias.Anchor)
		}
		return
	}
	d.int(len(n.Content))
	for _, c := range n.Content {
		d.node(c)
	}
}

// preservesComments reports whether ev keeps comments and field order itself when it runs fn
// (see render.CommentPreserver).
func preservesComments(ev render.Evaluator, fn kptfile.Function) bool {
	cp, ok := ev.(render.CommentPreserver)
	return ok && cp.PreservesComments(fn)
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
