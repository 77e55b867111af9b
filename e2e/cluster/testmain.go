package cluster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// Main runs a test binary against one shared control plane. Use it in TestMain:
//
//	var testCluster *cluster.Cluster
//
//	func TestMain(m *testing.M) {
//		os.Exit(cluster.Main(m, cluster.Options{}, func(c *cluster.Cluster) error {
//			testCluster = c
//			return nil
//		}))
//	}
//
// It builds missing binaries (with progress lines; a cold build takes about 30 min, so
// run `make tools` first or give `go test` a large -timeout), starts the control plane,
// calls setup, runs the tests and stops the control plane (and any other cluster the
// tests started and did not stop), also on SIGINT or SIGTERM.
// With -short it runs no tests and starts nothing.
func Main(m *testing.M, opts Options, setup func(*Cluster) error) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Short() {
		fmt.Fprintln(os.Stderr, "skipping tests that need a local control plane in -short mode")
		return 0
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	var (
		booted  atomic.Bool
		exiting sync.Mutex // held by whoever stops the clusters before exiting
	)
	go func() {
		sig := <-signals
		cancel() // aborts a build or boot in progress; Start then cleans up itself
		if booted.Load() {
			exiting.Lock()
			fmt.Fprintf(opts.Log, "%v: stopping the local control plane(s)\n", sig)
			stopAll(opts.Log) // also detached clusters a test started
			os.Exit(130)
		}
	}()

	c, err := Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(opts.Log, "start local control plane: %v\n", err)
		return 1
	}
	booted.Store(true)
	defer func() {
		exiting.Lock()    // blocks for good if the signal handler is stopping and exiting
		stopAll(opts.Log) // the shared cluster and any a test forgot to stop
	}()
	if ctx.Err() != nil {
		return 130 // interrupted right after Start returned
	}
	if setup != nil {
		if err := setup(c); err != nil {
			fmt.Fprintf(opts.Log, "set up local control plane: %v\n", err)
			return 1
		}
	}
	return m.Run()
}
