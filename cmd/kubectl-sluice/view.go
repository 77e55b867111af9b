package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Release is what the plugin shows of one opted-in Deployment: its current template and the
// release state Sluice keeps on it. It is also the -o json|yaml form of status and list.
type Release struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Template is the revision (template hash) of the Deployment's current pod template.
	Template string `json:"templateRevision"`
	// Paused is the Deployment's spec.paused.
	Paused bool       `json:"paused"`
	State  spec.State `json:"state"`
	// StateError says why the state annotation could not be read ("" when it could).
	StateError string `json:"stateError,omitempty"`
	// Rollout is the Deployment's own rollout progress (its status), which Sluice's state
	// message does not repeat: that message stays the same while the Deployment rolls.
	Rollout Rollout `json:"rollout"`
}

// Rollout is what the Deployment controller reports of a Deployment's pods.
type Rollout struct {
	Replicas  int32 `json:"replicas"`
	Updated   int32 `json:"updatedReplicas"`
	Available int32 `json:"availableReplicas"`
}

// releaseOf reads the release of d.
func releaseOf(d *appsv1.Deployment) Release {
	r := Release{Namespace: d.Namespace, Name: d.Name, Template: spec.TemplateHash(&d.Spec.Template), Paused: d.Spec.Paused,
		Rollout: Rollout{Replicas: 1, Updated: d.Status.UpdatedReplicas, Available: d.Status.AvailableReplicas}}
	if d.Spec.Replicas != nil {
		r.Rollout.Replicas = *d.Spec.Replicas
	}
	st, err := spec.ReadState(d.Annotations)
	r.State = st
	if err != nil {
		r.StateError = err.Error()
	}
	return r
}

const none = "<none>"

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

// progress is how far the release went: the step of a canary ("3/5") or the analysis run of an
// iterative strategy, "" without a plan.
func progress(st spec.State) string {
	p := st.Plan
	switch {
	case p == nil:
		return ""
	case p.Iterative():
		return fmt.Sprintf("%d/%d", st.Iteration, p.Iterations)
	case len(p.Steps) == 0:
		return ""
	}
	return fmt.Sprintf("%d/%d", min(st.Step+1, len(p.Steps)), len(p.Steps))
}

// age is how long ago t was, the way kubectl prints ages ("45s", "3m10s", "2d"); <none> for
// the zero time.
func age(t, now time.Time) string {
	if t.IsZero() {
		return none
	}
	return duration.HumanDuration(now.Sub(t))
}

// writeList renders the releases as kubectl renders `get`: upper-case headers, columns
// aligned with tabwriter, NAMESPACE first when they span namespaces.
func writeList(w io.Writer, rs []Release, allNamespaces bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	cols := []string{"NAME", "PHASE", "WEIGHT", "PROGRESS", "FAILED", "REVISION", "IMAGE", "AGE", "MESSAGE"}
	if allNamespaces {
		cols = append([]string{"NAMESPACE"}, cols...)
	}
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, r := range rs {
		st := r.State
		failed := none
		if st.Plan != nil {
			failed = fmt.Sprintf("%d/%d", st.FailedChecks, st.Plan.Threshold)
		}
		row := []string{r.Name, string(st.Phase), fmt.Sprintf("%d%%", st.Weight), orNone(progress(st)), failed,
			orNone(st.Revision), orNone(st.Image), age(st.StartedAt, now), orNone(oneLine(message(r)))}
		if allNamespaces {
			row = append([]string{r.Namespace}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func message(r Release) string {
	if r.StateError != "" {
		return r.StateError
	}
	return r.State.Message
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// writeStatus renders one release the way `kubectl describe` does: aligned "Key:  value"
// lines, then its last check readings as a table.
func writeStatus(w io.Writer, r Release, now time.Time) error {
	st := r.State
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", r.Name)
	fmt.Fprintf(tw, "Namespace:\t%s\n", r.Namespace)
	fmt.Fprintf(tw, "Phase:\t%s\n", st.Phase)
	if st.Revision != "" {
		fmt.Fprintf(tw, "Revision:\t%s (%s)\n", st.Revision, st.Image)
	}
	if st.Stable != "" {
		fmt.Fprintf(tw, "Stable:\t%s\n", st.Stable)
	}
	if st.Revision != "" && r.Template != st.Revision && r.Template != st.Stable {
		fmt.Fprintf(tw, "Template:\t%s (not yet released)\n", r.Template)
	}
	if p := st.Plan; p != nil && st.Phase.InFlight() {
		fmt.Fprintf(tw, "Release:\t%s\n", describePlan(p))
		if p.Iterative() {
			fmt.Fprintf(tw, "Iteration:\t%s (every %s)\n", progress(st), p.Interval.Duration)
		} else {
			fmt.Fprintf(tw, "Weight:\t%d%% (step %s: %s, every %s)\n", st.Weight, progress(st), joinInts(p.Steps), p.Interval.Duration)
		}
		fmt.Fprintf(tw, "Failed checks:\t%d of %d\n", st.FailedChecks, p.Threshold)
		fmt.Fprintf(tw, "Inconclusive:\t%d\n", st.Inconclusive)
	}
	if st.FailedRevision != "" {
		fmt.Fprintf(tw, "Last failed:\t%s\n", st.FailedRevision)
	}
	if !st.StartedAt.IsZero() {
		fmt.Fprintf(tw, "Started:\t%s (%s ago)\n", st.StartedAt.Format(time.RFC3339), age(st.StartedAt, now))
	}
	if !st.FinishedAt.IsZero() {
		fmt.Fprintf(tw, "Finished:\t%s (%s ago)\n", st.FinishedAt.Format(time.RFC3339), age(st.FinishedAt, now))
	}
	if g := st.Gate; g != nil && st.Phase == spec.PhaseWaiting {
		fmt.Fprintf(tw, "Gate:\t%s\n", gateLine(*g, now))
	}
	fmt.Fprintf(tw, "Message:\t%s\n", orNone(message(r)))
	if st.Phase == spec.PhasePromoting {
		fmt.Fprintf(tw, "Rollout:\t%d/%d updated, %d available\n", r.Rollout.Updated, r.Rollout.Replicas, r.Rollout.Available)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Checks) == 0 {
		return nil
	}
	fmt.Fprintln(w, "Checks:")
	tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tVALUE\tVERDICT\tREASON")
	for _, c := range st.Checks {
		verdict := string(c.Verdict)
		if c.DryRun {
			verdict += " (dry run)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, reading(c), verdict, orNone(oneLine(c.Reason)))
	}
	return tw.Flush()
}

// gateLine says where a Waiting release waits, who closed the gate and since when, e.g.
// `waiting at confirm-promotion (hook approval: HTTP 403 "Forbidden") since 12:01:03, 4m ago;
// asked 20s ago`. Times are in now's location.
func gateLine(g spec.Gate, now time.Time) string {
	why := "closed by " + spec.AnnHalt
	switch {
	case g.Hook != "" && g.Reason != "":
		why = fmt.Sprintf("hook %s: %s", g.Hook, oneLine(g.Reason))
	case g.Hook != "":
		why = "hook " + g.Hook
	case g.Reason != "":
		why = oneLine(g.Reason)
	}
	out := fmt.Sprintf("waiting at %s (%s)", g.Type, why)
	if !g.Since.IsZero() {
		out += fmt.Sprintf(" since %s, %s ago", clockTime(g.Since, now), age(g.Since, now))
	}
	if !g.CheckedAt.IsZero() && g.Hook != "" {
		out += fmt.Sprintf("; asked %s ago", age(g.CheckedAt, now))
	}
	if g.MuteAlert {
		out += "; not alerted (muteAlert)"
	}
	return out
}

// clockTime is t as a time of day in now's location, with the date when it is not today's.
func clockTime(t, now time.Time) string {
	t = t.In(now.Location())
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

// reading is a check's value for people: 4 significant digits, or "no data".
func reading(c spec.CheckResult) string {
	if c.Value == nil {
		return "no data"
	}
	return fmt.Sprintf("%.4g", *c.Value)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// describePlan says how the release reaches the canary, e.g. "ab through istio (route shop)",
// "canary through linkerd (trafficsplit shop)" or "canary through replicas". The plugin has no
// router catalog, so it names a kind only when sluice.dev/route gives one.
func describePlan(p *spec.Config) string {
	out := fmt.Sprintf("%s through %s", p.Strategy, p.Router)
	if p.Router != spec.RouterReplicas { // the replicas router manages no routing object
		kind := p.RouteKind
		if kind == "" {
			kind = "route"
		}
		route := p.Route
		if route == "" {
			route = "named after the Deployment"
		}
		out += fmt.Sprintf(" (%s %s)", kind, route)
	}
	if a := p.SessionAffinity; a != nil {
		out += fmt.Sprintf(", sessions kept by cookie %s", a.CookieName)
	}
	return out
}

// writeStructured prints v as JSON (indented, as kubectl does) or YAML.
func writeStructured(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// ReleaseList is the -o json|yaml form of list.
type ReleaseList struct {
	Items []Release `json:"items"`
}

func status(ctx context.Context, cs kubernetes.Interface, ns, name, output string, w io.Writer) error {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if d.Labels[spec.LabelEnabled] != spec.ValueEnabled {
		return notOptedIn(d)
	}
	r := releaseOf(d)
	if output != "" {
		return writeStructured(w, output, r)
	}
	return writeStatus(w, r, time.Now())
}

// list shows the opted-in Deployments of ns ("" for all namespaces), sorted by namespace and
// name.
func list(ctx context.Context, cs kubernetes.Interface, ns, output string, w io.Writer) error {
	ds, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: spec.LabelEnabled + "=" + spec.ValueEnabled})
	if err != nil {
		return err
	}
	rs := make([]Release, 0, len(ds.Items))
	for i := range ds.Items {
		rs = append(rs, releaseOf(&ds.Items[i]))
	}
	slices.SortFunc(rs, func(a, b Release) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	if output != "" {
		return writeStructured(w, output, ReleaseList{Items: rs})
	}
	if len(rs) == 0 {
		where := "in namespace " + ns
		if ns == "" {
			where = "in any namespace"
		}
		_, err := fmt.Fprintf(w, "No opted-in Deployments found %s.\n", where)
		return err
	}
	return writeList(w, rs, ns == "", time.Now())
}
