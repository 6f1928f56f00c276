package scale

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Header describes the run for the report.
type Header struct {
	Date, Machine, Commit string
	// Flags are the manager's extra flags; Drafts, PackageBytes and SyncInterval the
	// generated repositories' shape.
	Flags []string
	// APIServerFlags are the extra kube-apiserver flags.
	APIServerFlags []string
	Drafts         int
	PackageBytes   int
	SyncInterval   time.Duration
	Authoring      int
}

// WriteReport writes the Markdown report: two tables (one row per size) and the details of
// each size; failed holds the error of a size that did not complete.
func WriteReport(w io.Writer, h Header, results []*Result, failed map[string]error) {
	fmt.Fprintf(w, "# kpo scale benchmark (make bench-scale)\n\n")
	fmt.Fprintf(w, "- date: %s\n- machine: %s\n- kpo: %s\n", h.Date, h.Machine, h.Commit)
	fmt.Fprintf(w, "- repositories: R × P packages × T published tags each (one commit and tag per revision, kpt line and Approved-by trailer), "+
		"packages of about %d bytes (Kptfile, Deployment, Service, ConfigMaps), %d draft branches per repository; spec.sync.interval %s\n",
		h.PackageBytes, h.Drafts, h.SyncInterval)
	flags := "defaults"
	if len(h.Flags) > 0 {
		flags = strings.Join(h.Flags, " ")
	}
	apiFlags := "defaults"
	if len(h.APIServerFlags) > 0 {
		apiFlags = strings.Join(h.APIServerFlags, " ")
	}
	fmt.Fprintf(w, "- manager: the real binary as a process (flags: %s); envtest kube-apiserver (flags: %s) and etcd, fresh per size\n\n", flags, apiFlags)

	fmt.Fprintln(w, "## Full sync and footprint")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| R × P × T | published revisions (PackageRevisions) | registration → all Ready | manager peak RSS | kube-apiserver RSS (growth): after the sync / settled | etcd db (in use) | manager requests until quiet |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range results {
		perRev := 0.0
		if r.PackageRevisions > 0 {
			perRev = r.SyncRequests.Total() / float64(r.PackageRevisions)
		}
		fmt.Fprintf(w, "| %s | %s (%s) | %s | %s | %s (%s) / %s (%s) | %s (%s) | %s: %s; %.1f per PackageRevision |\n",
			sizeLabel(r.Size), thousands(r.Size.Published()), thousands(r.PackageRevisions), seconds(r.FullSync), mib(r.ManagerPeak),
			mib(r.APIServer.RSS), signedMiB(r.APIServer.RSS-r.APIServerBase.RSS),
			mib(r.APIServerSettled.RSS), signedMiB(r.APIServerSettled.RSS-r.APIServerBase.RSS), mib(r.Etcd.DB), mib(r.Etcd.InUse),
			thousands(int(r.SyncRequests.Total())), r.SyncRequests, perRev)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "## Lists, authoring (p50 / max of %d rounds) and resyncs\n\n", h.Authoring)
	fmt.Fprintln(w, "| R × P × T | `kubectl get` all PackageRevisions / as many small ConfigMaps / small custom resources (table) | the same as JSON | init → Ready | edit → committed | propose | approve | unchanged resync: manager writes | resync after one new tag: manager writes |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sizeLabel(r.Size),
			listCell(r.TableRevisions, r.TableConfigMaps, r.TableCustom), listCell(r.ListRevisions, r.ListConfigMaps, r.ListCustom),
			p50max(r.Authoring.Init), p50max(r.Authoring.Edit), p50max(r.Authoring.Propose), p50max(r.Authoring.Approve),
			writesCell(r.Unchanged), writesCell(r.NewTag))
	}
	fmt.Fprintln(w)

	for _, r := range results {
		fmt.Fprintf(w, "## %s in detail\n\n", sizeLabel(r.Size))
		fmt.Fprintf(w, "- Git generation (fast-import): %s; full sync %s, then %s until the manager was quiet (3 s without a request)%s\n",
			r.GitGen.Round(time.Millisecond), seconds(r.FullSync), seconds(r.Settle), map[bool]string{true: "", false: " — not quiet within the bound"}[r.Settled])
		fmt.Fprintf(w, "- kube-apiserver: %s before registration, %s after (peak %s), %s settled; Go heap in use %s before, %s settled; etcd db %s before, %s after (%s in use), data directory %s\n",
			mib(r.APIServerBase.RSS), mib(r.APIServer.RSS), mib(r.APIServer.Peak), mib(r.APIServerSettled.RSS), mib(r.APIServerBaseHeap), mib(r.APIServerHeap), mib(r.EtcdBase.DB), mib(r.Etcd.DB), mib(r.Etcd.InUse), mib(r.Etcd.Dir))
		fmt.Fprintf(w, "- manager peak RSS: %s after the full sync, %s at the end of the run\n", mib(r.ManagerPeak), mib(r.ManagerPeakEnd))
		fmt.Fprintf(w, "- manager requests during the full sync, from the audit log: %s\n", kindsLine(r.SyncAudit))
		for _, l := range []struct {
			how                    string
			revisions, cms, custom List
		}{{"JSON", r.ListRevisions, r.ListConfigMaps, r.ListCustom}, {"table, as kubectl get", r.TableRevisions, r.TableConfigMaps, r.TableCustom}} {
			fmt.Fprintf(w, "- lists (%s; median of 3): %s PackageRevisions (%s) in %s, %s small ConfigMaps (%s) in %s, %s small custom resources (%s) in %s\n", l.how,
				thousands(l.revisions.Items), mib(int64(l.revisions.Bytes)), millis(l.revisions.Time),
				thousands(l.cms.Items), mib(int64(l.cms.Bytes)), millis(l.cms.Time),
				thousands(l.custom.Items), mib(int64(l.custom.Bytes)), millis(l.custom.Time))
		}
		fmt.Fprintf(w, "- load average (1, 5, 15 min) at the start: %s, at the end: %s\n", r.LoadBefore, r.LoadAfter)
		for _, x := range []struct {
			name string
			rs   Resync
		}{{"unchanged resync of " + r.ResyncRepository, r.Unchanged}, {"resync of " + r.ResyncRepository + " after one new tag", r.NewTag}} {
			fmt.Fprintf(w, "- %s: handled in %s; manager requests %s; writes: %s%s\n", x.name, millis(x.rs.Handled), x.rs.Requests,
				x.rs.Writes, map[bool]string{true: "", false: " (manager not quiet within the bound)"}[x.rs.Quiet])
		}
		fmt.Fprintln(w)
	}
	if len(failed) > 0 {
		fmt.Fprintln(w, "## Sizes that did not complete")
		fmt.Fprintln(w)
		names := make([]string, 0, len(failed))
		for n := range failed {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "- %s: %v\n", n, failed[n])
		}
		fmt.Fprintln(w)
	}
}

// sizeLabel is "10 × 100 × 3".
func sizeLabel(s Size) string {
	return fmt.Sprintf("%d × %d × %d", s.Repositories, s.Packages, s.Tags)
}

func writesCell(r Resync) string {
	total := r.Writes.Total()
	if total == 0 {
		return "0"
	}
	counts := make([]string, 0, len(r.Writes.Counts))
	for k, c := range r.Writes.Counts {
		counts = append(counts, fmt.Sprintf("%s %d", k, c))
	}
	sort.Strings(counts)
	return fmt.Sprintf("%d: %s", total, strings.Join(counts, ", "))
}

func kindsLine(kinds map[string]int) string {
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if kinds[keys[i]] != kinds[keys[j]] {
			return kinds[keys[i]] > kinds[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, thousands(kinds[k])))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func p50max(times []time.Duration) string {
	if len(times) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s", millis(p50(times)), millis(percentile(times, 1)))
}

// mib is b in MiB: one decimal below 10 MiB, whole MiB with thousands separators above.
func mib(b int64) string {
	if b < 10<<20 {
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%s MiB", thousands(int((b+(1<<19))>>20)))
}

func signedMiB(b int64) string {
	if b < 0 {
		return "-" + mib(-b)
	}
	return "+" + mib(b)
}

func seconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%s s", thousands(int(d.Round(time.Second).Seconds())))
}

func millis(d time.Duration) string {
	return fmt.Sprintf("%s ms", thousands(int(d.Round(time.Millisecond).Milliseconds())))
}

// thousands writes n with a comma every three digits, as the README does.
func thousands(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// listCell is "<revisions> / <config maps> (<ratio>×)".
// listCell is the list of the PackageRevisions against the two baselines, with the ratios.
func listCell(revisions, configMaps, custom List) string {
	ratio := func(base List) string {
		if base.Time <= 0 {
			return ""
		}
		return fmt.Sprintf(" (%.1f×)", float64(revisions.Time)/float64(base.Time))
	}
	return fmt.Sprintf("%s / %s%s / %s%s", millis(revisions.Time), millis(configMaps.Time), ratio(configMaps), millis(custom.Time), ratio(custom))
}
