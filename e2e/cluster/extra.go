package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
)

// StartProcess starts another program as part of the cluster (for example sluice itself): its
// output goes to Dir/logs/<name>.log, it is recorded in the pid file (so Down stops it in
// detached mode) and Stop kills it.
func (c *Cluster) StartProcess(name, binary string, args ...string) (pid int, err error) {
	if err := c.startProcess(name, binary, nil, args...); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[len(c.procs)-1].pid, nil
}

// KillProcess kills the named process with SIGKILL, as a crash would, waits for it to exit
// and forgets it.
func (c *Cluster) KillProcess(name string) error {
	_, err := c.StopProcess(name, syscall.SIGKILL, killWait)
	return err
}

// ErrStillRunning is returned by StopProcess when the process outlived the timeout (it is then
// killed).
var ErrStillRunning = errors.New("still running after the timeout")

// StopProcess sends sig to the named process (SIGKILL: to its process group), waits up to
// timeout for it to exit and forgets it. It returns how the process exited (nil for exit status 0, an
// *exec.ExitError otherwise). A process still running after timeout is killed with SIGKILL
// and the error wraps ErrStillRunning.
func (c *Cluster) StopProcess(name string, sig syscall.Signal, timeout time.Duration) (exit error, err error) {
	c.mu.Lock()
	i := slices.IndexFunc(c.procs, func(p *process) bool { return p.name == name })
	if i < 0 {
		c.mu.Unlock()
		return nil, fmt.Errorf("no process named %s", name)
	}
	p := c.procs[i]
	c.procs = slices.Delete(c.procs, i, i+1)
	err = c.writePIDsLocked()
	c.mu.Unlock()
	if sig == syscall.SIGKILL {
		signalGroup(p.pid, sig)
	} else {
		// Once, to the process only, as a kubelet stops a container: a second SIGTERM makes
		// many programs (controller-runtime's signal handler among them) exit at once.
		_ = syscall.Kill(p.pid, sig)
	}
	select {
	case <-p.done:
		return p.err, err
	case <-time.After(timeout):
	}
	killGroup(p.pid)
	select {
	case <-p.done:
		return p.err, fmt.Errorf("%s (pid %d) after %v: %w", name, p.pid, sig, ErrStillRunning)
	case <-time.After(killWait):
		return nil, fmt.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.pid)
	}
}

// PID returns the process ID of the named process, if it was started and not stopped.
func (c *Cluster) PID(name string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.name == name {
			return p.pid, true
		}
	}
	return 0, false
}

// Running reports whether the named process was started and has not exited.
func (c *Cluster) Running(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.name == name {
			select {
			case <-p.done:
				return false
			default:
				return true
			}
		}
	}
	return false
}

// RestartProcess kills the named process with SIGKILL and starts it again with the same
// binary, arguments and environment (its log continues in the same file). It returns the new
// PID; it does not wait for the program to be ready.
func (c *Cluster) RestartProcess(name string) (pid int, err error) {
	p := c.process(name)
	if p == nil {
		return 0, fmt.Errorf("no process named %s", name)
	}
	if err := c.KillProcess(name); err != nil {
		return 0, err
	}
	if err := c.startProcess(name, p.binary, p.env, p.args...); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[len(c.procs)-1].pid, nil
}

// RestartAPIServer kills kube-apiserver, starts it again on the same port with the same flags
// (etcd keeps every object) and waits until it is ready again.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	if _, err := c.RestartProcess("kube-apiserver"); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	return c.poll(ctx, "kube-apiserver (restarted)", 2*time.Minute, time.Now(), func(ctx context.Context) error {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("readyz: %w: %s", err, body)
		}
		return nil
	})
}

// LogTail returns the last n lines of the named process's log.
func (c *Cluster) LogTail(name string, n int) string {
	return tail(filepath.Join(c.Dir, "logs", name+".log"), n)
}

// Uptime is the time since Start began, the clock of the progress lines.
func (c *Cluster) Uptime() time.Duration { return time.Since(c.started) }

// StopForNow stops the named process like StopProcess (SIGTERM, then SIGKILL after timeout)
// and returns a function that starts it again with the same binary, arguments and environment
// (on the same ports, its log continuing in the same file); it does not wait for the program
// to be ready.
func (c *Cluster) StopForNow(name string, timeout time.Duration) (start func() error, err error) {
	p := c.process(name)
	if p == nil {
		return nil, fmt.Errorf("no process named %s", name)
	}
	if _, err := c.StopProcess(name, syscall.SIGTERM, timeout); err != nil {
		return nil, err
	}
	return func() error { return c.startProcess(name, p.binary, p.env, p.args...) }, nil
}

// process is the running process called name; nil when there is none.
func (c *Cluster) process(name string) *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.IndexFunc(c.procs, func(p *process) bool { return p.name == name }); i >= 0 {
		return c.procs[i]
	}
	return nil
}
