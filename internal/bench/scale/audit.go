package scale

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
)

// auditPolicy logs the metadata of every request of the manager's identity, once, when it
// completes, and nothing else: the manager's metrics count requests by HTTP method only, the
// audit log says which object each write touched.
var auditPolicy = fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  users: [%q]
- level: None
`, kpov1.ManagerUsername)

// AuditEvent is the part of an audit.k8s.io/v1 Event the benchmark reads.
type AuditEvent struct {
	Verb      string `json:"verb"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// Kind is "verb resource[/subresource]", e.g. "patch packagerevisions/status".
func (e AuditEvent) Kind() string {
	if e.ObjectRef == nil {
		return e.Verb
	}
	r := e.ObjectRef.Resource
	if e.ObjectRef.Subresource != "" {
		r += "/" + e.ObjectRef.Subresource
	}
	return e.Verb + " " + r
}

// IsWrite reports whether the request asked to change something.
func (e AuditEvent) IsWrite() bool {
	switch e.Verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// AuditLog reads the API server's audit log from where it last stopped.
type AuditLog struct {
	path   string
	offset int64
}

// Next returns the events written since the last call (all of them the first time).
func (a *AuditLog) Next() ([]AuditEvent, error) {
	f, err := os.Open(a.path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var events []AuditEvent
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			// A partial last line is read again next time.
			return events, nil
		}
		if err != nil {
			return events, err
		}
		a.offset += int64(len(line))
		var e AuditEvent
		if json.Unmarshal(line, &e) == nil {
			events = append(events, e)
		}
	}
}

// Skip moves past everything logged so far.
func (a *AuditLog) Skip() error {
	_, err := a.Next()
	return err
}

// WriteSummary counts audited writes by kind and, per kind, by object name.
type WriteSummary struct {
	Counts map[string]int
	// Objects counts the writes of each kind per object name.
	Objects   map[string]map[string]int
	Conflicts int
}

// SummarizeWrites counts the writes among events.
func SummarizeWrites(events []AuditEvent) WriteSummary {
	s := WriteSummary{Counts: map[string]int{}, Objects: map[string]map[string]int{}}
	for _, e := range events {
		if !e.IsWrite() {
			continue
		}
		k := e.Kind()
		s.Counts[k]++
		if e.ResponseStatus != nil && e.ResponseStatus.Code == 409 {
			s.Conflicts++
		}
		if e.ObjectRef != nil {
			if s.Objects[k] == nil {
				s.Objects[k] = map[string]int{}
			}
			s.Objects[k][e.ObjectRef.Name]++
		}
	}
	return s
}

// examples names at most n objects of kind, the most written first, with "×N" when one was
// written more than once.
func (s WriteSummary) examples(kind string, n int) string {
	objs := s.Objects[kind]
	names := make([]string, 0, len(objs))
	for name := range objs {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if objs[names[i]] != objs[names[j]] {
			return objs[names[i]] > objs[names[j]]
		}
		return names[i] < names[j]
	})
	var parts []string
	for i, name := range names {
		if i == n {
			parts = append(parts, fmt.Sprintf("… %d objects in all", len(names)))
			break
		}
		if objs[name] > 1 {
			name += fmt.Sprintf(" ×%d", objs[name])
		}
		parts = append(parts, name)
	}
	return strings.Join(parts, ", ")
}

// Total is the number of writes.
func (s WriteSummary) Total() int {
	n := 0
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// String is e.g. "patch packagerevisions/status 300 (repo-001.pkg-0000.v1, …); patch repositories/status 1 (repo-001)".
func (s WriteSummary) String() string {
	if len(s.Counts) == 0 {
		return "none"
	}
	kinds := make([]string, 0, len(s.Counts))
	for k := range s.Counts {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if s.Counts[kinds[i]] != s.Counts[kinds[j]] {
			return s.Counts[kinds[i]] > s.Counts[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	var parts []string
	for _, k := range kinds {
		ex := ""
		if len(s.Objects[k]) > 0 {
			ex = " (" + s.examples(k, 6) + ")"
		}
		parts = append(parts, fmt.Sprintf("%s %d%s", k, s.Counts[k], ex))
	}
	out := strings.Join(parts, "; ")
	if s.Conflicts > 0 {
		out += fmt.Sprintf("; %d answered 409 Conflict", s.Conflicts)
	}
	return out
}

// CountKinds counts all events (reads included) by kind.
func CountKinds(events []AuditEvent) map[string]int {
	out := map[string]int{}
	for _, e := range events {
		out[e.Kind()]++
	}
	return out
}
