package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"
)

// Binaries are the absolute paths of the built control-plane programs.
type Binaries struct {
	Etcd                  string
	KubeAPIServer         string
	KubeControllerManager string
	KubeScheduler         string
	Kubectl               string
	Kwok                  string
	// KwokStages is the Stage configuration kwok runs with (kwok has no built-in stages).
	KwokStages string
	Prometheus string
	// Caddy is the proxy e2e/gateway runs as a Gateway API data plane.
	Caddy string
}

// tool is one tools module under e2e/tools and what building it produces.
type tool struct {
	name     string   // cache dir prefix and tools module dir
	title    string   // for progress lines
	module   string   // the upstream module whose version names the cache dir
	packages []string // what `go build` builds
	binaries []string // files the build leaves in the cache dir
	coldTime string   // a cold build on 2 cores, for progress lines
	// onDemand tools are not part of the control plane: EnsureBinaries leaves them alone and
	// EnsureHelm or EnsureGolangciLint builds them when they are first needed.
	onDemand bool
	// install, when set, is a main package built by `go install install@version` with the
	// upstream module's own go.mod (the dependency versions its release was tested with), so
	// the tool needs no tools module under e2e/tools; version pins it and names the cache dir.
	install, version string
}

var tools = []tool{
	{
		name: "etcd", title: "etcd", module: "go.etcd.io/etcd/server/v3",
		packages: []string{"."}, binaries: []string{"etcd"}, coldTime: "~1 min",
	},
	{
		name: "kwok", title: "kwok", module: "sigs.k8s.io/kwok",
		packages: []string{"sigs.k8s.io/kwok/cmd/kwok"}, binaries: []string{"kwok"}, coldTime: "~3 min",
	},
	{
		name: "kube", title: "kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)",
		module: "k8s.io/kubernetes",
		packages: []string{
			"k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
			"k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes/cmd/kubectl",
		},
		binaries: []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"},
		coldTime: "~17 min",
	},
	{
		name: "prometheus", title: "prometheus", module: "github.com/prometheus/prometheus",
		packages: []string{"github.com/prometheus/prometheus/cmd/prometheus"}, binaries: []string{"prometheus"},
		coldTime: "~9 min",
	},
	{
		name: "caddy", title: "caddy", module: "github.com/caddyserver/caddy/v2",
		packages: []string{"."}, binaries: []string{"caddy"},
		coldTime: "~4 min",
	},
	{
		name: "helm", title: "helm", module: "helm.sh/helm/v3",
		packages: []string{"helm.sh/helm/v3/cmd/helm"}, binaries: []string{"helm"},
		coldTime: "~3 min", onDemand: true,
	},
	{
		name: "golangci-lint", title: "golangci-lint", module: "github.com/golangci/golangci-lint/v2",
		packages: []string{"github.com/golangci/golangci-lint/v2/cmd/golangci-lint"}, binaries: []string{"golangci-lint"},
		coldTime: "~1.5 min", onDemand: true,
	},
	{
		name: "flagger-loadtester", title: "Flagger's load tester", module: "github.com/fluxcd/flagger",
		install: "github.com/fluxcd/flagger/cmd/loadtester", version: "v1.36.1",
		binaries: []string{"loadtester"}, coldTime: "~3 min", onDemand: true,
	},
	{
		name: "flagger", title: "Flagger's controller", module: "github.com/fluxcd/flagger",
		packages: []string{"github.com/fluxcd/flagger/cmd/flagger"}, binaries: []string{"flagger"},
		coldTime: "~6 min", onDemand: true,
	},
}

// heartbeat is how often a running build reports that it is still running.
const heartbeat = 30 * time.Second

// CacheDir returns where built binaries live: $SLUICE_CACHE_DIR, else
// <user cache dir>/sluice.
func CacheDir() (string, error) {
	if dir := os.Getenv("SLUICE_CACHE_DIR"); dir != "" {
		return filepath.Abs(dir)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find user cache dir (set SLUICE_CACHE_DIR): %w", err)
	}
	return filepath.Join(dir, "sluice"), nil
}

// RepoRoot returns the root of the Sluice repository: the first directory at or above
// the working directory that contains e2e/tools.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "e2e", "tools", "kube", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no e2e/tools/kube/go.mod at or above the working directory")
		}
		dir = parent
	}
}

// EnsureBinaries builds every tool whose binaries are not in the cache yet, reporting
// progress to opts.Log, and returns the paths. With a warm cache it only checks files.
func EnsureBinaries(ctx context.Context, opts Options) (Binaries, error) {
	if err := opts.complete(); err != nil {
		return Binaries{}, err
	}
	dirs := map[string]string{}
	var missing []tool
	for _, t := range tools {
		if t.onDemand {
			continue
		}
		version, err := toolVersion(opts.RepoRoot, t)
		if err != nil {
			return Binaries{}, err
		}
		dirs[t.name] = filepath.Join(opts.CacheDir, t.name+"-"+version)
		if !hasFiles(dirs[t.name], t.binaries...) {
			missing = append(missing, t)
		}
	}
	stages := filepath.Join(dirs["kwok"], "stages.yaml")
	if len(missing) > 0 || !hasFiles(filepath.Dir(stages), filepath.Base(stages)) {
		unlock, err := lockCache(ctx, opts.CacheDir, opts.Log)
		if err != nil {
			return Binaries{}, err
		}
		defer unlock()
		// Another process may have built while we waited for the lock; build checks again.
		for _, t := range missing {
			if err := build(ctx, opts, t, dirs[t.name]); err != nil {
				return Binaries{}, err
			}
		}
		if err := renderKwokStages(ctx, opts.RepoRoot, stages); err != nil {
			return Binaries{}, err
		}
	}
	kube := dirs["kube"]
	return Binaries{
		Etcd:                  filepath.Join(dirs["etcd"], "etcd"),
		KubeAPIServer:         filepath.Join(kube, "kube-apiserver"),
		KubeControllerManager: filepath.Join(kube, "kube-controller-manager"),
		KubeScheduler:         filepath.Join(kube, "kube-scheduler"),
		Kubectl:               filepath.Join(kube, "kubectl"),
		Kwok:                  filepath.Join(dirs["kwok"], "kwok"),
		KwokStages:            stages,
		Prometheus:            filepath.Join(dirs["prometheus"], "prometheus"),
		Caddy:                 filepath.Join(dirs["caddy"], "caddy"),
	}, nil
}

// EnsureHelm builds the helm CLI into the cache unless it is there already and returns its
// path. Only the install tests need it, so EnsureBinaries does not build it.
func EnsureHelm(ctx context.Context, opts Options) (string, error) {
	return EnsureTool(ctx, opts, "helm")
}

// EnsureGolangciLint builds golangci-lint into the cache unless it is there already and
// returns its path. Only `make lint` and e2e/lint need it, so EnsureBinaries does not build it.
func EnsureGolangciLint(ctx context.Context, opts Options) (string, error) {
	return EnsureTool(ctx, opts, "golangci-lint")
}

// EnsureTool builds the on-demand tool name (helm, golangci-lint, flagger-loadtester) into the cache unless it is
// there already and returns the path of its binary.
func EnsureTool(ctx context.Context, opts Options, name string) (string, error) {
	if err := opts.complete(); err != nil {
		return "", err
	}
	var t tool
	for _, c := range tools {
		if c.name == name && c.onDemand {
			t = c
		}
	}
	if t.name == "" {
		return "", fmt.Errorf("no on-demand tool %q (have %s)", name, strings.Join(OnDemandTools(), ", "))
	}
	version, err := toolVersion(opts.RepoRoot, t)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(opts.CacheDir, t.name+"-"+version)
	if !hasFiles(dir, t.binaries...) {
		unlock, err := lockCache(ctx, opts.CacheDir, opts.Log)
		if err != nil {
			return "", err
		}
		defer unlock()
		if err := build(ctx, opts, t, dir); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, t.binaries[0]), nil
}

// OnDemandTools lists the tools EnsureTool builds.
func OnDemandTools() []string {
	var names []string
	for _, t := range tools {
		if t.onDemand {
			names = append(names, t.name)
		}
	}
	return names
}

// EnsureFlaggerLoadtester builds Flagger's load tester (the upstream binary that
// e2e/loadtester compares sluice-loadtester with) into the cache unless it is there already
// and returns its path.
func EnsureFlaggerLoadtester(ctx context.Context, opts Options) (string, error) {
	return EnsureTool(ctx, opts, "flagger-loadtester")
}

// toolVersion reads the version of t.module that e2e/tools/<t.name>/go.mod requires, so
// the cache dir name always matches what would be built.
func toolVersion(repo string, t tool) (string, error) {
	if t.version != "" {
		return t.version, nil
	}
	path := filepath.Join(repo, "e2e", "tools", t.name, "go.mod")
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read tools module: %w", err)
	}
	re := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(t.module) + `\s+(v\S+)`)
	m := re.FindSubmatch(data)
	if m == nil {
		return "", fmt.Errorf("%s does not require %s", path, t.module)
	}
	return string(m[1]), nil
}

func toolNamed(name string) tool {
	for _, t := range tools {
		if t.name == name {
			return t
		}
	}
	panic("unknown tool " + name)
}

func hasFiles(dir string, names ...string) bool {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return false
		}
	}
	return true
}

// lockCache serializes builds between processes (e.g. several test binaries started by
// one `go test ./...`), so that nobody builds the same thing twice at once.
func lockCache(ctx context.Context, cacheDir string, log io.Writer) (unlock func(), err error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	path := filepath.Join(cacheDir, ".build.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open build lock: %w", err)
	}
	start := time.Now()
	last := start
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close() // never locked: nothing to release
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if last.Equal(start) || time.Since(last) >= heartbeat {
			fmt.Fprintf(log, "waiting for another process building Sluice's tools (lock %s), %s elapsed\n",
				path, time.Since(start).Round(time.Second))
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			_ = f.Close() // never locked: nothing to release
			return nil, fmt.Errorf("wait for build lock: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// build runs `go build` in the tools module of t into dir+".tmp" and renames that to dir,
// so a cache dir exists only when complete. The caller holds the cache lock.
func build(ctx context.Context, opts Options, t tool, dir string) error {
	if hasFiles(dir, t.binaries...) {
		return nil
	}
	version := strings.TrimPrefix(filepath.Base(dir), t.name+"-")
	tmp := dir + ".tmp"
	for _, d := range []string{dir, tmp} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("clean %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	out := tmp + string(filepath.Separator)
	if len(t.binaries) == 1 {
		out = filepath.Join(tmp, t.binaries[0])
	}
	flags, err := ldflags(opts.RepoRoot, t, version)
	if err != nil {
		return err
	}
	args := append([]string{"build", "-trimpath", "-ldflags=" + flags, "-o", out}, t.packages...)
	workDir, env := filepath.Join(opts.RepoRoot, "e2e", "tools", t.name), []string{"GOWORK=off"}
	if t.install != "" {
		// Outside any module, so that only the upstream go.mod decides what is built.
		args = []string{"install", "-trimpath", "-ldflags=" + flags, t.install + "@" + version}
		workDir, env = opts.CacheDir, append(env, "GOBIN="+tmp)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %s: find the go command: %w", t.name, err)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = workDir
	cmd.Env = append(os.Environ(), env...)
	log := &lockedWriter{w: opts.Log}
	cmd.Stdout, cmd.Stderr = log, log

	fmt.Fprintf(log, "building %s %s into %s (a cold build takes %s on 2 cores)\n", t.title, version, dir, t.coldTime)
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				fmt.Fprintf(log, "  still building %s: %s elapsed\n", t.name, time.Since(start).Round(time.Second))
			}
		}
	}()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s %s (go %s in %s): %w", t.name, version, strings.Join(args, " "), cmd.Dir, err)
	}
	if !hasFiles(tmp, t.binaries...) {
		return fmt.Errorf("build %s %s: %v missing in %s after the build", t.name, version, t.binaries, tmp)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("build %s: %w", t.name, err)
	}
	fmt.Fprintf(log, "built %s %s in %s\n", t.name, version, time.Since(start).Round(time.Second))
	return nil
}

// ldflags strips symbols and stamps versions the way the upstream release builds do
// (golangci-lint: its version, which `golangci-lint version` reports):
// Kubernetes binaries report their version (otherwise v0.0.0-master, which clients and kwok
// treat as ancient); helm reports its own and, as the Kubernetes version `helm template` and
// `helm lint` assume, the one of the client-go it is built with (otherwise v1.20, which fails
// a chart's kubeVersion constraint).
func ldflags(repo string, t tool, version string) (string, error) {
	flags := []string{"-s", "-w"}
	switch t.name {
	case "kube":
		major, minor := majorMinor(version)
		for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
			flags = append(flags,
				"-X", pkg+".gitVersion="+version,
				"-X", pkg+".gitMajor="+major,
				"-X", pkg+".gitMinor="+minor,
				"-X", pkg+".gitTreeState=clean")
		}
	case "helm":
		clientGo, err := toolVersion(repo, tool{name: t.name, module: "k8s.io/client-go"})
		if err != nil {
			return "", err
		}
		// client-go v0.N.x is Kubernetes 1.N.
		_, minor := majorMinor(clientGo)
		flags = append(flags, "-X", "helm.sh/helm/v3/internal/version.version="+version,
			"-X", "helm.sh/helm/v3/internal/version.gitTreeState=clean")
		for _, pkg := range []string{"helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"} {
			flags = append(flags, "-X", pkg+".k8sVersionMajor=1", "-X", pkg+".k8sVersionMinor="+minor)
		}
	case "golangci-lint":
		// Its main reads the version from the build info unless a date is stamped; built as a
		// tool that would be the tools module's (devel) version.
		flags = append(flags, "-X", "main.version="+strings.TrimPrefix(version, "v"),
			"-X", "main.date=unknown", "-X", "main.commit=unknown")
	}
	return strings.Join(flags, " "), nil
}

// majorMinor splits vX.Y.Z into X and Y.
func majorMinor(version string) (major, minor string) {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	for len(parts) < 2 {
		parts = append(parts, "")
	}
	return parts[0], parts[1]
}

// renderKwokStages writes the "fast" Stage set that ships in the kwok module to path
// (once). It resolves the kustomizations itself: they only list resources.
func renderKwokStages(ctx context.Context, repo, path string) error {
	if hasFiles(filepath.Dir(path), filepath.Base(path)) {
		return nil
	}
	version, err := toolVersion(repo, toolNamed("kwok"))
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("locate the kwok module: find the go command: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", "sigs.k8s.io/kwok@"+version)
	cmd.Dir = filepath.Join(repo, "e2e", "tools", "kwok")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("locate the kwok module: go mod download: %w: %s", err, stderr.String())
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return fmt.Errorf("locate the kwok module: unexpected go mod download output %q: %w", out, err)
	}
	if mod.Dir == "" {
		return fmt.Errorf("locate the kwok module: no Dir in go mod download output %q", out)
	}
	docs, err := kustomizeResources(filepath.Join(mod.Dir, "kustomize", "stage", "fast"))
	if err != nil {
		return fmt.Errorf("render kwok stages: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("render kwok stages: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
		return fmt.Errorf("write kwok stages: %w", err)
	}
	return os.Rename(tmp, path)
}

// kustomizeResources returns the documents of a kustomization that only lists
// resources (files or further kustomization dirs). Anything else is an error, so a
// kwok upgrade that starts patching stages is noticed instead of rendered wrongly.
func kustomizeResources(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("parse %s/kustomization.yaml: %w", dir, err)
	}
	var docs []string
	for key, val := range k {
		switch key {
		case "apiVersion", "kind":
		case "resources":
			list, _ := val.([]any)
			for _, r := range list {
				name, _ := r.(string)
				p := filepath.Join(dir, name)
				fi, err := os.Stat(p)
				if err != nil {
					return nil, err
				}
				if fi.IsDir() {
					sub, err := kustomizeResources(p)
					if err != nil {
						return nil, err
					}
					docs = append(docs, sub...)
					continue
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return nil, err
				}
				docs = append(docs, strings.TrimSuffix(string(b), "\n")+"\n")
			}
		default:
			return nil, fmt.Errorf("%s/kustomization.yaml uses %q, which this renderer does not support", dir, key)
		}
	}
	return docs, nil
}

// lockedWriter lets a build and its heartbeat share one writer line by line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
