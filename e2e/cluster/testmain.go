package cluster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
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
// calls setup, runs the tests and stops the control plane, also on SIGINT or SIGTERM.
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
		mu      sync.Mutex
		running *Cluster
	)
	go func() {
		sig := <-signals
		cancel() // aborts a build or boot in progress
		mu.Lock()
		c := running
		mu.Unlock()
		if c != nil {
			fmt.Fprintf(opts.Log, "%v: stopping the local control plane\n", sig)
			if err := c.Stop(); err != nil {
				fmt.Fprintf(opts.Log, "stop local control plane: %v\n", err)
			}
			os.Exit(130)
		}
	}()

	c, err := Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(opts.Log, "start local control plane: %v\n", err)
		return 1
	}
	mu.Lock()
	running = c
	mu.Unlock()
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(opts.Log, "stop local control plane: %v\n", err)
		}
	}()
	if ctx.Err() != nil { // interrupted right after Start returned
		return 130
	}
	if setup != nil {
		if err := setup(c); err != nil {
			fmt.Fprintf(opts.Log, "set up local control plane: %v\n", err)
			return 1
		}
	}
	return m.Run()
}
