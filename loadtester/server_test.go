package loadtester

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The answers Flagger's tester gives are pinned against the real binary in e2e/loadtester
// (the conformance table); these tests cover what only sluice-loadtester does.

func newTestServer(t *testing.T, c Config) (*Server, string) {
	t.Helper()
	c.Log = testr.New(t)
	s := New(c)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return s, hs.URL
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func payload(name, namespace string, meta map[string]string) string {
	var parts []string
	for k, v := range meta {
		parts = append(parts, fmt.Sprintf("%q:%q", k, v))
	}
	return fmt.Sprintf(`{"name":%q,"namespace":%q,"phase":"Progressing","checksum":"85d557f47b","metadata":{%s}}`,
		name, namespace, strings.Join(parts, ","))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCmdTaskRunsOncePerReleaseAndCommand: a cmd task posted again while it runs is not
// started twice (Flagger's de-duplication by name.namespace and command); another release's
// identical command, or another command, runs alongside.
func TestCmdTaskRunsOncePerReleaseAndCommand(t *testing.T) {
	s, url := newTestServer(t, Config{Timeout: time.Minute})
	dir := t.TempDir()
	log := filepath.Join(dir, "runs")
	release := filepath.Join(dir, "release")
	// Each run appends a line, then waits until the test lets it finish.
	command := fmt.Sprintf("echo run >> %s; while [ ! -e %s ]; do sleep 0.05; done", log, release)

	for range 3 {
		if code, body := post(t, url, payload("podinfo", "test", map[string]string{"type": "cmd", "cmd": command})); code != http.StatusAccepted {
			t.Fatalf("POST cmd = %d %q, want 202", code, body)
		}
	}
	if code, _ := post(t, url, payload("podinfo", "other", map[string]string{"cmd": command})); code != http.StatusAccepted {
		t.Fatalf("POST cmd of another release = %d, want 202", code)
	}
	if !s.Running("podinfo.test", command) || !s.Running("podinfo.other", command) {
		t.Fatal("commands not running")
	}
	if got := testutil.ToFloat64(s.metrics.tasks.WithLabelValues(TaskCmd, ResultSkipped)); got != 2 {
		t.Errorf("skipped cmd tasks = %v, want 2", got)
	}
	waitFor(t, "two runs", func() bool { b, _ := os.ReadFile(log); return strings.Count(string(b), "run") == 2 })
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the commands to finish", func() bool {
		return !s.Running("podinfo.test", command) && !s.Running("podinfo.other", command)
	})
	if got := testutil.ToFloat64(s.metrics.tasks.WithLabelValues(TaskCmd, ResultSucceeded)); got != 2 {
		t.Errorf("succeeded cmd tasks = %v, want 2", got)
	}
	// Finished: the same command runs again.
	post(t, url, payload("podinfo", "test", map[string]string{"cmd": command}))
	waitFor(t, "a third run", func() bool { b, _ := os.ReadFile(log); return strings.Count(string(b), "run") == 3 })
}

// TestBlockingTimeoutKillsTheProcessGroup: a bash task past the timeout is answered 500 with
// its output so far, and every process it started is gone (Flagger's kills only bash).
func TestBlockingTimeoutKillsTheProcessGroup(t *testing.T) {
	_, url := newTestServer(t, Config{Timeout: time.Second})
	pidFile := filepath.Join(t.TempDir(), "pid")
	command := fmt.Sprintf("echo started; sleep 300 & echo $! > %s; wait", pidFile)
	start := time.Now()
	code, body := post(t, url, payload("podinfo", "test", map[string]string{"type": "bash", "cmd": command}))
	want := fmt.Sprintf("command %s failed: started\n: timed out after 1s (signal: killed)", command)
	if code != http.StatusInternalServerError || body != want {
		t.Errorf("POST bash = %d %q, want 500 %q", code, body, want)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("answered after %v, want about the 1s timeout", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("sleep (pid %d) to be killed", pid), func() bool {
		// Reaped by init or a zombie: either way no longer running.
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(stat), ") Z ")
	})
	_ = syscall.Kill(pid, syscall.SIGKILL) // in case the test failed
}

// TestBlockingOutputIsCapped: the answer carries the end of a huge output, not all of it.
func TestBlockingOutputIsCapped(t *testing.T) {
	_, url := newTestServer(t, Config{Timeout: time.Minute})
	command := `head -c 1000000 /dev/zero | tr '\0' x; echo; echo the end; exit 1`
	code, body := post(t, url, payload("podinfo", "test", map[string]string{"type": "bash", "cmd": command}))
	if code != http.StatusInternalServerError {
		t.Fatalf("POST bash = %d, want 500", code)
	}
	if len(body) > MaxOutput+1024 || !strings.Contains(body, "[output cut to its last 65536 bytes]") ||
		!strings.HasSuffix(body, "the end\n: exit status 1") {
		t.Errorf("answer of %d bytes, starting %q and ending %q: want the output's last 64 KiB", len(body), body[:120], body[len(body)-40:])
	}
}

// TestNamespaceAllowList: payloads of other namespaces get Flagger's 403 "Forbidden" on every
// endpoint that reads a payload, and change nothing.
func TestNamespaceAllowList(t *testing.T) {
	s, url := newTestServer(t, Config{Timeout: time.Minute, Auth: Authorizer{
		Namespaces: []string{"test"}, Regexp: regexp.MustCompile(`^team-`),
	}})
	for _, ns := range []string{"prod", "my-team-a", "tes"} {
		for _, path := range []string{"/", "/gate/check", "/gate/open", "/gate/close", "/rollback/check", "/rollback/open", "/rollback/close"} {
			code, body := post(t, url+path, payload("podinfo", ns, map[string]string{"type": "bash", "cmd": "echo ran"}))
			if code != http.StatusForbidden || body != "Forbidden" {
				t.Errorf("POST %s for namespace %s = %d %q, want 403 Forbidden", path, ns, code, body)
			}
		}
		if open, _ := s.gates.IsOpen(t.Context(), "podinfo."+ns); open {
			t.Errorf("gate of %s opened", ns)
		}
	}
	for _, ns := range []string{"test", "team-a"} {
		if code, body := post(t, url+"/gate/open", payload("podinfo", ns, nil)); code != http.StatusAccepted {
			t.Errorf("POST /gate/open for namespace %s = %d %q, want 202", ns, code, body)
		}
		if code, body := post(t, url, payload("podinfo", ns, map[string]string{"type": "bash", "cmd": "echo ran", "returnCmdOutput": "true"})); code != http.StatusOK || body != "ran\n" {
			t.Errorf("POST bash for namespace %s = %d %q, want 200 ran", ns, code, body)
		}
	}
}

// TestLoadTask: a passing load answers 200 with its report, a failing one 500 with the reason
// and the report, a bad one 400 naming the field.
func TestLoadTask(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer target.Close()
	_, url := newTestServer(t, Config{Timeout: time.Minute})

	code, body := post(t, url, payload("podinfo", "test", map[string]string{"type": "load", "url": target.URL + "/ok", "rate": "20", "duration": "500ms"}))
	if code != http.StatusOK || !strings.HasPrefix(body, "load GET "+target.URL+"/ok for 500ms: 10 requests") || !strings.Contains(body, "0 errors (0.00%)") {
		t.Errorf("passing load = %d %q", code, body)
	}
	code, body = post(t, url, payload("podinfo", "test", map[string]string{"type": "load", "url": target.URL + "/fail", "rate": "20", "duration": "500ms"}))
	if code != http.StatusInternalServerError ||
		!strings.HasPrefix(body, "load test failed: error rate 100.00% (10 of 10 requests without a response or with a 5xx) is above maxErrorRate 1%\nload GET") ||
		!strings.Contains(body, "status codes 502:10; errors seen: 502 Bad Gateway") {
		t.Errorf("failing load = %d %q", code, body)
	}
	code, body = post(t, url, payload("podinfo", "test", map[string]string{"type": "load", "url": target.URL, "rate": "fast"}))
	if code != http.StatusBadRequest || body != `invalid load task: metadata.rate: must be a whole number 1..10000, got "fast"` {
		t.Errorf("bad load = %d %q", code, body)
	}
}

// TestLoadRetriedWhileRunningJoinsIt: the same load asked again while it runs (a hook retried
// after its timeout) shares the run and its answer instead of doubling the load.
func TestLoadRetriedWhileRunningJoinsIt(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer target.Close()
	s, url := newTestServer(t, Config{Timeout: time.Minute})
	body := payload("podinfo", "test", map[string]string{"type": "load", "url": target.URL, "rate": "20", "duration": "1s"})

	answers := make(chan string, 2)
	go func() { _, b := post(t, url, body); answers <- b }()
	waitFor(t, "the load to start", func() bool { return testutil.ToFloat64(s.metrics.runningTasks.WithLabelValues(TaskLoad)) == 1 })
	go func() { _, b := post(t, url, body); answers <- b }()
	first, second := <-answers, <-answers
	if first != second || !strings.Contains(first, ": 20 requests") {
		t.Errorf("answers differ or are not one 20-request run:\n%s\n%s", first, second)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 20 {
		t.Errorf("target got %d requests, want 20 (one run)", hits)
	}
	if got := testutil.ToFloat64(s.metrics.tasks.WithLabelValues(TaskLoad, ResultSucceeded)); got != 1 {
		t.Errorf("load tasks run = %v, want 1", got)
	}
}

// TestMemoryGates: gates are closed until opened, keyed by name.namespace, rollback gates
// apart.
func TestMemoryGates(t *testing.T) {
	_, url := newTestServer(t, Config{})
	steps := []struct {
		path, name, ns string
		code           int
		body           string
	}{
		{"/gate/check", "podinfo", "test", 403, "Forbidden"},
		{"/gate/open", "podinfo", "test", 202, ""},
		{"/gate/check", "podinfo", "test", 200, "Approved"},
		{"/gate/check", "podinfo", "prod", 403, "Forbidden"},
		{"/rollback/check", "podinfo", "test", 403, "Forbidden"},
		{"/rollback/open", "podinfo", "test", 202, ""},
		{"/rollback/check", "podinfo", "test", 200, "Approved"},
		{"/gate/close", "podinfo", "test", 202, ""},
		{"/gate/check", "podinfo", "test", 403, "Forbidden"},
		{"/rollback/check", "podinfo", "test", 200, "Approved"},
	}
	for i, st := range steps {
		code, body := post(t, url+st.path, payload(st.name, st.ns, nil))
		if code != st.code || body != st.body {
			t.Errorf("step %d: POST %s %s.%s = %d %q, want %d %q", i, st.path, st.name, st.ns, code, body, st.code, st.body)
		}
	}
}

func TestGateKeysAConfigMapCannotHold(t *testing.T) {
	for key, ok := range map[string]bool{
		"podinfo.test": true, "rollback.podinfo.test": true, "pod_info-2.test": true,
		"pod info.test": false, "a/b.test": false, ".": false, strings.Repeat("a", 254): false,
	} {
		if err := checkGateKey(key); (err == nil) != ok {
			t.Errorf("checkGateKey(%q) = %v, want ok %v", key, err, ok)
		}
	}
}
