package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Flagger is Flagger's controller built from its Go module, and the CRDs that module ships.
type Flagger struct {
	Binary string
	// CRDs is the module's artifacts/flagger/crd.yaml (Canary, MetricTemplate, AlertProvider).
	CRDs    string
	Version string
}

// EnsureFlagger builds Flagger's controller into the cache unless it is there already (a cold
// build takes about 6 min on 2 cores) and locates the CRDs in its module. Only
// e2e/cmd/benchscale needs it, so EnsureBinaries does not build it.
func EnsureFlagger(ctx context.Context, opts Options) (Flagger, error) {
	if err := opts.complete(); err != nil {
		return Flagger{}, err
	}
	t := toolNamed("flagger")
	version, err := toolVersion(opts.RepoRoot, t)
	if err != nil {
		return Flagger{}, err
	}
	bin, err := EnsureTool(ctx, opts, t.name)
	if err != nil {
		return Flagger{}, err
	}
	modDir, err := moduleDir(ctx, filepath.Join(opts.RepoRoot, "e2e", "tools", t.name), t.module+"@"+version)
	if err != nil {
		return Flagger{}, err
	}
	crds := filepath.Join(modDir, "artifacts", "flagger", "crd.yaml")
	if _, err := os.Stat(crds); err != nil {
		return Flagger{}, fmt.Errorf("flagger %s CRDs: %w", version, err)
	}
	return Flagger{Binary: bin, CRDs: crds, Version: version}, nil
}

// moduleDir returns where `go mod download` keeps module@version (run in the tools module dir,
// so that its go.sum vouches for the content).
func moduleDir(ctx context.Context, toolsDir, module string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("locate %s: find the go command: %w", module, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", module)
	cmd.Dir = toolsDir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locate %s: go mod download: %w: %s", module, err, stderr.String())
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("locate %s: unexpected go mod download output %q: %w", module, out, err)
	}
	if mod.Dir == "" {
		return "", fmt.Errorf("locate %s: go mod download named no directory: %q", module, out)
	}
	return mod.Dir, nil
}
