package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// hookPayload is what a hook receives: Flagger's payload plus type.
type hookPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Type      string            `json:"type"`
	Metadata  map[string]string `json:"metadata"`
}

// hookServer is a local hook target: each path answers with the status set for it (200 by
// default) and records every payload it receives.
type hookServer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	status map[string]int
	calls  map[string][]hookPayload
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{t: t, status: map[string]int{}, calls: map[string][]hookPayload{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p hookPayload
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &p); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("hook %s: %s %q (Content-Type %q): not Flagger's payload: %v", r.URL.Path, r.Method, body, r.Header.Get("Content-Type"), err)
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.calls[r.URL.Path] = append(h.calls[r.URL.Path], p)
		code, ok := h.status[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "answer %d", code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) set(path string, code int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status[path] = code
}

func (h *hookServer) payloads(path string) []hookPayload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls[path])
}

func (h *hookServer) count(path string) int { return len(h.payloads(path)) }

// waitCalls waits until path has been called at least n times.
func (h *hookServer) waitCalls(timeout time.Duration, path string, n int) []hookPayload {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for h.count(path) < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("hook %s called %d times after %s, want %d", path, h.count(path), timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return h.payloads(path)
}

// hooksAnnotation renders a `sluice.dev/webhooks` list: name=type pairs pointing at base/name.
func hooksAnnotation(base string, hooks ...spec.Hook) string {
	var b strings.Builder
	for _, h := range hooks {
		if h.URL == "" {
			h.URL = base + "/" + h.Name
		}
		fmt.Fprintf(&b, "- name: %s\n  type: %s\n  url: %s\n  timeout: 5s\n", h.Name, h.HookKind(), h.URL)
		if len(h.Metadata) > 0 {
			b.WriteString("  metadata:\n")
			for k, v := range h.Metadata {
				fmt.Fprintf(&b, "    %s: %q\n", k, v)
			}
		}
	}
	return b.String()
}

func hook(name string, typ spec.HookType) spec.Hook { return spec.Hook{Name: name, Type: typ} }

// waitGate waits until the release waits at gate typ.
func (a *app) waitGate(timeout time.Duration, typ spec.HookType) spec.State {
	a.t.Helper()
	var st spec.State
	a.waitFor(timeout, "Waiting at "+string(typ), func(d *appsv1.Deployment) (bool, string) {
		st = stateOf(a.t, d)
		return st.Phase == spec.PhaseWaiting && st.Gate != nil && st.Gate.Type == typ, fmt.Sprintf("%s: %s", st.Phase, st.Message)
	})
	return st
}

// waitRuns waits until n more analysis runs than in st were recorded (LastRunAt moved n times)
// and returns the state then.
func (a *app) waitRuns(timeout time.Duration, from spec.State, n int) spec.State {
	a.t.Helper()
	seen, last := 0, from.LastRunAt
	var st spec.State
	a.waitFor(timeout, fmt.Sprintf("%d more analysis runs", n), func(d *appsv1.Deployment) (bool, string) {
		st = stateOf(a.t, d)
		if st.LastRunAt.After(last) {
			seen, last = seen+1, st.LastRunAt
		}
		return seen >= n, fmt.Sprintf("%d runs; %s: %s", seen, st.Phase, st.Message)
	})
	return st
}

// Acceptance 1 (issue 11), the gates: a closed confirm-rollout gate holds the release in Waiting
// with no canary until it opens; pre-rollout is called once before traffic; a closed
// confirm-traffic-increase holds between steps and a closed confirm-promotion at the last step,
// analysis (and the rollout hook) going on meanwhile; post-rollout is called once the release
// ended; the event hook receives every Event the worker records.
func TestHookGates(t *testing.T) {
	t.Parallel()
	h := newHookServer(t)
	for _, p := range []string{"/start", "/more", "/promote"} {
		h.set(p, http.StatusForbidden)
	}
	a := newApp(t, "web", fastAnnotations(spec.AnnStepWeights, "20,40", spec.AnnWebhooks, hooksAnnotation(h.srv.URL,
		hook("start", spec.HookConfirmRollout), hook("pre", spec.HookPreRollout), hook("smoke", spec.HookRollout),
		hook("more", spec.HookConfirmTrafficIncrease), hook("promote", spec.HookConfirmPromotion),
		hook("post", spec.HookPostRollout), hook("events", spec.HookEvent))))
	a.deploy("demo:v1")
	before := a.stablePods()
	a.kubectl("set", "image", "deployment/web", "app=demo:v2")

	st := a.waitGate(30*time.Second, spec.HookConfirmRollout)
	a.waitEvent(10*time.Second, string(spec.ReasonWaiting))
	h.waitCalls(15*time.Second, "/start", 2) // asked again an interval later
	if c := a.canary(); c != nil || a.state().Phase != spec.PhaseWaiting {
		t.Fatalf("behind a closed confirm-rollout gate: canary %v, phase %s", c != nil, a.state().Phase)
	}
	if p := h.payloads("/start")[0]; p.Name != "web" || p.Namespace != a.ns || p.Checksum != st.Revision || p.Type != "confirm-rollout" || p.Phase != "Progressing" {
		t.Errorf("confirm-rollout payload %+v, want name web, namespace %s, checksum %s, type confirm-rollout, phase Progressing", p, a.ns, st.Revision)
	}
	if n := h.count("/pre"); n != 0 {
		t.Errorf("pre-rollout called %d times before the release started", n)
	}

	h.set("/start", http.StatusOK)
	st = a.waitGate(60*time.Second, spec.HookConfirmTrafficIncrease)
	a.waitEvent(5*time.Second, string(spec.ReasonGateOpened))
	if n := h.count("/pre"); n != 1 {
		t.Errorf("pre-rollout called %d times, want once (before traffic)", n)
	}
	if st.Weight != 20 {
		t.Errorf("waiting at confirm-traffic-increase at weight %d, want 20", st.Weight)
	}
	smoke := h.count("/smoke")
	st = a.waitRuns(20*time.Second, st, 2)
	if st.Phase != spec.PhaseWaiting || st.Weight != 20 {
		t.Errorf("behind a closed confirm-traffic-increase gate: %s at weight %d", st.Phase, st.Weight)
	}
	if h.count("/smoke") < smoke+2 {
		t.Errorf("rollout hook called %d times during 2 runs at the gate, want %d", h.count("/smoke")-smoke, 2)
	}

	h.set("/more", http.StatusOK)
	st = a.waitGate(30*time.Second, spec.HookConfirmPromotion)
	if st.Weight != 40 {
		t.Errorf("waiting at confirm-promotion at weight %d, want 40", st.Weight)
	}
	st = a.waitRuns(20*time.Second, st, 2)
	if st.Phase != spec.PhaseWaiting {
		t.Errorf("behind a closed confirm-promotion gate: %s", st.Phase)
	}
	if got := a.stablePods(); !maps.Equal(got, before) {
		t.Errorf("stable pods changed while held: %v, now %v", before, got)
	}
	h.set("/promote", http.StatusOK)
	a.waitPhase(60*time.Second, spec.PhaseSucceeded)
	post := h.waitCalls(15*time.Second, "/post", 1)
	if post[0].Phase != string(spec.PhaseSucceeded) {
		t.Errorf("post-rollout payload phase %s, want Succeeded", post[0].Phase)
	}
	time.Sleep(2 * time.Second)
	if n := h.count("/post"); n != 1 {
		t.Errorf("post-rollout called %d times, want once", n)
	}

	// Every Event the worker recorded reached the event hook, with Flagger's event metadata.
	got := map[string]bool{}
	for _, p := range h.payloads("/events") {
		if p.Type != "event" || p.Metadata["eventType"] == "" || p.Metadata["timestamp"] == "" {
			t.Errorf("event payload %+v lacks Flagger's event fields", p)
		}
		got[p.Metadata["eventMessage"]] = true
	}
	for _, e := range a.eventList() {
		if e.Action == "Release" && !got[e.Message] {
			t.Errorf("Event %s %q never reached the event hook", e.Reason, e.Message)
		}
	}
}

// Acceptance 1 (issue 11), the failures: a failing pre-rollout counts as failed checks up to the
// threshold; a rollback hook answering 2xx rolls back; a failing check while a closed
// confirm-promotion gate holds the release still rolls it back; post-rollout fires after a
// rollback too.
func TestHookFailuresRollBack(t *testing.T) {
	t.Parallel()
	t.Run("pre-rollout", func(t *testing.T) {
		t.Parallel()
		h := newHookServer(t)
		h.set("/pre", http.StatusInternalServerError)
		a := newApp(t, "web", fastAnnotations(spec.AnnWebhooks, hooksAnnotation(h.srv.URL, hook("pre", spec.HookPreRollout), hook("post", spec.HookPostRollout))))
		a.deploy("demo:v1")
		a.kubectl("set", "image", "deployment/web", "app=demo:v2")
		st := a.waitPhase(90*time.Second, spec.PhaseFailed)
		if !strings.Contains(st.AbortReason, "2 failed analysis runs reached the threshold of 2") || st.CanaryReady {
			t.Errorf("rolled back for %q (canary ready %v), want the threshold of failed pre-rollout runs, no traffic", st.AbortReason, st.CanaryReady)
		}
		if n := h.count("/pre"); n < 2 {
			t.Errorf("pre-rollout called %d times, want at least 2", n)
		}
		if p := h.waitCalls(15*time.Second, "/post", 1); p[0].Phase != string(spec.PhaseFailed) {
			t.Errorf("post-rollout phase %s, want Failed", p[0].Phase)
		}
	})
	t.Run("rollback hook", func(t *testing.T) {
		t.Parallel()
		h := newHookServer(t)
		h.set("/stop", http.StatusForbidden)
		a := newApp(t, "web", fastAnnotations(spec.AnnWebhooks, hooksAnnotation(h.srv.URL, hook("stop", spec.HookRollback), hook("post", spec.HookPostRollout))))
		a.deploy("demo:v1")
		a.kubectl("set", "image", "deployment/web", "app=demo:v2")
		a.waitFor(60*time.Second, "weight 20", func(d *appsv1.Deployment) (bool, string) {
			st := stateOf(t, d)
			return st.Weight >= 20, fmt.Sprintf("%s weight %d", st.Phase, st.Weight)
		})
		h.set("/stop", http.StatusOK)
		st := a.waitPhase(30*time.Second, spec.PhaseFailed)
		if st.AbortReason != "rollback requested by webhook stop" {
			t.Errorf("rolled back for %q", st.AbortReason)
		}
		a.waitEvent(5*time.Second, string(spec.ReasonRollbackRequested))
		if a.canary() != nil {
			t.Error("canary still exists after the rollback")
		}
		h.waitCalls(15*time.Second, "/post", 1)
	})
	t.Run("failing check at confirm-promotion", func(t *testing.T) {
		t.Parallel()
		h := newHookServer(t)
		h.set("/promote", http.StatusForbidden)
		a := newApp(t, "web", fastAnnotations(spec.AnnStepWeights, "30", spec.AnnWebhooks, hooksAnnotation(h.srv.URL,
			hook("promote", spec.HookConfirmPromotion), hook("smoke", spec.HookRollout))))
		a.deploy("demo:v1")
		a.kubectl("set", "image", "deployment/web", "app=demo:v2")
		a.waitGate(60*time.Second, spec.HookConfirmPromotion)
		h.set("/smoke", http.StatusInternalServerError) // the rollout hook is a check: now failing
		st := a.waitPhase(40*time.Second, spec.PhaseFailed)
		if !strings.Contains(st.AbortReason, "failed analysis runs reached the threshold") {
			t.Errorf("rolled back for %q, want the failed runs at the gate", st.AbortReason)
		}
	})
}

// Acceptance 2 (issue 11): Flagger's own load tester (built from its module) as the hook target,
// unchanged: its gate holds the release until opened through its API, its rollback gate rolls
// a release back, its `cmd` task runs as a rollout hook, and a failing `bash` task fails the
// pre-rollout check.
func TestFlaggerLoadtesterAsHookTarget(t *testing.T) {
	t.Parallel()
	lt := startFlaggerLoadtester(t)

	t.Run("gate cmd and rollback", func(t *testing.T) {
		t.Parallel()
		marker := filepath.Join(t.TempDir(), "ran")
		a := newApp(t, "web", fastAnnotations(spec.AnnWebhooks, hooksAnnotation(lt.url,
			spec.Hook{Name: "gate", Type: spec.HookConfirmRollout, URL: lt.url + "/gate/check"},
			spec.Hook{Name: "load", Type: spec.HookRollout, URL: lt.url + "/", Metadata: map[string]string{"cmd": "touch " + marker}},
			spec.Hook{Name: "stop", Type: spec.HookRollback, URL: lt.url + "/rollback/check"})))
		a.deploy("demo:v1")
		a.kubectl("set", "image", "deployment/web", "app=demo:v2")
		a.waitGate(30*time.Second, spec.HookConfirmRollout)
		time.Sleep(6 * time.Second)
		if a.canary() != nil || a.state().Phase != spec.PhaseWaiting {
			t.Fatalf("behind Flagger's closed gate: canary exists or phase %s", a.state().Phase)
		}
		lt.post(t, "/gate/open", a.name, a.ns)
		a.waitPhase(90*time.Second, spec.PhaseSucceeded)
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("the rollout hook's cmd task did not run: %v", err)
		}

		// The next release: Flagger's rollback gate opened mid-release rolls it back.
		a.kubectl("set", "image", "deployment/web", "app=demo:v3")
		a.waitFor(60*time.Second, "weight 10", func(d *appsv1.Deployment) (bool, string) {
			st := stateOf(t, d)
			return st.Revision == spec.TemplateHash(&d.Spec.Template) && st.CanaryReady, fmt.Sprintf("%s weight %d", st.Phase, st.Weight)
		})
		lt.post(t, "/rollback/open", a.name, a.ns)
		st := a.waitPhase(30*time.Second, spec.PhaseFailed)
		if st.AbortReason != "rollback requested by webhook stop" {
			t.Errorf("rolled back for %q", st.AbortReason)
		}
	})
	t.Run("failing bash task", func(t *testing.T) {
		t.Parallel()
		a := newApp(t, "web", fastAnnotations(spec.AnnWebhooks, hooksAnnotation(lt.url,
			spec.Hook{Name: "acceptance", Type: spec.HookPreRollout, URL: lt.url + "/", Metadata: map[string]string{"type": "bash", "cmd": "exit 3"}})))
		a.deploy("demo:v1")
		a.kubectl("set", "image", "deployment/web", "app=demo:v2")
		st := a.waitPhase(90*time.Second, spec.PhaseFailed)
		if !strings.Contains(st.AbortReason, "failed analysis runs reached the threshold") {
			t.Errorf("rolled back for %q, want the failed pre-rollout runs", st.AbortReason)
		}
	})
}

type loadtester struct{ url string }

// startFlaggerLoadtester runs Flagger's load tester on a free port (it binds every interface;
// the test talks to 127.0.0.1) and waits until it answers.
func startFlaggerLoadtester(t *testing.T) *loadtester {
	t.Helper()
	bin, err := cluster.EnsureFlaggerLoadtester(t.Context(), cluster.Options{})
	if err != nil {
		t.Fatalf("build Flagger's load tester: %v", err)
	}
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "loadtester.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-port="+strconv.Itoa(ports[0]), "-timeout=10s", "-log-level=info")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("Flagger's load tester log:\n%s", b)
		}
	})
	lt := &loadtester{url: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(lt.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return lt
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Flagger's load tester not healthy after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post calls one of the load tester's gate endpoints for Deployment name in ns.
func (lt *loadtester) post(t *testing.T, path, name, ns string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "namespace": ns})
	resp, err := http.Post(lt.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %s %s", path, resp.Status, b)
	}
}
