package cluster

import (
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"time"
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
	c.mu.Lock()
	i := slices.IndexFunc(c.procs, func(p *process) bool { return p.name == name })
	if i < 0 {
		c.mu.Unlock()
		return fmt.Errorf("no process named %s", name)
	}
	p := c.procs[i]
	c.procs = slices.Delete(c.procs, i, i+1)
	err := c.writePIDsLocked()
	c.mu.Unlock()
	signalGroup(p.pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.pid)
	}
	return err
}

// LogTail returns the last n lines of the named process's log.
func (c *Cluster) LogTail(name string, n int) string {
	return tail(filepath.Join(c.Dir, "logs", name+".log"), n)
}

// Uptime is the time since Start began, the clock of the progress lines.
func (c *Cluster) Uptime() time.Duration { return time.Since(c.started) }
