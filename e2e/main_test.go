// Package e2e proves Sluice end to end on a real local control plane (kube-apiserver, etcd,
// controller-manager, scheduler, kwok), a real Prometheus, and the real sluice binary serving
// its webhook over TLS. Users act through the real kubectl.
package e2e

import (
	"context"
	"os"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/stack"
)

var env *stack.Stack

func TestMain(m *testing.M) {
	// The reconcilers and clients tests run in this process log nothing (sluice's own log is
	// its process's); without a logger controller-runtime prints a stack trace to say so.
	log.SetLogger(logr.Discard())
	os.Exit(cluster.Main(m, cluster.Options{}, func(c *cluster.Cluster) error {
		s, err := stack.Up(context.Background(), c, stack.Options{})
		env = s
		return err
	}))
}
