package scale

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sample is one sample of the Prometheus text exposition format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Samples is a scrape of a metrics endpoint.
type Samples []Sample

// ParseMetrics reads the Prometheus text format (what controller-runtime and etcd serve),
// skipping comments and lines it cannot read. It needs no Prometheus library, so the module's
// dependencies stay what the manager needs.
func ParseMetrics(r io.Reader) (Samples, error) {
	var out Samples
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := parseSample(line); ok {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

func parseSample(line string) (Sample, bool) {
	s := Sample{Labels: map[string]string{}}
	var rest string
	if i := strings.IndexAny(line, "{ "); i < 0 {
		return s, false
	} else if line[i] == '{' {
		s.Name = line[:i]
		labels, after, ok := parseLabels(line[i+1:])
		if !ok {
			return s, false
		}
		s.Labels, rest = labels, after
	} else {
		s.Name, rest = line[:i], line[i:]
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, false
	}
	s.Value = v
	return s, true
}

// parseLabels reads `k="v",…}` and returns the labels and what follows the closing brace.
func parseLabels(text string) (map[string]string, string, bool) {
	labels := map[string]string{}
	for {
		text = strings.TrimLeft(text, " ,")
		if strings.HasPrefix(text, "}") {
			return labels, text[1:], true
		}
		eq := strings.Index(text, "=\"")
		if eq < 0 {
			return nil, "", false
		}
		key := strings.TrimSpace(text[:eq])
		var val strings.Builder
		i := eq + 2
		for ; i < len(text) && text[i] != '"'; i++ {
			if text[i] == '\\' && i+1 < len(text) {
				i++
				switch text[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(text[i])
				}
				continue
			}
			val.WriteByte(text[i])
		}
		if i >= len(text) {
			return nil, "", false
		}
		labels[key] = val.String()
		text = text[i+1:]
	}
}

// Sum adds the values of the samples named name whose labels include every pair of match.
func (ss Samples) Sum(name string, match map[string]string) float64 {
	var total float64
	for _, s := range ss {
		if s.Name != name || !hasLabels(s.Labels, match) {
			continue
		}
		total += s.Value
	}
	return total
}

// By adds the values of the samples named name per value of label.
func (ss Samples) By(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		if s.Name == name {
			out[s.Labels[label]] += s.Value
		}
	}
	return out
}

func hasLabels(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Scrape reads the metrics endpoint url (plain HTTP, loopback).
func Scrape(ctx context.Context, url string) (Samples, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// Requests counts the API requests a client-go client sent, from controller-runtime's
// rest_client_requests_total: by HTTP method, and those answered 409 Conflict.
type Requests struct {
	ByMethod  map[string]float64
	Conflicts float64
}

// RequestsOf reads the request counters of a scrape of the manager's metrics.
func RequestsOf(ss Samples) Requests {
	return Requests{
		ByMethod:  ss.By("rest_client_requests_total", "method"),
		Conflicts: ss.Sum("rest_client_requests_total", map[string]string{"code": "409"}),
	}
}

// Sub is r minus an earlier count.
func (r Requests) Sub(before Requests) Requests {
	out := Requests{ByMethod: map[string]float64{}, Conflicts: r.Conflicts - before.Conflicts}
	for m, v := range r.ByMethod {
		if d := v - before.ByMethod[m]; d != 0 {
			out.ByMethod[m] = d
		}
	}
	return out
}

// Total is the number of requests of every method.
func (r Requests) Total() float64 {
	var t float64
	for _, v := range r.ByMethod {
		t += v
	}
	return t
}

// Writes is the number of requests that change something (POST, PUT, PATCH, DELETE).
func (r Requests) Writes() float64 {
	return r.ByMethod["POST"] + r.ByMethod["PUT"] + r.ByMethod["PATCH"] + r.ByMethod["DELETE"]
}

// String is e.g. "GET 120, PATCH 300 (409: 2)", methods in a fixed order.
func (r Requests) String() string {
	order := map[string]int{"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
	methods := make([]string, 0, len(r.ByMethod))
	for m := range r.ByMethod {
		methods = append(methods, m)
	}
	sort.Slice(methods, func(i, j int) bool {
		oi, iok := order[methods[i]]
		oj, jok := order[methods[j]]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return methods[i] < methods[j]
	})
	var parts []string
	for _, m := range methods {
		parts = append(parts, fmt.Sprintf("%s %s", m, thousands(int(r.ByMethod[m]))))
	}
	if len(parts) == 0 {
		return "none"
	}
	s := strings.Join(parts, ", ")
	if r.Conflicts > 0 {
		s += fmt.Sprintf(" (409: %s)", thousands(int(r.Conflicts)))
	}
	return s
}
