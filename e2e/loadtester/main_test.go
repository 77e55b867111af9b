// Package loadtester proves sluice-loadtester against the real thing: Flagger's documented hook
// payloads are replayed into Flagger's own load tester (built from its Go module, v1.36.1) and
// into sluice-loadtester, and must get the same answers (conformance_test.go); and its gates,
// kept in a ConfigMap through the chart's RBAC, survive restarts against a real API server
// (restart_test.go).
package loadtester

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

var (
	testCluster *cluster.Cluster
	repo        string
)

func TestMain(m *testing.M) {
	code := cluster.Main(m, cluster.Options{}, func(c *cluster.Cluster) error {
		testCluster = c
		var err error
		repo, err = cluster.RepoRoot()
		return err
	})
	// The directories the tests share (the built binary, the PATH of the testers).
	if sluiceBinary != "" {
		_ = os.RemoveAll(filepath.Dir(sluiceBinary))
	}
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	sluiceOnce, flaggerOnce     sync.Once
	sluiceBinary, flaggerBinary string
	sluiceErr, flaggerErr       error
	helmOnce                    sync.Once
	helmBinary                  string
	helmErr                     error
	binDir                      string
	binDirOnce                  sync.Once
	binDirErr                   error
)

// sluiceLoadtester builds sluice-loadtester from this checkout (once per test binary).
func sluiceLoadtester(t *testing.T) string {
	t.Helper()
	sluiceOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-loadtester-e2e-")
		if err != nil {
			sluiceErr = err
			return
		}
		sluiceBinary = filepath.Join(dir, "sluice-loadtester")
		cmd := exec.Command("go", "build", "-o", sluiceBinary, "./cmd/sluice-loadtester")
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			sluiceErr = fmt.Errorf("go build ./cmd/sluice-loadtester: %w\n%s", err, out)
		}
	})
	if sluiceErr != nil {
		t.Fatal(sluiceErr)
	}
	return sluiceBinary
}

// flaggerLoadtester builds Flagger's load tester from its module (cached across runs like the
// control plane's binaries).
func flaggerLoadtester(t *testing.T) string {
	t.Helper()
	flaggerOnce.Do(func() {
		flaggerBinary, flaggerErr = cluster.EnsureFlaggerLoadtester(context.Background(), cluster.Options{})
	})
	if flaggerErr != nil {
		t.Fatalf("build Flagger's load tester: %v", flaggerErr)
	}
	return flaggerBinary
}

// helm builds the helm CLI (once; cached like the control plane's binaries).
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() { helmBinary, helmErr = cluster.EnsureHelm(context.Background(), cluster.Options{}) })
	if helmErr != nil {
		t.Fatalf("build helm: %v", helmErr)
	}
	return helmBinary
}

// toolPath is a directory holding only the programs the testers' tasks may run (sh, bash,
// sleep), as their PATH: `helm`, `kubectl` and `bats` are missing the same way for both, so
// the answers do not depend on what this machine has installed.
func toolPath(t *testing.T) string {
	t.Helper()
	binDirOnce.Do(func() {
		binDir, binDirErr = os.MkdirTemp("", "sluice-loadtester-path-")
		if binDirErr != nil {
			return
		}
		for _, name := range []string{"sh", "bash", "sleep"} {
			p, err := exec.LookPath(name)
			if err != nil {
				binDirErr = err
				return
			}
			if p, err = filepath.EvalSymlinks(p); err != nil {
				binDirErr = err
				return
			}
			if err := os.Symlink(p, filepath.Join(binDir, name)); err != nil {
				binDirErr = err
				return
			}
		}
	})
	if binDirErr != nil {
		t.Fatal(binDirErr)
	}
	return binDir
}

// tester is a running load tester process.
type tester struct {
	t      *testing.T
	name   string
	binary string
	args   []string
	env    []string
	port   int
	url    string
	log    string
	cmd    *exec.Cmd
	done   chan error
}

// startTester runs binary with args plus -port on a free port and waits until /healthz
// answers. It is stopped at the end of the test.
func startTester(t *testing.T, name, binary string, env []string, args ...string) *tester {
	t.Helper()
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tester{
		t: t, name: name, binary: binary, env: env, port: ports[0],
		args: append(args, "-port="+strconv.Itoa(ports[0])),
		url:  fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		log:  filepath.Join(t.TempDir(), name+".log"),
	}
	tr.start()
	t.Cleanup(func() {
		tr.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", name, tail(tr.log, 30))
		}
	})
	return tr
}

func (tr *tester) start() {
	tr.t.Helper()
	logFile, err := os.OpenFile(tr.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		tr.t.Fatal(err)
	}
	defer func() { _ = logFile.Close() }()
	tr.cmd = exec.Command(tr.binary, tr.args...)
	tr.cmd.Env = tr.env
	tr.cmd.Stdout, tr.cmd.Stderr = logFile, logFile
	tr.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := tr.cmd.Start(); err != nil {
		tr.t.Fatalf("start %s: %v", tr.name, err)
	}
	tr.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(tr.cmd, tr.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(tr.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-tr.done:
			tr.done <- err
			tr.t.Fatalf("%s exited at start: %v\n%s", tr.name, err, tail(tr.log, 30))
		default:
		}
		if time.Now().After(deadline) {
			tr.t.Fatalf("%s not healthy after 30s: %v\n%s", tr.name, err, tail(tr.log, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop signals the process (SIGKILL: its whole process group) and waits for it to exit.
func (tr *tester) stop(sig syscall.Signal) {
	if tr.cmd == nil {
		return
	}
	if sig == syscall.SIGKILL {
		_ = syscall.Kill(-tr.cmd.Process.Pid, sig)
	} else {
		_ = tr.cmd.Process.Signal(sig)
	}
	select {
	case <-tr.done: //nolint:errcheck // it was told to stop: how it exited does not matter
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-tr.cmd.Process.Pid, syscall.SIGKILL)
		<-tr.done //nolint:errcheck // killed: how it exited does not matter
		tr.t.Errorf("%s did not exit within 20s of %v", tr.name, sig)
	}
	tr.cmd = nil
}

// restart stops the process with sig and starts it again with the same arguments and port.
func (tr *tester) restart(sig syscall.Signal) {
	tr.t.Helper()
	tr.stop(sig)
	tr.start()
}

// answer is what a tester answered: a status code (0 when it closed the connection without
// one) and the body.
type answer struct {
	code int
	body string
}

func (a answer) String() string {
	if a.code == 0 {
		return "no answer (connection closed)"
	}
	return fmt.Sprintf("%d %q", a.code, a.body)
}

func (tr *tester) call(method, path, body string) answer {
	tr.t.Helper()
	req, err := http.NewRequestWithContext(tr.t.Context(), method, tr.url+path, strings.NewReader(body))
	if err != nil {
		tr.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "EOF") {
			return answer{}
		}
		tr.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tr.t.Fatal(err)
	}
	return answer{resp.StatusCode, string(b)}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
