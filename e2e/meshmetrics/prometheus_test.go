package meshmetrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

// scrapeConfig is a Prometheus configuration scraping every target of the exporter at addr
// every second: one job per data plane, one static target per pod carrying the target labels
// the usual Kubernetes service discovery and relabelling would give it.
func scrapeConfig(addr string, targets []target) string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	var jobs []string
	byJob := map[string][]int{}
	for i, t := range targets {
		if _, ok := byJob[t.job]; !ok {
			jobs = append(jobs, t.job)
		}
		byJob[t.job] = append(byJob[t.job], i)
	}
	for _, job := range jobs {
		fmt.Fprintf(&b, "- job_name: %s\n  honor_labels: %t\n  static_configs:\n", job, targets[byJob[job][0]].honorLabels)
		for _, i := range byJob[job] {
			// instance tells apart targets whose other labels are alike (the same proxy pod
			// names in two scenarios).
			fmt.Fprintf(&b, "  - targets: [%q]\n    labels:\n      __metrics_path__: \"/metrics/%d\"\n      instance: \"%s/metrics/%d\"\n", addr, i, addr, i)
			l := targets[i].labels
			for j := 0; j+1 < len(l); j += 2 {
				fmt.Fprintf(&b, "      %s: %q\n", l[j], l[j+1])
			}
		}
	}
	return b.String()
}

// startPrometheus runs the Prometheus binary on a free 127.0.0.1 port with config, until the
// test ends, and returns its base URL once it is ready.
func startPrometheus(t *testing.T, binary, config string) string {
	t.Helper()
	dir := t.TempDir()
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary,
		"--config.file="+configPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=1h",
		"--web.listen-address="+addr,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, killed with the test binary if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close() // not written to
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-exited     // "signal: killed" unless it had ended by itself
		_ = logFile.Close() // our copy; Prometheus wrote through its own
		if t.Failed() {
			t.Logf("prometheus ended: %v", err)
			logTail(t, logPath)
		}
	})

	base := "http://" + addr
	ready := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/ready", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	}
	if err := poll(t.Context(), 30*time.Second, func(ctx context.Context) error {
		select {
		case err := <-exited:
			exited <- err
			if err == nil {
				return fmt.Errorf("%w: prometheus exited (status 0)", errStop)
			}
			return fmt.Errorf("%w: prometheus exited: %w", errStop, err)
		default:
		}
		return ready(ctx)
	}); err != nil {
		t.Fatalf("prometheus at %s: %v", base, err)
	}
	return base
}

func logTail(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	t.Logf("last lines of %s:\n%s", path, strings.Join(lines[max(0, len(lines)-20):], "\n"))
}

// errStop makes poll give up at once.
var errStop = errors.New("stop polling")

// poll calls fn every 200ms until it returns nil, returns an error wrapping errStop, or timeout
// passes; it returns fn's last error then.
func poll(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := fn(ctx)
		if err == nil || errors.Is(err, errStop) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}
