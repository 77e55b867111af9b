// Command sluice-loadtester serves Flagger's load tester API (gates, cmd and bash tasks) plus
// an in-process HTTP load task, for Sluice's (and Flagger's) hooks. See package loadtester and
// docs/loadtester.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-dev/sluice/loadtester"
)

func main() {
	var o Options
	fs := flag.NewFlagSet("sluice-loadtester", flag.ExitOnError)
	o.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])
	o.Complete()
	if err := o.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-loadtester:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-loadtester:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o Options) error {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	if o.ZapEncoding == "console" {
		enc = zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	}
	log := zapr.NewLogger(zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stderr), zap.NewAtomicLevelAt(o.level))))

	var gates loadtester.GateStore = &loadtester.MemoryGates{}
	if o.GateConfigMap != "" {
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: o.Kubeconfig, Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
			&clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return fmt.Errorf("load kubeconfig for -gate-configmap: %w", err)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		gates = &loadtester.ConfigMapGates{Client: cs.CoreV1(), Namespace: o.GateNamespace, Name: o.GateConfigMap}
		log.Info("gates kept in a ConfigMap", "configMap", o.GateNamespace+"/"+o.GateConfigMap)
	} else {
		log.Info("gates kept in memory: they close again on restart (set -gate-configmap to keep them)")
	}

	srv := loadtester.New(loadtester.Config{Gates: gates, Auth: o.auth, Timeout: o.Timeout, Log: log})
	ln, err := net.Listen("tcp", o.address)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving the load tester API", "address", ln.Addr().String(), "timeout", o.Timeout)
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	err = httpSrv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = httpSrv.Close() // a blocking task still running: its caller gets no answer
	}
	// Background commands are killed (with their process groups) and reaped.
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	return errors.Join(err, srv.Close(cctx))
}
