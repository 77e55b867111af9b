package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-dev/sluice/loadtester"
)

// Options are sluice-loadtester's flags. Flagger's tester's flags (-port, -timeout,
// -namespace-regexp, -log-level, -zap-encoding, -zap-replace-globals) keep their names and
// meaning, so its Deployment's arguments work unchanged; flags take one dash or two.
type Options struct {
	Port              string
	Address           string
	Timeout           time.Duration
	NamespaceRegexp   string
	AllowedNamespaces string
	LogLevel          string
	ZapEncoding       string
	ZapReplaceGlobals bool
	// GateConfigMap, when set, keeps the gates in this ConfigMap (created when missing) in
	// GateNamespace; empty keeps them in memory, as Flagger's tester does.
	GateConfigMap   string
	GateNamespace   string
	Kubeconfig      string
	ShutdownTimeout time.Duration

	level   zapcore.Level
	auth    loadtester.Authorizer
	address string
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Port, "port", "9090", "port of the API")
	fs.StringVar(&o.Address, "address", "", "address the API binds (empty: all interfaces)")
	fs.DurationVar(&o.Timeout, "timeout", time.Hour, "how long a task (command or load) may run")
	fs.StringVar(&o.NamespaceRegexp, "namespace-regexp", "", "serve only payloads whose namespace matches (unanchored, as Flagger's)")
	fs.StringVar(&o.AllowedNamespaces, "allowed-namespaces", "", "comma-separated namespaces served (with -namespace-regexp: either admits)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warning or error")
	fs.StringVar(&o.ZapEncoding, "zap-encoding", "json", "log encoding: json or console")
	fs.BoolVar(&o.ZapReplaceGlobals, "zap-replace-globals", false, "accepted for Flagger compatibility; no effect")
	fs.StringVar(&o.GateConfigMap, "gate-configmap", "", "ConfigMap that keeps the gates across restarts (empty: in memory, lost on restart)")
	fs.StringVar(&o.GateNamespace, "gate-namespace", "", "namespace of -gate-configmap (default: $POD_NAMESPACE)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig for -gate-configmap outside a cluster (default: in-cluster config or $KUBECONFIG)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM, how long requests in flight may finish before running commands are killed")
}

// Complete fills defaults from the environment.
func (o *Options) Complete() {
	if o.GateNamespace == "" {
		o.GateNamespace = os.Getenv("POD_NAMESPACE")
	}
}

// Validate checks the options and derives what the server needs.
func (o *Options) Validate() error {
	var errs []error
	if n, err := strconv.Atoi(o.Port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("-port: must be 1..65535, got %q", o.Port))
	}
	if o.Address != "" && net.ParseIP(o.Address) == nil {
		errs = append(errs, fmt.Errorf("-address: must be an IP address, got %q", o.Address))
	}
	o.address = net.JoinHostPort(o.Address, o.Port)
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout: must be positive, got %v", o.Timeout))
	}
	if o.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-shutdown-timeout: must be positive, got %v", o.ShutdownTimeout))
	}
	o.auth = loadtester.Authorizer{}
	if o.NamespaceRegexp != "" {
		re, err := regexp.Compile(o.NamespaceRegexp)
		if err != nil {
			errs = append(errs, fmt.Errorf("-namespace-regexp: %w", err))
		}
		o.auth.Regexp = re
	}
	for _, ns := range strings.Split(o.AllowedNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns == "" {
			continue
		}
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("-allowed-namespaces: %q: %s", ns, strings.Join(msgs, "; ")))
		}
		o.auth.Namespaces = append(o.auth.Namespaces, ns)
	}
	switch o.LogLevel {
	case "debug":
		o.level = zapcore.DebugLevel
	case "info":
		o.level = zapcore.InfoLevel
	case "warning", "warn":
		o.level = zapcore.WarnLevel
	case "error":
		o.level = zapcore.ErrorLevel
	default:
		errs = append(errs, fmt.Errorf("-log-level: must be debug, info, warning or error, got %q", o.LogLevel))
	}
	if o.ZapEncoding != "json" && o.ZapEncoding != "console" {
		errs = append(errs, fmt.Errorf("-zap-encoding: must be json or console, got %q", o.ZapEncoding))
	}
	if o.GateConfigMap != "" {
		if msgs := validation.IsDNS1123Subdomain(o.GateConfigMap); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("-gate-configmap: %q: %s", o.GateConfigMap, strings.Join(msgs, "; ")))
		}
		if o.GateNamespace == "" {
			errs = append(errs, errors.New("-gate-namespace: required with -gate-configmap (or set $POD_NAMESPACE)"))
		}
	}
	return errors.Join(errs...)
}
