package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

// HTTPRoutes is the resource the gateway reads.
var HTTPRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

const (
	// pollPeriod is how often the gateway reads the HTTPRoute, its Services and their pods.
	pollPeriod = 200 * time.Millisecond
	// startTimeout bounds the wait for Caddy's admin API after the process starts.
	startTimeout = 30 * time.Second
	// stopTimeout bounds Caddy's graceful exit before it is killed.
	stopTimeout = 5 * time.Second
)

// Gateway is a running Caddy serving one HTTPRoute. Its methods are safe for concurrent use.
type Gateway struct {
	namespace, route string
	client           kubernetes.Interface
	routes           dynamic.NamespaceableResourceInterface
	dir, logPath     string
	listeners        listeners
	admin            *http.Client

	cmd     *exec.Cmd
	exited  chan struct{} // closed when Caddy has exited; exitErr is then set
	exitErr error

	cancel context.CancelFunc
	loop   sync.WaitGroup

	mu         sync.Mutex
	pushed     []byte // the config Caddy runs
	applied    Applied
	err        error  // the last sync's error, nil when it succeeded
	loggedErr  string // the last error written to the log, so that a repeat is not written again
	stopOnce   sync.Once
	stopResult error
}

// Start runs Caddy (the binary at caddy, e.g. cluster.Binaries.Caddy) on free 127.0.0.1 ports
// and keeps it serving the HTTPRoute namespace/route as read through cfg, until Stop. It
// returns once Caddy's admin API answers and the first config, made from what the API server
// holds at that moment, is pushed; ctx bounds only that start. A route that does not exist
// (yet) is not an error: requests get 404 until it does.
func Start(ctx context.Context, caddy string, cfg *rest.Config, namespace, route string) (_ *Gateway, err error) {
	cfg = rest.CopyConfig(cfg)
	// Three requests per poll: more than client-go's default client-side rate limit allows.
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	ports, err := cluster.FreePorts(3)
	if err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	dir, err := os.MkdirTemp("", "sluice-gateway-*")
	if err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	g := &Gateway{
		namespace: namespace, route: route,
		client: client, routes: dyn.Resource(HTTPRoutes),
		dir: dir, logPath: filepath.Join(dir, "caddy.log"),
		listeners: listeners{
			Admin: hostPort(ports[0]), HTTP: hostPort(ports[1]), Unavailable: hostPort(ports[2]),
			Storage: filepath.Join(dir, "data"),
		},
		admin:  &http.Client{Timeout: 10 * time.Second},
		exited: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			g.kill()
			err = fmt.Errorf("start gateway: %w\ncaddy log:\n%s", err, g.Log())
			_ = os.RemoveAll(dir)
		}
	}()
	if err := g.startCaddy(caddy); err != nil {
		return nil, err
	}
	if err := g.waitAdmin(ctx); err != nil {
		return nil, err
	}
	if err := g.sync(ctx); err != nil && !isReadError(err) {
		return nil, err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.loop.Go(func() { g.run(loopCtx) })
	return g, nil
}

// URL is where the gateway serves the route, e.g. http://127.0.0.1:41234.
func (g *Gateway) URL() string { return "http://" + g.listeners.HTTP }

// Applied returns what the gateway last pushed to Caddy.
func (g *Gateway) Applied() Applied {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.applied
}

// Err returns why the last sync did not push a config (nil when it did, or had nothing to
// push): the route cannot be read or uses what the gateway does not support, or Caddy refused
// the config. Caddy keeps serving the previous config meanwhile.
func (g *Gateway) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// LogPath is the file holding Caddy's output and the gateway's own lines (prefixed
// "gateway:"); Stop removes it.
func (g *Gateway) LogPath() string { return g.logPath }

// Log returns the last 100 lines of the log, for a failing test to print.
func (g *Gateway) Log() string {
	data, err := os.ReadFile(g.logPath)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", g.logPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-100):], "\n")
}

// Stop stops watching, stops Caddy (gracefully, killed after 5 s) and removes its dir and log.
// It returns an error, with the end of the log, when Caddy had exited before it was asked to.
func (g *Gateway) Stop() error {
	g.stopOnce.Do(func() {
		g.cancel()
		g.loop.Wait()
		select {
		case <-g.exited:
			g.stopResult = fmt.Errorf("before Stop: %w\ncaddy log:\n%s", g.exitError(), g.Log())
		default:
			g.kill()
		}
		if err := os.RemoveAll(g.dir); err != nil && g.stopResult == nil {
			g.stopResult = err
		}
	})
	return g.stopResult
}

func (g *Gateway) startCaddy(caddy string) error {
	// The config Caddy starts with serves 404 until the first sync replaces it.
	initial, _, err := render(nil, nil, g.listeners)
	if err != nil {
		return err
	}
	configPath := filepath.Join(g.dir, "initial.json")
	if err := os.WriteFile(configPath, initial, 0o644); err != nil {
		return err
	}
	log, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }() // the child has its own copy
	args := []string{"run", "--config", configPath}
	fmt.Fprintf(log, "# %s %s\n", caddy, strings.Join(args, " "))
	g.cmd = exec.Command(caddy, args...)
	g.cmd.Dir = g.dir
	// Keep Caddy's state and config out of the user's home.
	g.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(g.dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(g.dir, "config"))
	g.cmd.Stdout, g.cmd.Stderr = log, log
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", caddy, err)
	}
	go func() {
		g.exitErr = g.cmd.Wait()
		close(g.exited)
	}()
	return nil
}

func (g *Gateway) waitAdmin(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.listeners.Admin+"/config/", nil)
		if err != nil {
			return err
		}
		resp, err := g.admin.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /config/: %s", resp.Status)
		}
		select {
		case <-g.exited:
			return g.exitError()
		case <-ctx.Done():
			return fmt.Errorf("wait for Caddy's admin API on %s: %w (last: %w)", g.listeners.Admin, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill ends Caddy: SIGTERM to its process group, SIGKILL after stopTimeout.
func (g *Gateway) kill() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.exited:
		return // its process group may be gone and its id reused
	default:
	}
	pgid := g.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-g.exited
	}
}

// exitError says how Caddy exited; call it once g.exited is closed.
func (g *Gateway) exitError() error {
	if g.exitErr == nil {
		return errors.New("caddy exited (status 0)")
	}
	return fmt.Errorf("caddy exited: %w", g.exitErr)
}

// run syncs every pollPeriod until ctx is done.
func (g *Gateway) run(ctx context.Context) {
	tick := time.NewTicker(pollPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.exited:
			g.record(g.exitError())
			return
		case <-tick.C:
		}
		_ = g.sync(ctx) // recorded
	}
}

// readError marks a failure to read the route and its backends from the API server, or to
// understand the route: Start tolerates it (the next poll tries again), unlike a config that
// Caddy refuses.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

func isReadError(err error) bool {
	var re readError
	return errors.As(err, &re)
}

// sync reads the route and its backends, renders the config and pushes it when it changed.
// Its error is also recorded for Err and the log.
func (g *Gateway) sync(ctx context.Context) error {
	err := g.syncOnce(ctx)
	if ctx.Err() != nil {
		return err // stopping; not worth recording
	}
	g.record(err)
	return err
}

func (g *Gateway) syncOnce(ctx context.Context) error {
	r, eps, err := g.read(ctx)
	if err != nil {
		return readError{err}
	}
	config, applied, err := render(r, eps, g.listeners)
	if err != nil {
		return err
	}
	g.mu.Lock()
	same := bytes.Equal(config, g.pushed)
	if same {
		// A new version of the route that Caddy already runs as is (e.g. the same pods behind
		// another Service) is in effect all the same.
		g.applied = applied
	}
	g.mu.Unlock()
	if same {
		return nil
	}
	if err := g.push(ctx, config); err != nil {
		return err
	}
	g.mu.Lock()
	g.pushed, g.applied = config, applied
	g.mu.Unlock()
	g.logf("applied %s", applied)
	return nil
}

// read gets the route (nil when it does not exist) and the endpoints of every Service port its
// rules refer to.
func (g *Gateway) read(ctx context.Context) (*route, map[svcPort]resolved, error) {
	obj, err := g.routes.Namespace(g.namespace).Get(ctx, g.route, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get HTTPRoute %s/%s: %w", g.namespace, g.route, err)
	}
	r, err := parseRoute(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("HTTPRoute %s/%s: %w", g.namespace, g.route, err)
	}
	services, err := g.client.CoreV1().Services(g.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list Services in %s: %w", g.namespace, err)
	}
	pods, err := g.client.CoreV1().Pods(g.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list pods in %s: %w", g.namespace, err)
	}
	byName := map[string]*corev1.Service{}
	for i := range services.Items {
		byName[services.Items[i].Name] = &services.Items[i]
	}
	eps := map[svcPort]resolved{}
	for _, ru := range r.Rules {
		for _, b := range ru.Backends {
			key := svcPort{b.Service, b.Port}
			if _, done := eps[key]; done {
				continue
			}
			list, err := serviceEndpoints(byName[b.Service], b.Port, pods.Items)
			res := resolved{Endpoints: list}
			if err != nil {
				res.Problem = err.Error()
			}
			eps[key] = res
		}
	}
	return &r, eps, nil
}

// push replaces Caddy's config through its admin API.
func (g *Gateway) push(ctx context.Context, config []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.listeners.Admin+"/load", bytes.NewReader(config))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.admin.Do(req)
	if err != nil {
		return fmt.Errorf("push config to Caddy: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("push config to Caddy: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// record keeps err for Err and writes it to the log when it differs from the last one.
func (g *Gateway) record(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	g.mu.Lock()
	g.err = err
	changed := msg != g.loggedErr
	g.loggedErr = msg
	g.mu.Unlock()
	switch {
	case changed && err != nil:
		g.logf("error: %v", err)
	case changed:
		g.logf("recovered")
	}
}

func (g *Gateway) logf(format string, args ...any) {
	f, err := os.OpenFile(g.logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }() // a log line: nothing to do if it is lost
	fmt.Fprintf(f, "gateway: %s %s\n", time.Now().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}
