package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Outcomes of a past release in history, besides the phase of one still in flight.
const (
	outcomePromoted   = "Promoted"
	outcomeRolledBack = "RolledBack"
	outcomeFailed     = "PromotionFailed"
	outcomeReplaced   = "Replaced"
	outcomeBypassed   = "Bypassed"
	outcomeUnanalysed = "Unanalysed"
)

// HistoryEntry is one release of a Deployment.
type HistoryEntry struct {
	Revision string    `json:"revision,omitempty"`
	Image    string    `json:"image,omitempty"`
	Outcome  string    `json:"outcome"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Reason says why it ended the way it did (the rollback's reason, what replaced it).
	Reason string `json:"reason,omitempty"`
}

// Duration is how long the release took, or has been running.
func (e HistoryEntry) Duration(now time.Time) time.Duration {
	end := e.Finished
	if end.IsZero() {
		end = now
	}
	if e.Started.IsZero() || end.Before(e.Started) {
		return 0
	}
	return end.Sub(e.Started)
}

// record is the part of an Event history reads.
type record struct {
	Time            time.Time
	Reason, Message string
}

// The Event messages history reads (rollout/plan and webhook/decide write them).
var (
	reHeld       = regexp.MustCompile(`^held revision (\S+) \((.*)\) for canary analysis`)
	reRetrying   = regexp.MustCompile(`^retrying revision (\S+)`)
	reRollingBck = regexp.MustCompile(`^rolling back revision (\S+): (.*)$`)
	rePromoted   = regexp.MustCompile(`^revision (\S+) \((.*)\) promoted`)
	reRolledBack = regexp.MustCompile(`^canary of revision (\S+) removed; (?:stable revision \S+ keeps serving \((.*)\)|the Deployment is back on stable revision (\S+))`)
	reBypassed   = regexp.MustCompile(`": (.*) goes out without canary analysis`)
	reUnanalysed = regexp.MustCompile(`^template revision (\S+) reached the pods without canary analysis`)
)

// assembleHistory rebuilds the releases of a Deployment, newest first, from its Events
// (ReleaseHeld and Retrying start one; Promoted, RolledBack and PromotionFailed end it; a
// ReleaseHeld while one is open replaces it; Bypassed is a template released without
// analysis, Unanalysed one that reached the pods past the webhook) and its state, which knows the latest release even when its Events have expired.
func assembleHistory(events []record, st spec.State) []HistoryEntry {
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b record) int { return a.Time.Compare(b.Time) })

	var out []HistoryEntry
	open := -1 // index in out of the release in flight, -1 for none
	latest := func(rev string) int {
		for i := len(out) - 1; i >= 0; i-- {
			if out[i].Revision == rev {
				return i
			}
		}
		return -1
	}
	end := func(i int, t time.Time, outcome, reason string) {
		if i < 0 || out[i].Outcome != "" {
			return
		}
		out[i].Outcome, out[i].Finished = outcome, t
		if out[i].Reason == "" {
			out[i].Reason = reason
		}
		if i == open {
			open = -1
		}
	}
	start := func(e HistoryEntry) {
		out = append(out, e)
		open = len(out) - 1
	}
	for _, ev := range events {
		switch spec.Reason(ev.Reason) {
		case spec.ReasonReleaseHeld:
			m := reHeld.FindStringSubmatch(ev.Message)
			if m == nil {
				continue
			}
			end(open, ev.Time, outcomeReplaced, "replaced by revision "+m[1])
			start(HistoryEntry{Revision: m[1], Image: m[2], Started: ev.Time})
		case spec.ReasonRetrying:
			m := reRetrying.FindStringSubmatch(ev.Message)
			if m == nil {
				continue
			}
			e := HistoryEntry{Revision: m[1], Started: ev.Time}
			if i := latest(m[1]); i >= 0 {
				e.Image = out[i].Image
			}
			end(open, ev.Time, outcomeReplaced, "replaced by a retry of revision "+m[1])
			start(e)
		case spec.ReasonRollingBack:
			if m := reRollingBck.FindStringSubmatch(ev.Message); m != nil {
				if i := latest(m[1]); i >= 0 && out[i].Outcome == "" {
					out[i].Reason = m[2]
				}
			}
		case spec.ReasonPromoted:
			if m := rePromoted.FindStringSubmatch(ev.Message); m != nil {
				end(latest(m[1]), ev.Time, outcomePromoted, "")
			}
		case spec.ReasonRolledBack:
			m := reRolledBack.FindStringSubmatch(ev.Message)
			if m == nil {
				continue
			}
			reason := m[2]
			if m[3] != "" {
				reason = "template set back to the stable revision " + m[3]
			}
			end(latest(m[1]), ev.Time, outcomeRolledBack, reason)
		case spec.ReasonPromotionFailed:
			end(open, ev.Time, outcomeFailed, ev.Message)
		case spec.ReasonUnanalysed:
			if m := reUnanalysed.FindStringSubmatch(ev.Message); m != nil {
				out = append(out, HistoryEntry{Revision: m[1], Outcome: outcomeUnanalysed, Started: ev.Time, Finished: ev.Time,
					Reason: "reached the pods without the admission hold"})
			}
		case spec.ReasonBypassed:
			image := ""
			if m := reBypassed.FindStringSubmatch(ev.Message); m != nil {
				image = m[1]
			}
			end(open, ev.Time, outcomeReplaced, "released without analysis ("+spec.AnnSkipAnalysis+")")
			out = append(out, HistoryEntry{Image: image, Outcome: outcomeBypassed, Started: ev.Time, Finished: ev.Time,
				Reason: spec.AnnSkipAnalysis + ` is "true"`})
		}
	}
	out = mergeState(out, st)
	slices.Reverse(out)
	return out
}

// sameRelease is how far apart the start of a release may be in its Event and in the state
// (the webhook stamps the state, then emits the Event).
const sameRelease = 5 * time.Second

// mergeState completes the latest release from the state: its outcome while in flight, what
// its expired Events no longer say, or the whole entry when none is left. Releases whose end
// no Event records are marked unknown.
func mergeState(out []HistoryEntry, st spec.State) []HistoryEntry {
	if st.Revision != "" {
		i := len(out) - 1
		for i >= 0 && out[i].Revision != st.Revision {
			i--
		}
		if i < 0 || !st.StartedAt.IsZero() && st.StartedAt.Sub(out[i].Started) > sameRelease {
			// No Event of this release is left (only, maybe, of an earlier release of the same
			// revision).
			out = append(out, HistoryEntry{Revision: st.Revision, Started: st.StartedAt})
			i = len(out) - 1
		}
		e := &out[i]
		if e.Image == "" {
			e.Image = st.Image
		}
		if e.Outcome == "" {
			switch {
			case st.Phase.InFlight():
				e.Outcome, e.Reason = string(st.Phase), st.Message
			case st.Phase == spec.PhaseSucceeded:
				e.Outcome, e.Finished = outcomePromoted, st.FinishedAt
			case st.Phase == spec.PhaseFailed:
				e.Outcome, e.Finished = outcomeRolledBack, st.FinishedAt
				e.Reason = strings.TrimPrefix(st.Message, "rolled back: ")
			case st.Phase == spec.PhaseIdle:
				e.Outcome, e.Finished, e.Reason = outcomeRolledBack, st.FinishedAt, st.Message
			}
		}
	}
	for i := range out {
		if out[i].Outcome == "" {
			out[i].Outcome = "Unknown"
		}
	}
	return out
}

// writeHistory renders the releases as a kubectl-style table.
func writeHistory(w io.Writer, entries []HistoryEntry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tIMAGE\tOUTCOME\tSTARTED\tDURATION\tREASON")
	for _, e := range entries {
		started := none
		if !e.Started.IsZero() {
			started = age(e.Started, now) + " ago"
		}
		dur := none
		if d := e.Duration(now); d > 0 {
			dur = d.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", orNone(e.Revision), orNone(e.Image), e.Outcome, started, dur, orNone(oneLine(e.Reason)))
	}
	return tw.Flush()
}

// History is the -o json|yaml form of history.
type History struct {
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Releases  []HistoryEntry `json:"releases"`
}

func history(ctx context.Context, cs kubernetes.Interface, ns, name, output string, w io.Writer) error {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if d.Labels[spec.LabelEnabled] != spec.ValueEnabled {
		return notOptedIn(d)
	}
	st, err := spec.ReadState(d.Annotations)
	if err != nil {
		return err
	}
	sel := fields.Set{"involvedObject.kind": "Deployment", "involvedObject.name": name}.AsSelector().String()
	evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return fmt.Errorf("list the Events of %s/%s: %w", ns, name, err)
	}
	var rs []record
	for _, e := range evs.Items {
		if e.InvolvedObject.UID != "" && e.InvolvedObject.UID != d.UID {
			continue // an earlier Deployment of the same name
		}
		rs = append(rs, record{Time: eventTime(e), Reason: e.Reason, Message: e.Message})
	}
	entries := assembleHistory(rs, st)
	if output != "" {
		return writeStructured(w, output, History{Namespace: ns, Name: name, Releases: entries})
	}
	if len(entries) == 0 {
		_, err := fmt.Fprintf(w, "No releases of %s/%s found (Events are kept for an hour by default).\n", ns, name)
		return err
	}
	return writeHistory(w, entries, time.Now())
}

// eventTime is when e happened first: eventTime for Events written through events.k8s.io (as
// Sluice writes them), firstTimestamp for the older kind.
func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}
