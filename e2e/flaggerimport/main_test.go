// Package flaggerimport proves `kubectl sluice import` on every Canary manifest Flagger
// publishes: its documentation, kustomize examples, e2e scripts and charts, read from Flagger's
// Go module (the version e2e/tools/flagger pins), each converted by the real plugin binary and
// its output dry-run on the local API server with Sluice's webhook registered.
package flaggerimport

import (
	"context"
	"os"
	"testing"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/stack"
)

var env *stack.Stack

func TestMain(m *testing.M) {
	os.Exit(cluster.Main(m, cluster.Options{}, func(c *cluster.Cluster) error {
		s, err := stack.Up(context.Background(), c, stack.Options{})
		env = s
		return err
	}))
}
