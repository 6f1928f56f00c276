package testenv

import (
	"net/http"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// Requests counts the API requests a client sent, by verb and resource, so tests can assert
// what the manager writes (and what it does not).
type Requests struct {
	mu     sync.Mutex
	counts map[string]int
}

// Wrap makes cfg count its requests in r.
func (r *Requests) Wrap(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			r.add(req)
			return rt.RoundTrip(req)
		})
	})
	return c
}

// Reset forgets what was counted.
func (r *Requests) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts = nil
}

// Writes returns the writes in namespace ns counted since the last Reset, keyed
// "VERB resource[/subresource] [name]" (for example "PATCH packagerevisions/status
// repo.pkg.v1"; a create has no name), with their number.
func (r *Requests) Writes(ns string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, n := range r.counts {
		verb, rest, _ := strings.Cut(k, " ")
		space, resource, _ := strings.Cut(rest, " ")
		if verb != http.MethodGet && space == ns {
			out[verb+" "+resource] += n
		}
	}
	return out
}

func (r *Requests) add(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	ns, resource := resourceOf(req.URL.Path)
	r.counts[req.Method+" "+ns+" "+resource]++
}

// resourceOf reduces an API path to its namespace and "resource[/subresource] [name]":
// /apis/kpo.dev/v1alpha1/namespaces/ns/packagerevisions/name/status →
// ns, "packagerevisions/status name".
func resourceOf(path string) (string, string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := range parts {
		if parts[i] != "namespaces" || i+2 >= len(parts) {
			continue
		}
		switch rest := parts[i+2:]; len(rest) {
		case 1:
			return parts[i+1], rest[0]
		case 2:
			return parts[i+1], rest[0] + " " + rest[1]
		default:
			return parts[i+1], rest[0] + "/" + rest[2] + " " + rest[1]
		}
	}
	return "", parts[len(parts)-1]
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
