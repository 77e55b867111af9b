// Package e2e proves Sluice end to end on a real local control plane (kube-apiserver, etcd,
// controller-manager, scheduler, kwok), a real Prometheus, and the real sluice binary serving
// its webhook over TLS. Users act through the real kubectl.
package e2e

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
