// Package install proves that Sluice installs the way an operator installs it: the Helm chart
// (deploy/helm/sluice) and the kustomize base (deploy/kustomize) render objects the real API
// server accepts, and the chart's ServiceAccount, RBAC, flags and webhook configuration are
// enough to run a whole release. It runs on its own control plane: the chart registers a
// webhook configuration of its own, which must not meet the one the e2e suite's stack registers.
package install

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

var update = flag.Bool("update", false, "rewrite deploy/kustomize/sluice.yaml from the chart")

var (
	testCluster *cluster.Cluster
	repo        string
)

func TestMain(m *testing.M) {
	os.Exit(cluster.Main(m, cluster.Options{}, func(c *cluster.Cluster) error {
		testCluster = c
		var err error
		repo, err = cluster.RepoRoot()
		return err
	}))
}

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helmBinary builds the helm CLI from its Go module (once; cached like the control plane's
// binaries) and returns its path.
func helmBinary(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		helmPath, helmErr = cluster.EnsureHelm(context.Background(), cluster.Options{})
	})
	if helmErr != nil {
		t.Fatalf("build helm: %v", helmErr)
	}
	return helmPath
}

func chartDir() string { return filepath.Join(repo, "deploy", "helm", "sluice") }
