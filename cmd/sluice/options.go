package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Options are the sluice controller's flags.
type Options struct {
	Kubeconfig          string
	ControllerIdentity  string
	DefaultRouter       string
	WebhookHost         string
	WebhookPort         int
	CertDir             string
	MetricsAddr         string
	ProbeAddr           string
	LeaderElect         bool
	LeaderElectionNS    string
	PrometheusAddress   string
	QueryTimeout        time.Duration
	QueryParallelism    int
	Concurrency         int
	RestartBypass       bool
	LogLevel            int
	DisableWebhook      bool
	DisableReconciler   bool
	GracefulStopTimeout time.Duration
	ExcludedNamespaces  []string
	// WatchNamespaces limits the cache (and so the rollout worker) to these namespaces; empty
	// watches the whole cluster.
	WatchNamespaces []string
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig for running outside a cluster (default: in-cluster config or $KUBECONFIG)")
	fs.StringVar(&o.ControllerIdentity, "controller-identity", "system:serviceaccount:sluice-system:sluice",
		"user name of Sluice's own API writes; the webhook lets them through as sent")
	fs.StringVar(&o.DefaultRouter, "default-router", spec.RouterReplicas, "router used when a Deployment sets no sluice.dev/router")
	fs.StringVar(&o.WebhookHost, "webhook-host", "", "address the webhook server binds (empty: all interfaces)")
	fs.IntVar(&o.WebhookPort, "webhook-port", 9443, "webhook server port")
	fs.StringVar(&o.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding tls.crt and tls.key (reloaded on change)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", `address of /metrics ("0" disables)`)
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect a leader so that only one replica runs the rollout worker")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	fs.StringVar(&o.PrometheusAddress, "prometheus-address", "http://prometheus.monitoring:9090", "Prometheus used by the builtin checks and checks without a provider")
	fs.DurationVar(&o.QueryTimeout, "query-timeout", 10*time.Second, "timeout of one metric query")
	fs.IntVar(&o.QueryParallelism, "query-parallelism", 64, "metric queries in flight at once, across all releases")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "releases reconciled in parallel")
	fs.BoolVar(&o.RestartBypass, "restart-bypass", true, "let `kubectl rollout restart` through without a canary")
	fs.IntVar(&o.LogLevel, "v", 0, "log verbosity (0: what operators act on; 1+: detail)")
	fs.BoolVar(&o.DisableWebhook, "disable-webhook", false, "do not serve the admission webhook")
	fs.BoolVar(&o.DisableReconciler, "disable-reconciler", false, "do not run the rollout worker")
	fs.StringSliceVar(&o.ExcludedNamespaces, "excluded-namespaces", []string{"kube-system"},
		"namespaces the webhook's namespaceSelector excludes (keep them equal): opted-in Deployments there are reported (Event NotGuarded), never released")
	fs.DurationVar(&o.GracefulStopTimeout, "graceful-stop-timeout", 10*time.Second, "time given to in-flight work on shutdown")
	fs.StringSliceVar(&o.WatchNamespaces, "watch-namespaces", nil,
		"comma-separated namespaces whose Deployments Sluice releases (default: all); RBAC may then be Roles in these namespaces only")
}

// Validate reports every bad flag value.
func (o *Options) Validate() error {
	var errs []error
	if o.ControllerIdentity == "" {
		errs = append(errs, errors.New("--controller-identity must not be empty"))
	}
	if _, errList := spec.Parse(nil, spec.Defaults{Router: o.DefaultRouter}); len(errList) > 0 {
		errs = append(errs, fmt.Errorf("--default-router: %s", spec.FormatErrors(errList)))
	}
	if o.WebhookPort < 1 || o.WebhookPort > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port must be 1..65535, got %d", o.WebhookPort))
	}
	if o.QueryTimeout <= 0 {
		errs = append(errs, errors.New("--query-timeout must be positive"))
	}
	if o.QueryParallelism < 1 || o.Concurrency < 1 {
		errs = append(errs, errors.New("--query-parallelism and --concurrency must be at least 1"))
	}
	if o.DisableWebhook && o.DisableReconciler {
		errs = append(errs, errors.New("--disable-webhook and --disable-reconciler together leave nothing to run"))
	}
	for _, ns := range o.WatchNamespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	return errors.Join(errs...)
}
