// Package sequence runs whole releases through the worker's real step — rollout.Reconciler's
// gather, plan and apply — against a real API server. The Deployment controller and kwok make
// the pods, a real Prometheus answers the checks, the admission decision is webhook.Decide, and
// a fake clock moves to each requeue once the cluster has converged, so the sequence of states,
// Events and writes is the same on every run and kept in golden files (testdata/, -update).
//
// Beside good releases, each fault the worker must survive has a row: a routing object that
// cannot be set, a stale cache, a write that replaces the release under a step, Prometheus
// down for an analysis run, and a crash between the canary write and the state patch.
package sequence_test

import (
	"context"
	"flag"
	"os"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/stack"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	env     *cluster.Cluster
	promURL string
)

func TestMain(m *testing.M) {
	log.SetLogger(logr.Discard())
	os.Exit(cluster.Main(m, cluster.Options{}, func(c *cluster.Cluster) error {
		env = c
		ctx := context.Background()
		repo, err := cluster.RepoRoot()
		if err != nil {
			return err
		}
		if err := stack.InstallRouterCRDs(ctx, c, repo); err != nil {
			return err
		}
		// Nothing to scrape: the checks are PromQL the server answers by itself.
		promURL, err = c.StartPrometheus(ctx, "global:\n  scrape_interval: 1m\n")
		return err
	}))
}
