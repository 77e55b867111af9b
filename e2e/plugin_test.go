package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// watchRun is one `kubectl sluice watch` run: the lines it printed, each with the phase the
// release was in (read from the API server) when the line arrived.
type watchRun struct {
	code  int
	lines []watchLine
}

type watchLine struct {
	text  string
	phase spec.Phase
}

// pluginWatch runs `kubectl sluice watch` on a's Deployment with stdout a pipe (not a terminal,
// as in a CI job) and reads its lines as they come.
func (a *app) pluginWatch(timeout time.Duration, args ...string) watchRun {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.PluginBinary, append([]string{"--kubeconfig", env.Cluster.Kubeconfig, "-n", a.ns, "watch", a.name}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		a.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	var run watchRun
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		phase := spec.Phase("?")
		if d, err := env.Client.AppsV1().Deployments(a.ns).Get(context.Background(), a.name, metav1.GetOptions{}); err == nil {
			if st, err := spec.ReadState(d.Annotations); err == nil {
				phase = st.Phase
			}
		}
		a.t.Logf("watch [%s]: %s", phase, sc.Text())
		run.lines = append(run.lines, watchLine{sc.Text(), phase})
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		run.code = exit.ExitCode()
	default:
		a.t.Fatalf("kubectl sluice watch: %v (stderr %s)", err, stderr.String())
	}
	if stderr.Len() > 0 {
		a.t.Logf("watch stderr: %s", stderr.String())
	}
	return run
}

// progressLines are the lines watch printed while the release was still in flight.
func (r watchRun) progressLines() []string {
	var out []string
	for _, l := range r.lines {
		if l.phase.InFlight() && strings.Contains(l.text, " Progressing ") {
			out = append(out, l.text)
		}
	}
	return out
}

func (r watchRun) last() string {
	if len(r.lines) == 0 {
		return ""
	}
	return r.lines[len(r.lines)-1].text
}

func (a *app) plugin(args ...string) string {
	a.t.Helper()
	out, err := env.Plugin(a.t.Context(), append([]string{"-n", a.ns}, args...)...)
	if err != nil {
		a.t.Fatalf("kubectl sluice %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Acceptance 5 (issue 10): `kubectl sluice watch` follows a release in CI and exits 0 when it
// is promoted, 1 when it is rolled back, 2 on a timeout; `history` lists the releases; list and
// status print kubectl-style tables and -o json; abort, pause and retry name the revision.
func TestPluginWatchHistoryAndTables(t *testing.T) {
	t.Parallel()
	a := newApp(t, "cli", fastAnnotations(spec.AnnStepWeights, "20,40,60"))
	a.deploy("demo:v1")

	// A good release: watch prints progress while it runs and exits 0.
	a.apply("demo:v2")
	good := a.state()
	run := a.pluginWatch(3 * time.Minute)
	if run.code != 0 || !strings.Contains(run.last(), "revision "+good.Revision+" (app=demo:v2) promoted") {
		t.Fatalf("watch of a promoted release: exit %d, last line %q", run.code, run.last())
	}
	progress := run.progressLines()
	for _, want := range []string{"weight 20%", "weight 40%", "weight 60%"} {
		if !slices.ContainsFunc(progress, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("no progress line with %q printed while the release was in flight; lines: %q", want, progress)
		}
	}
	if len(progress) > 0 && !strings.HasPrefix(progress[0], a.ns+"/cli Progressing [") {
		t.Errorf("progress line %q", progress[0])
	}
	if !slices.ContainsFunc(progress, func(l string) bool {
		return strings.Contains(l, "request-success-rate") && strings.Contains(l, " pass")
	}) {
		t.Errorf("no progress line shows a check reading: %q", progress)
	}
	for i := 1; i < len(run.lines); i++ {
		if run.lines[i].text == run.lines[i-1].text {
			t.Errorf("watch printed the same line twice in a row: %q", run.lines[i].text)
		}
	}

	// list and status: kubectl-style tables and -o json.
	table := a.plugin("list")
	assertTable(t, table, []string{"NAME", "PHASE", "WEIGHT", "PROGRESS", "FAILED", "REVISION", "IMAGE", "AGE", "MESSAGE"},
		[]string{"cli", "Succeeded", "0%", "3/3", "0/2", good.Revision, "app=demo:v2"})
	all := kubectlPlugin(t, "sluice", "list", "-A")
	assertTable(t, all, []string{"NAMESPACE", "NAME", "PHASE", "WEIGHT", "PROGRESS", "FAILED", "REVISION", "IMAGE", "AGE", "MESSAGE"},
		[]string{a.ns, "cli", "Succeeded"})
	var listed struct {
		Items []struct {
			Namespace, Name, TemplateRevision string
			State                             spec.State
		}
	}
	if err := json.Unmarshal([]byte(a.plugin("list", "-o", "json")), &listed); err != nil {
		t.Fatalf("list -o json: %v", err)
	}
	if len(listed.Items) != 1 || listed.Items[0].Name != "cli" || listed.Items[0].State.Phase != spec.PhaseSucceeded ||
		listed.Items[0].TemplateRevision != good.Revision || listed.Items[0].State.Revision != good.Revision {
		t.Errorf("list -o json = %+v", listed)
	}
	status := a.plugin("status", a.name)
	for _, want := range []string{"Name:", "Phase:", "Succeeded", "Revision:", good.Revision, "Checks:", "NAME", "VALUE", "VERDICT"} {
		if !strings.Contains(status, want) {
			t.Errorf("status has no %q:\n%s", want, status)
		}
	}
	var st struct{ State spec.State }
	if err := json.Unmarshal([]byte(a.plugin("status", a.name, "-o", "json")), &st); err != nil || st.State.Revision != good.Revision {
		t.Errorf("status -o json: %v %+v", err, st)
	}
	if y := a.plugin("status", a.name, "-o", "yaml"); !strings.Contains(y, "phase: Succeeded") {
		t.Errorf("status -o yaml:\n%s", y)
	}

	// A bad release: watch exits 1.
	a.apply("demo:v3-bad")
	bad := a.state()
	run = a.pluginWatch(3 * time.Minute)
	if run.code != 1 || !strings.Contains(run.last(), "revision "+bad.Revision+" (app=demo:v3-bad) rolled back") {
		t.Fatalf("watch of a rolled-back release: exit %d, last line %q", run.code, run.last())
	}
	if len(run.progressLines()) == 0 {
		t.Error("no progress line printed while the bad release was in flight")
	}
	// Watching the release that already ended reports it again at once.
	if again := a.pluginWatch(time.Minute); again.code != 1 || len(again.lines) != 1 {
		t.Errorf("watch of an ended release: exit %d, lines %q", again.code, again.lines)
	}

	// retry names the failed template; pause and abort name the revision in flight; a watch
	// shorter than the (paused) release exits 2; the aborted release exits 1.
	if out := a.plugin("retry", a.name); !strings.Contains(out, spec.AnnRetry+"="+bad.Revision) {
		t.Errorf("retry wrote %q, want %s=%s", out, spec.AnnRetry, bad.Revision)
	}
	a.waitPhase(time.Minute, spec.PhaseProgressing)
	if out := a.plugin("pause", a.name); !strings.Contains(out, spec.AnnPause+"="+bad.Revision) {
		t.Errorf("pause wrote %q", out)
	}
	a.waitPhase(time.Minute, spec.PhasePaused)
	if run := a.pluginWatch(time.Minute, "--timeout", "2s"); run.code != 2 || !strings.Contains(run.last(), " Paused ") {
		t.Errorf("watch --timeout 2s of a paused release: exit %d, want 2; lines %q", run.code, run.lines)
	}
	if out := a.plugin("abort", a.name); !strings.Contains(out, spec.AnnAbort+"="+bad.Revision) {
		t.Errorf("abort wrote %q", out)
	}
	if run := a.pluginWatch(2 * time.Minute); run.code != 1 || !strings.Contains(run.last(), "aborted by "+spec.AnnAbort) {
		t.Errorf("watch of an aborted release: exit %d, last line %q", run.code, run.last())
	}

	// history: newest first, with revision, image, outcome, duration and reason.
	hist := a.plugin("history", a.name)
	assertTable(t, hist, []string{"REVISION", "IMAGE", "OUTCOME", "STARTED", "DURATION", "REASON"},
		[]string{bad.Revision, "app=demo:v3-bad", "RolledBack"})
	rows := strings.Split(strings.TrimSpace(hist), "\n")
	if len(rows) != 4 || !strings.HasPrefix(rows[1], bad.Revision) || !strings.Contains(rows[1], "aborted by "+spec.AnnAbort) ||
		!strings.HasPrefix(rows[2], bad.Revision) || !strings.Contains(rows[2], "failed analysis runs") ||
		!strings.HasPrefix(rows[3], good.Revision) || !strings.Contains(rows[3], "Promoted") {
		t.Errorf("history, want the aborted retry, the rolled-back and the promoted release, newest first:\n%s", hist)
	}
	var h struct {
		Releases []struct {
			Revision, Image, Outcome, Reason string
			Started, Finished                time.Time
		}
	}
	if err := json.Unmarshal([]byte(a.plugin("history", a.name, "-o", "json")), &h); err != nil {
		t.Fatalf("history -o json: %v", err)
	}
	if len(h.Releases) != 3 || h.Releases[2].Revision != good.Revision || h.Releases[2].Image != "app=demo:v2" ||
		h.Releases[2].Outcome != "Promoted" || !h.Releases[2].Finished.After(h.Releases[2].Started) ||
		h.Releases[1].Outcome != "RolledBack" || h.Releases[1].Reason == "" {
		t.Errorf("history -o json = %+v", h.Releases)
	}

	// Errors: an unknown Deployment is exit code 2 for watch.
	cmd := exec.CommandContext(t.Context(), env.PluginBinary, "--kubeconfig", env.Cluster.Kubeconfig, "-n", a.ns, "watch", "nope")
	if out, err := cmd.CombinedOutput(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Errorf("watch of a missing Deployment: %v\n%s", err, out)
	}
}

// kubectlPlugin runs the real kubectl with the plugin on its PATH, as a user would.
func kubectlPlugin(t *testing.T, args ...string) string {
	t.Helper()
	// kubectl looks a plugin up by the arguments before the first flag, and passes it the rest.
	cmd := exec.CommandContext(t.Context(), env.Cluster.Binaries.Kubectl, append(args, "--kubeconfig="+env.Cluster.Kubeconfig)...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(env.PluginBinary)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// assertTable checks a kubectl-style table: the header is exactly cols, every row has a value
// starting at each column's offset (aligned), and one row starts with the values of row.
func assertTable(t *testing.T, table string, cols, row []string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, cols) {
		t.Fatalf("header %q, want %q\n%s", got, cols, table)
	}
	var offsets []int
	pos := 0
	for _, c := range cols {
		off := pos + strings.Index(lines[0][pos:], c)
		offsets = append(offsets, off)
		pos = off + len(c)
	}
	found := false
	for _, l := range lines[1:] {
		var cells []string
		for i, off := range offsets {
			if off > len(l) || off > 0 && l[off-1] != ' ' || off < len(l) && l[off] == ' ' {
				t.Errorf("row %q is not aligned with column %s\n%s", l, cols[i], table)
				break
			}
			end := len(l)
			if i+1 < len(offsets) {
				end = min(offsets[i+1], len(l))
			}
			cells = append(cells, strings.TrimSpace(l[off:end]))
		}
		if len(cells) >= len(row) && slices.Equal(cells[:len(row)], row) {
			found = true
		}
	}
	if !found {
		t.Errorf("no row %q in\n%s", row, table)
	}
}
