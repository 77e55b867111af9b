package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// watchRelease follows the release of Deployment name from a watch on it until the release
// ends, printing its progress, and returns the exit code: exitOK when it was promoted (or
// there is nothing to release), exitFailed when it was rolled back or failed, exitError on an
// error or when timeout (0: none) runs out first.
func watchRelease(ctx context.Context, cs kubernetes.Interface, ns, name string, timeout time.Duration, stdout, stderr io.Writer, width int) int {
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		return fail(stderr, "watch", err)
	}
	ctx, cancel := watchtools.ContextWithOptionalTimeout(ctx, timeout)
	defer cancel()

	p := &printer{w: stdout, terminal: width > 0, width: width}
	code := exitError
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return cs.AppsV1().Deployments(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cs.AppsV1().Deployments(ns).Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, nil, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			return false, apierrors.NewNotFound(appsv1.Resource("deployments"), name)
		case watch.Added, watch.Modified:
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok {
				return false, nil
			}
			if d.Labels[spec.LabelEnabled] != spec.ValueEnabled {
				return false, notOptedIn(d)
			}
			done, c := p.update(releaseOf(d))
			code = c
			return done, nil
		}
		return false, nil
	})
	p.endLine()
	switch {
	case err == nil:
		return code
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		fmt.Fprintf(stderr, "kubectl sluice: timed out after %s waiting for the release of %s/%s to end\n", timeout, ns, name)
		return exitError
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "kubectl sluice: stopped watching %s/%s: %v\n", ns, name, ctx.Err())
		return exitError
	}
	return fail(stderr, "watch", err)
}

// printer shows a release's progress: on a terminal one line redrawn in place, cut to the
// terminal's width (a wrapped line could not be redrawn), elsewhere (a CI log) one line per
// change.
type printer struct {
	w        io.Writer
	terminal bool
	width    int
	last     string
	drawn    bool
}

// update shows r and reports whether its release has ended, with the exit code for it.
func (p *printer) update(r Release) (done bool, code int) {
	done, code, summary := outcome(r)
	if done {
		p.endLine()
		fmt.Fprintln(p.w, summary)
		return true, code
	}
	line := progressLine(r)
	if line == p.last {
		return false, code
	}
	p.last = line
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K"+cut(line, p.width-1))
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, line)
	}
	return false, code
}

// endLine ends a line being redrawn, so what follows starts on its own line.
func (p *printer) endLine() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// outcome reports whether the release of r has ended, its exit code and a sentence saying how.
// A release ends Succeeded (promoted: exitOK) or Failed (rolled back: exitFailed) for the
// Deployment's current template; a release rolled back because the template went back to the
// stable one ends Idle and exits exitFailed too, as does a template that reached the pods
// without the hold (Unanalysed). A Deployment whose current template is the stable one with no
// release in flight (never released, restarted, released with skip-analysis) has nothing to
// wait for: exitOK at once.
func outcome(r Release) (done bool, code int, summary string) {
	st := r.State
	id := r.Namespace + "/" + r.Name
	switch {
	case r.StateError != "" || st.Phase.InFlight():
		return false, exitError, ""
	case st.Phase == spec.PhaseSucceeded && st.Revision == r.Template:
		return true, exitOK, fmt.Sprintf("%s: revision %s (%s) promoted%s", id, st.Revision, st.Image, took(st))
	case st.Phase == spec.PhaseFailed && st.Revision == r.Template:
		return true, exitFailed, fmt.Sprintf("%s: revision %s (%s) rolled back%s: %s", id, st.Revision, st.Image, took(st), st.Message)
	case st.Unanalysed != "" && st.Unanalysed == r.Template:
		return true, exitFailed, fmt.Sprintf("%s: revision %s reached the pods without canary analysis (Unanalysed): %s", id, r.Template, st.Message)
	case st.Phase == spec.PhaseIdle && st.Revision != "" && st.Revision != r.Template && r.Template == st.Stable:
		return true, exitFailed, fmt.Sprintf("%s: revision %s (%s) rolled back%s: %s", id, st.Revision, st.Image, took(st), st.Message)
	case r.Template == st.Stable || st.Phase == spec.PhaseIdle && st.Stable == "" && st.Revision == "":
		msg := "no release to watch: revision " + r.Template + " is the stable one"
		if st.Message != "" {
			msg += " (" + st.Message + ")"
		}
		return true, exitOK, id + ": " + msg
	}
	// The state has not caught up with the template yet.
	return false, exitError, ""
}

func took(st spec.State) string {
	if st.StartedAt.IsZero() || st.FinishedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
		return ""
	}
	return " after " + st.FinishedAt.Sub(st.StartedAt).Round(time.Second).String()
}

// cut shortens line to at most n characters, marking the cut with "…".
func cut(line string, n int) string {
	r := []rune(line)
	if n <= 0 || len(r) <= n {
		return line
	}
	return string(r[:n-1]) + "…"
}

// barWidth is the number of cells of the progress bar.
const barWidth = 20

// progressLine is one line of a release in flight: phase, how far it went (steps or
// iterations, with a bar), weight, failed runs and the last check readings, e.g.
//
//	default/web Progressing [██████░░░░░░░░░░░░░░] step 2/5 weight 20% failed 0/2 | request-success-rate 99.8 pass, request-duration 12.5 pass | analysis passed; weight 20%
func progressLine(r Release) string {
	st := r.State
	parts := []string{r.Namespace + "/" + r.Name, string(st.Phase)}
	if p := st.Plan; p != nil {
		done, total := st.Step+1, len(p.Steps)
		unit := "step"
		if p.Iterative() {
			done, total, unit = st.Iteration, p.Iterations, "iteration"
		}
		parts = append(parts, bar(done, total), fmt.Sprintf("%s %s", unit, progress(st)))
		if !p.Iterative() || st.Weight > 0 {
			parts = append(parts, fmt.Sprintf("weight %d%%", st.Weight))
		}
		parts = append(parts, fmt.Sprintf("failed %d/%d", st.FailedChecks, p.Threshold))
	} else {
		parts = append(parts, fmt.Sprintf("weight %d%%", st.Weight))
	}
	line := strings.Join(parts, " ")
	if len(st.Checks) > 0 {
		readings := make([]string, len(st.Checks))
		for i, c := range st.Checks {
			readings[i] = fmt.Sprintf("%s %s %s", c.Name, reading(c), c.Verdict)
		}
		line += " | " + strings.Join(readings, ", ")
	}
	if st.Message != "" {
		line += " | " + oneLine(st.Message)
	}
	return line
}

// bar draws done of total as a bar of barWidth cells.
func bar(done, total int) string {
	filled := 0
	if total > 0 {
		filled = min(max(done, 0), total) * barWidth / total
	}
	return "[" + strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled) + "]"
}
