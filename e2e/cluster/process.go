package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	markerFile = ".sluice-cluster"
	pidFile    = "pids"
	// killWait bounds the wait for killed processes to exit.
	killWait = 10 * time.Second
)

// process is one started control-plane program.
type process struct {
	name, binary, log string
	env, args         []string // as started, so that RestartProcess can start it again
	pid               int
	done              chan struct{}
	err               error // how it exited; valid once done is closed
}

// startProcess starts binary with its output in Dir/logs/<name>.log, in its own process
// group (detached: its own session; attached: killed when this process dies), and
// records it in the pid file.
func (c *Cluster) startProcess(name, binary string, env []string, args ...string) error {
	logPath := filepath.Join(c.Dir, "logs", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	fmt.Fprintf(f, "# %s %s\n", binary, strings.Join(args, " "))
	cmd := exec.Command(binary, args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if c.opts.Detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	// Start under the lock so that a concurrent Stop either kills it or prevents it.
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		_ = f.Close() // the log file, not written to yet
		return fmt.Errorf("start %s: the cluster is being stopped", name)
	}
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		_ = f.Close() // the log file; the error says why the process did not start
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, binary: binary, log: logPath, env: env, args: args, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close() // our copy of the log file; the process wrote through its own
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	err = c.writePIDsLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.logf("[%5.1fs] %s started (pid %d, log %s)", time.Since(c.started).Seconds(), name, p.pid, logPath)
	return nil
}

// writePIDsLocked writes the pid file: one "PID NAME BINARY" line per process.
func (c *Cluster) writePIDsLocked() error {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "%d %s %s\n", p.pid, p.name, p.binary)
	}
	path := filepath.Join(c.Dir, pidFile)
	if err := os.WriteFile(path+".tmp", []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// exited reports the first started process that is no longer running.
func (c *Cluster) exited() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		select {
		case <-p.done:
			if p.err == nil {
				return fmt.Errorf("%s exited (status 0); last lines of %s:\n%s", p.name, p.log, tail(p.log, 15))
			}
			return fmt.Errorf("%s exited (%w); last lines of %s:\n%s", p.name, p.err, p.log, tail(p.log, 15))
		default:
		}
	}
	return nil
}

// Stop kills (SIGKILL) every process the cluster started, waits for them to exit and removes Dir
// (unless Options.KeepDir). Calling it again returns the first result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		untrack(c)
		c.mu.Lock()
		c.stopping = true
		c.mu.Unlock()
		c.stopErr = c.kill()
		if c.stopErr == nil && !c.opts.KeepDir {
			if err := os.RemoveAll(c.Dir); err != nil {
				c.stopErr = fmt.Errorf("remove cluster dir: %w", err)
			}
		}
	})
	return c.stopErr
}

// kill SIGKILLs every started process group and waits for the processes to exit.
// The state is disposable, and a graceful kube-apiserver shutdown takes 20 s or more
// (etcd then waits for it), so there is nothing to gain from SIGTERM.
func (c *Cluster) kill() error {
	c.mu.Lock()
	procs := slices.Clone(c.procs)
	c.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.done: // already reaped: its PID may belong to someone else by now
		default:
			killGroup(p.pid)
		}
	}
	var errs []error
	deadline := time.Now().Add(killWait)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(time.Until(deadline)):
			errs = append(errs, fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.pid))
		}
	}
	return errors.Join(errs...)
}

// running tracks the clusters this process started and has not stopped, so that Main
// can stop all of them on SIGINT or SIGTERM, detached ones that a test started included.
var running = struct {
	sync.Mutex
	clusters map[*Cluster]bool
}{clusters: map[*Cluster]bool{}}

func track(c *Cluster) {
	running.Lock()
	running.clusters[c] = true
	running.Unlock()
}

func untrack(c *Cluster) {
	running.Lock()
	delete(running.clusters, c)
	running.Unlock()
}

// stopAll stops every cluster this process started and has not stopped.
func stopAll(log io.Writer) {
	running.Lock()
	var all []*Cluster
	for c := range running.clusters {
		all = append(all, c)
	}
	running.Unlock()
	for _, c := range all {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(log, "stop control plane in %s: %v\n", c.Dir, err)
		}
	}
}

// killGroup kills the process group led by pid (each started process leads its own).
func killGroup(pid int) { signalGroup(pid, syscall.SIGKILL) }

// signalGroup signals the process group led by pid, and pid itself.
func signalGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
	_ = syscall.Kill(pid, sig)
}

// Down stops a detached cluster: it SIGKILLs every process in dir's pid file that is still
// running the binary recorded there (a reused PID is left alone), waits for them to
// exit and removes dir. A missing dir is not an error.
func Down(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if !hasFiles(dir, markerFile) {
		return fmt.Errorf("%s is not a cluster dir (no %s); refusing to touch it", dir, markerFile)
	}
	pids, err := livePIDs(dir)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		killGroup(pid)
	}
	if pids = waitGone(pids, killWait); len(pids) > 0 {
		return fmt.Errorf("stop cluster in %s: pids %v still running after SIGKILL", dir, pids)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove cluster dir: %w", err)
	}
	return nil
}

// livePIDs returns the PIDs from dir's pid file that still run the recorded binary.
func livePIDs(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, pidFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pid file: %w", err)
	}
	var pids []int
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) != 3 {
			continue
		}
		pid, err := strconv.Atoi(fields[0])
		if err != nil || pid <= 1 {
			continue
		}
		if runs(pid, fields[2]) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// runs reports whether pid is a live (not zombie) process whose argv[0] is binary.
func runs(pid int, binary string) bool {
	if !alive(pid) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return string(argv0) == binary
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may itself contain ") ".
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X'
}

// waitGone waits up to timeout for pids to exit and returns those still alive.
func waitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		pids = slices.DeleteFunc(pids, func(pid int) bool { return !alive(pid) })
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }() // read only
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
