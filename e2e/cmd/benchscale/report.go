package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// results are everything the Scale section of docs/benchmarks.md shows. They are kept in the
// section itself (an HTML comment), so a later run — N = 200 by the lead, N = 1,000 for Sluice
// alone — adds its rows to the earlier ones instead of replacing them.
type results struct {
	Runs      []summary        `json:"runs"`
	Admission *admissionResult `json:"admission,omitempty"`
	Memory    *memoryResult    `json:"memory,omitempty"`
}

// merge adds the runs of next to r, a run of the same series (controller and control plane
// limit) and N replacing the earlier one, and takes next's admission and memory results if it
// has them.
func (r results) merge(next results) results {
	out := results{Admission: r.Admission, Memory: r.Memory}
	if next.Memory != nil {
		out.Memory = next.Memory
	}
	for _, s := range r.Runs {
		if !slices.ContainsFunc(next.Runs, func(n summary) bool { return n.series() == s.series() && n.N == s.N }) {
			out.Runs = append(out.Runs, s)
		}
	}
	out.Runs = append(out.Runs, next.Runs...)
	slices.SortFunc(out.Runs, func(a, b summary) int {
		return cmp.Or(cmp.Compare(controllerOrder(a.Controller), controllerOrder(b.Controller)),
			cmp.Compare(a.ControlPlaneQPS, b.ControlPlaneQPS), cmp.Compare(a.N, b.N))
	})
	if next.Admission != nil {
		out.Admission = next.Admission
	}
	return out
}

func controllerOrder(name string) int {
	switch name {
	case "sluice":
		return 0
	case "flagger":
		return 1
	}
	return 2
}

const (
	sectionTitle = "## Scale"
	dataPrefix   = "<!-- bench-scale data: "
	dataSuffix   = " -->"
)

var (
	headingRE     = regexp.MustCompile(`(?m)^## Scale[ \t]*$`)
	nextHeadingRE = regexp.MustCompile(`(?m)^## `)
)

// sectionBounds finds the Scale section: from its heading to the next level-2 heading or the end.
func sectionBounds(doc string) (start, end int, ok bool) {
	loc := headingRE.FindStringIndex(doc)
	if loc == nil {
		return 0, 0, false
	}
	next := nextHeadingRE.FindStringIndex(doc[loc[1]:])
	if next == nil {
		return loc[0], len(doc), true
	}
	return loc[0], loc[1] + next[0], true
}

// replaceSection puts section (which starts with its heading) in place of doc's Scale section,
// or appends it.
func replaceSection(doc, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	start, end, ok := sectionBounds(doc)
	if !ok {
		return strings.TrimRight(doc, "\n") + "\n\n" + section
	}
	if end < len(doc) {
		section += "\n"
	}
	return doc[:start] + section + doc[end:]
}

// existingResults reads the results kept in doc's Scale section (none if there is none).
func existingResults(doc string) (results, error) {
	start, end, ok := sectionBounds(doc)
	if !ok {
		return results{}, nil
	}
	sec := doc[start:end]
	i := strings.Index(sec, dataPrefix)
	if i < 0 {
		return results{}, nil
	}
	raw := sec[i+len(dataPrefix):]
	j := strings.Index(raw, dataSuffix)
	if j < 0 {
		return results{}, fmt.Errorf("the Scale section's data comment is not closed")
	}
	var r results
	if err := json.Unmarshal([]byte(raw[:j]), &r); err != nil {
		return results{}, fmt.Errorf("the Scale section's data comment: %w", err)
	}
	return r, nil
}

// render writes the Scale section for r; svg is the plot's path relative to the document.
func render(r results, svg string) (string, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("%s\n\n", sectionTitle)
	p("`flock /tmp/sluice-e2e.lock make bench-scale` (`BENCH_SCALE_FLAGS='-n 10,50,200 -only sluice|flagger -note TEXT'`;\n")
	p("N = 1,000 for Sluice alone: `-n 1000 -only sluice`). The same scenario for Sluice and for Flagger\n")
	p("v1.36.1 (its `kubernetes` provider) on the local control plane (kwok pods): N Deployments with 2\n")
	p("replicas, blue/green, 3 analysis runs at a 10 s interval (a 30 s schedule), one Prometheus check\n")
	p("`vector(100)`, the image of all N set at once. Each controller runs on its own control plane, with\n")
	p("default flags, a fresh process for each N. Rows of earlier runs stay until the same controller\n")
	p("and N is measured again; each row says when, on which commit, and how busy the shared 2-core\n")
	p("machine was (1-minute load average as the releases started). Rows named \"control plane Q/s\"\n")
	p("ran with kube-controller-manager's and kube-scheduler's client limits raised to Q requests/s\n")
	p("(`-control-plane-qps Q`; their defaults are 20 and 50/s), as control planes of large clusters\n")
	p("run them: the controller-manager's Deployment controller rolls every canary and parent out,\n")
	p("and at its default it sets the pace of both controllers at N = 200.\n\n")
	p("![Release time (p50, bars min–max) as a multiple of the 30 s schedule vs N, Sluice and Flagger](%s)\n\n", svg)

	p("### Release time, × the 30 s schedule\n\n")
	p("From a Deployment's own `set image` until its release is done (Sluice: phase Succeeded on the\nnew revision and the Deployment rolled; Flagger: Canary Succeeded).\n\n")
	p("| controller | N | done | min | p50 | p90 | max | measured | load | note |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Runs {
		x := func(v float64) string { return fmt.Sprintf("%.2f×", v/s.ScheduleSeconds) }
		if s.Release.Count == 0 {
			x = func(float64) string { return "–" }
		}
		p("| %s | %d | %d/%d | %s | %s | %s | %s | %s, %s | %.1f | %s |\n", s.series(), s.N, s.Done, s.N,
			x(s.Release.Min), x(s.Release.P50), x(s.Release.P90), x(s.Release.Max), s.Date, s.Commit, s.Load, s.Note)
	}

	p("\n### Where the time goes, seconds\n\n")
	p("Start: `set image` → the canary Deployment (Sluice creates `<name>-canary`; Flagger scales the\n")
	p("Deployment itself up from zero). To analysis: `set image` → the first recorded analysis time\n")
	p("(Sluice: canary ready, its analysis clock starts; Flagger: the tick that starts the analysis).\n")
	p("Step lag: each later analysis run's recorded time minus the time it was due, one interval after\n")
	p("the run before. Finish: the last recorded analysis time → done (Sluice: last run → promoted and\n")
	p("rolled; Flagger: Promoting → Succeeded).\n\n")
	p("| controller | N | start p50 | start p99 | to analysis p50 | to analysis p99 | lag runs | lag p50 | lag p99 | finish p50 | finish p99 |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Runs {
		p("| %s | %d | %.2f | %.2f | %.2f | %.2f | %d | %.3f | %.3f | %.2f | %.2f |\n", s.series(), s.N, s.Start.P50, s.Start.P99,
			s.ToAnalysis.P50, s.ToAnalysis.P99, s.Lag.Count, s.Lag.P50, s.Lag.P99, s.Finish.P50, s.Finish.P99)
	}

	p("\n### Controller cost\n\n")
	p("CPU: user + system time of the controller process from the first `set image` to the last\n")
	p("release done (`/proc/PID/stat`). Peak RSS: its `VmHWM` (since the fresh process started, so\n")
	p("including its start and the creation of the N Deployments). API requests: every request of the\n")
	p("controller's user in the same window, from the API server's audit log, divided by N.\n\n")
	p("Deployment / ReplicaSet controller: the requests the controller-manager's two controllers sent\n")
	p("in the window, per release (audit log): each has its own client at the controller-manager's\n")
	p("limit (default 20 requests/s), so N releases keep the busier one busy for at least N × that /\n")
	p("the limit, in seconds.\n\n")
	p("| controller | N | window s | CPU s | CPU s per release | peak RSS MiB | API requests per release | Deployment / ReplicaSet controller per release | their floor s |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Runs {
		cm, floor := "–", "–"
		if s.Cluster != nil {
			d, rs := s.Cluster["deployment-controller"], s.Cluster["replicaset-controller"]
			cm, floor = fmt.Sprintf("%.1f / %.1f", d, rs), fmt.Sprintf("%.0f", float64(s.N)*max(d, rs)/s.controllerManagerQPS())
		}
		p("| %s | %d | %.0f | %.1f | %.3f | %.0f | %.1f | %s | %s |\n", s.series(), s.N, s.WindowSeconds, s.CPUSeconds,
			s.CPUSeconds/float64(s.N), s.PeakRSSMiB, total(s.Requests), cm, floor)
	}
	var queued []summary
	for _, s := range r.Runs {
		if s.Queue != nil {
			queued = append(queued, s)
		}
	}
	if len(queued) > 0 {
		p("\n### Sluice's work queue\n\n")
		p("From Sluice's own metrics (controller-runtime's, scraped every second) over the same window:\n")
		p("steps run (reconciles) per release, how long a step took, how long a due step waited in the\n")
		p("queue (the histogram's buckets are powers of ten), and the most workers busy at once (of\n")
		p("`--concurrency`) and items due at once.\n\n")
		p("| controller | N | steps per release | step p50 s | step p99 s | wait p50 s | wait p99 s | most workers busy | most items due |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range queued {
			q := s.Queue
			p("| %s | %d | %.1f | %.3f | %.3f | %.3g | %.3g | %.0f | %.0f |\n", s.series(), s.N, q.Reconciles/float64(s.N), q.ReconcileP50, q.ReconcileP99,
				q.WaitP50, q.WaitP99, q.MaxWorkers, q.MaxDepth)
		}
	}
	if len(r.Runs) > 0 {
		p("\n### API requests per release by verb and resource\n\n")
		p("| request |")
		for _, s := range r.Runs {
			p(" %s N=%d |", s.series(), s.N)
		}
		p("\n|---|%s\n", strings.Repeat("---|", len(r.Runs)))
		for _, row := range requestRows(r.Runs) {
			p("| %s |", row.key)
			for _, v := range row.values {
				p(" %s |", perRelease(v))
			}
			p("\n")
		}
	}

	if a := r.Admission; a != nil {
		p("\n### Admission latency through the API server\n\n")
		p("%d server-side dry-run updates of an opted-in Deployment per setup, one at a time, the setups\n", a.Requests)
		p("taking turns: each changes the image, so Sluice's webhook takes its full path (a held release)\n")
		p("while nothing is stored. Setups: no webhook; a no-op webhook (an in-process HTTPS server that\n")
		p("allows everything, registered like Sluice's); Sluice's webhook. Measured %s, %s, load %.1f%s.\n\n",
			a.Date, a.Commit, a.Load, noteSuffix(a.Note))
		p("| webhook | p50 ms | p99 ms | p50 × none | p99 × none | the call, mean ms |\n|---|---|---|---|---|---|\n")
		var none admissionLatency
		for _, c := range a.Cases {
			if c.Webhook == caseNone {
				none = c
			}
		}
		var noop, sluice admissionLatency
		for _, c := range a.Cases {
			call := "–"
			if c.CallMean > 0 {
				call = fmt.Sprintf("%.2f", c.CallMean)
			}
			p("| %s | %.2f | %.2f | %s | %s | %s |\n", c.Webhook, c.P50, c.P99, ratio(c.P50, none.P50), ratio(c.P99, none.P99), call)
			switch c.Webhook {
			case caseNoop:
				noop = c
			case caseSluice:
				sluice = c
			}
		}
		if noop.Webhook != "" && sluice.Webhook != "" {
			p("\nLatency a webhook adds at p99 (its p99 minus none's): no-op %.2f ms, Sluice %.2f ms — Sluice's is\n", noop.P99-none.P99, sluice.P99-none.P99)
			p("%s× the no-op's (issue 14's target: ≤ 1.2×; p99s of %d requests on a shared machine are noisy).\n",
				ratio(sluice.P99-none.P99, noop.P99-none.P99), a.Requests)
			if noop.CallMean > 0 && sluice.CallMean > 0 {
				p("\"The call\" is the API server's own measure of a webhook call (its\n")
				p("`%s`: the AdmissionReview sent, the webhook's server, the answer\n", webhookMetric)
				p("read); the rest of what a webhook adds is the API server's own work, such as applying a\n")
				p("returned patch. Sluice's calls took %.2f ms more than the no-op's on average; its p50 added\n", sluice.CallMean-noop.CallMean)
				p("%.2f ms more than the no-op's.", (sluice.P50-none.P50)-(noop.P50-none.P50))
				if sluice.ServedMean > 0 {
					p(" Sluice's webhook server, by its own measure (`%s`:\n", servedMetric)
					p("from reading a request to writing the answer), took %.2f ms per request.", sluice.ServedMean)
				}
				p("\n")
			}
		}
	}

	if m := r.Memory; m != nil {
		p("\n### Memory beside objects Sluice does not manage\n\n")
		p("A fresh Sluice releases %d opted-in Deployments (this scenario) on the otherwise empty\n", m.Releases)
		p("cluster; then %d Deployments (paused at 0 replicas), %d Services and %d bare ReplicaSets that\n", m.Unmanaged, m.Unmanaged, m.Unmanaged)
		p("are not opted in are created, and another fresh Sluice releases %d more. Peak RSS is VmHWM from\n", m.Releases)
		p("the process's start (its caches' first lists included) to the last release done; RSS is VmRSS\n")
		p("then. Measured %s, %s, load %.1f%s.\n\n", m.Date, m.Commit, m.Load, noteSuffix(m.Note))
		p("| cluster | peak RSS MiB | RSS at the end MiB | API requests per release |\n|---|---|---|---|\n")
		p("| empty | %.1f | %.1f | %.1f |\n", m.Empty.PeakRSSMiB, m.Empty.RSSMiB, m.Empty.Requests)
		p("| %d unmanaged of each | %.1f | %.1f | %.1f |\n", m.Unmanaged, m.With.PeakRSSMiB, m.With.RSSMiB, m.With.Requests)
		p("| ratio | %s | %s | |\n", ratio(m.With.PeakRSSMiB, m.Empty.PeakRSSMiB), ratio(m.With.RSSMiB, m.Empty.RSSMiB))
	}

	p("\n### How it is measured\n\n")
	p("- Per-release times come from watch events (Deployments, and Flagger's Canaries), stamped when\n")
	p("  each event arrives; nothing polls.\n")
	p("- Step lag uses the times the controllers record: Sluice's `sluice.dev/state` `lastRunAt`\n")
	p("  (nanoseconds; the canary-ready time, then each of the 3 runs); Flagger's Canary\n")
	p("  `status.lastTransitionTime`, which it sets at every status write (whole seconds, so ±1 s) —\n")
	p("  the writes of one analysis tick each, from the tick that starts the analysis (iteration 1, no\n")
	p("  check yet) through iterations 2–4 to Promoting, so 4 lags per release. Flagger's blue/green\n")
	p("  takes 8 ticks of its per-Canary ticker from `set image` to Succeeded — scale the canary up;\n")
	p("  start (no check); iterations 2, 3 and 4, each after a check; a check and promote; shift\n")
	p("  traffic; finalise — and the first comes up to an interval after `set image`, so even an idle\n")
	p("  run takes 7–8 intervals (2.3–2.7× this schedule). Sluice's takes the schedule plus the\n")
	p("  canary's start and the promotion's rolling update.\n")
	p("- `set image` is the strategic merge patch `kubectl set image` sends, for all N at once from\n")
	p("  one process.\n")
	p("- Flagger runs with `-mesh-provider kubernetes -metrics-server <prometheus> -port P\n")
	p("  -log-level info` (the log level of its Helm chart; the binary's default is debug) as a user\n")
	p("  bound to cluster-admin; Sluice as `e2e/stack` starts it, with its own RBAC.\n")
	p("\n%s%s%s\n", dataPrefix, data, dataSuffix)
	return b.String(), nil
}

type requestRow struct {
	key    string
	values []float64
}

// requestRows are the "verb resource" rows of the request table, the largest first; requests
// under 0.05 per release in every run are summed into one "other" row.
func requestRows(runs []summary) []requestRow {
	keys := map[string]bool{}
	for _, s := range runs {
		for k := range s.Requests {
			keys[k] = true
		}
	}
	var rows []requestRow
	other := requestRow{key: "other", values: make([]float64, len(runs))}
	for k := range keys {
		row := requestRow{key: k, values: make([]float64, len(runs))}
		small := true
		for i, s := range runs {
			row.values[i] = s.Requests[k]
			if row.values[i] >= 0.05 {
				small = false
			}
		}
		if small {
			for i, v := range row.values {
				other.values[i] += v
			}
			continue
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b requestRow) int {
		return cmp.Or(cmp.Compare(slices.Max(b.values), slices.Max(a.values)), cmp.Compare(a.key, b.key))
	})
	if slices.Max(append([]float64{0}, other.values...)) > 0 {
		rows = append(rows, other)
	}
	sum := requestRow{key: "**total**", values: make([]float64, len(runs))}
	for i, s := range runs {
		sum.values[i] = total(s.Requests)
	}
	return append(rows, sum)
}

func perRelease(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(v, base float64) string {
	if base <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v/base)
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return "; " + note
}
