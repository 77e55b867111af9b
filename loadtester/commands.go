package loadtester

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// MaxOutput is how much of a command's combined output is kept (its end): enough for any
// test report, bounded so a command that prints without end cannot exhaust memory.
const MaxOutput = 64 << 10

// waitDelay is how long a killed command's output pipes may stay open (held by a grandchild
// outside its process group) before Wait gives up on them.
const waitDelay = 5 * time.Second

// runCommand runs argv until it exits or ctx ends. It runs in its own process group and a
// cancelled or expired ctx kills the whole group, so `sh -c "a; b"` cannot leave b running.
// It returns the command's combined output (the last MaxOutput bytes). The error says
// "timed out after D" when ctx's deadline ended it.
func runCommand(ctx context.Context, timeout time.Duration, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	out := &tailBuffer{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %v (%w)", timeout, err)
	}
	return out.Bytes(), err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.dropped = true
	}
	return len(p), nil
}

// Bytes returns what was kept, prefixed with a note when the start was dropped.
func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped {
		return append([]byte(fmt.Sprintf("[output cut to its last %d bytes]\n", t.max)), t.buf...)
	}
	return append([]byte(nil), t.buf...)
}

// Runner runs `cmd` tasks in the background, one at a time per key (Flagger's de-duplication:
// name.namespace and the command), each within Timeout.
type Runner struct {
	Timeout time.Duration
	Log     logr.Logger
	Metrics *Metrics

	mu      sync.Mutex
	running map[string]bool
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// NewRunner returns a Runner whose commands are killed when Close is called.
func NewRunner(timeout time.Duration, log logr.Logger, m *Metrics) *Runner {
	ctx, stop := context.WithCancel(context.Background())
	return &Runner{Timeout: timeout, Log: log, Metrics: m, running: map[string]bool{}, ctx: ctx, stop: stop}
}

// Start runs `sh -c command` in the background for release (name.namespace) unless the same
// command of the same release is running; it reports whether it started one.
func (r *Runner) Start(release, command string, logOutput bool) bool {
	key := release + "\x00" + command
	log := r.Log.WithValues("release", release, "command", command)
	r.mu.Lock()
	if r.running[key] || r.ctx.Err() != nil {
		r.mu.Unlock()
		log.Info("command skipped: already running")
		r.Metrics.task(TaskCmd, ResultSkipped, 0)
		return false
	}
	r.running[key] = true
	r.wg.Add(1)
	r.mu.Unlock()
	log.Info("task starting")
	r.Metrics.running(TaskCmd, 1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, key)
			r.mu.Unlock()
			r.Metrics.running(TaskCmd, -1)
		}()
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.ctx, r.Timeout)
		defer cancel()
		out, err := runCommand(ctx, r.Timeout, "sh", "-c", command)
		if err != nil {
			log.Error(err, "command failed", "output", string(out))
			r.Metrics.task(TaskCmd, ResultFailed, time.Since(start))
			return
		}
		if logOutput {
			log.Info("command output", "output", string(out))
		}
		log.Info("command finished")
		r.Metrics.task(TaskCmd, ResultSucceeded, time.Since(start))
	}()
	return true
}

// Running reports whether the command of release is running.
func (r *Runner) Running(release, command string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[release+"\x00"+command]
}

// Close kills every running command and waits until they have exited (at most ctx).
func (r *Runner) Close(ctx context.Context) error {
	r.stop()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for running commands: %w", ctx.Err())
	}
}
