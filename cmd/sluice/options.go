package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-dev/sluice/providers/alerts"
	"github.com/sluice-dev/sluice/providers/builtin"
	"github.com/sluice-dev/sluice/providers/hooks"
	"github.com/sluice-dev/sluice/providers/metrics/prometheus"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Options are the sluice controller's flags.
type Options struct {
	Kubeconfig         string
	ControllerIdentity string
	DefaultRouter      string
	WebhookHost        string
	WebhookPort        int
	CertDir            string
	MetricsAddr        string
	PprofAddr          string
	ProbeAddr          string
	LeaderElect        bool
	LeaderElectionNS   string
	PrometheusAddress  string
	QueryTimeout       time.Duration
	QueryParallelism   int
	// BackendParallelism bounds the queries in flight to one metrics backend.
	BackendParallelism  int
	Concurrency         int
	KubeAPIQPS          float32
	KubeAPIBurst        int
	RestartBypass       bool
	LogLevel            int
	DisableWebhook      bool
	DisableReconciler   bool
	GracefulStopTimeout time.Duration
	ExcludedNamespaces  []string
	// WatchNamespaces limits the cache (and so the rollout worker) to these namespaces; empty
	// watches the whole cluster.
	WatchNamespaces []string
	// AllowCrossNamespaceTemplates lets a check's templateRef name a MetricTemplate in another
	// namespace than the Deployment's (the template then runs with its own namespace's Secret).
	AllowCrossNamespaceTemplates bool
	// AllowControllerCloudIdentity lets a cloudwatch template without keys use the
	// controller's own AWS identity (its default credential chain).
	AllowControllerCloudIdentity bool
	// HookConcurrency bounds the hook calls in flight at once, across all releases.
	HookConcurrency int
	// DefaultAlerts is a YAML list of alert targets every release posts to (the shape of
	// sluice.dev/alerts, each naming its AlertProvider's namespace).
	DefaultAlerts string
	// AlertDedupeWindow: the same alert is posted at most once per window.
	AlertDedupeWindow time.Duration

	// Namespace is Sluice's own namespace: the certificate Secret, and the leader-election
	// Lease unless LeaderElectionNS says otherwise.
	Namespace string
	// CertSecret, when set, selects self-managed certificates (package certs) kept in this
	// Secret; empty serves tls.crt/tls.key from CertDir (cert-manager's path).
	CertSecret           string
	WebhookConfiguration string
	WebhookService       string
	CertExtraSANs        []string
	CertValidity         time.Duration
	CertRefreshInterval  time.Duration

	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig for running outside a cluster (default: in-cluster config or $KUBECONFIG)")
	fs.StringVar(&o.ControllerIdentity, "controller-identity", "system:serviceaccount:sluice-system:sluice",
		"user name of Sluice's own API writes; the webhook lets them through as sent")
	fs.StringVar(&o.DefaultRouter, "default-router", spec.RouterReplicas, "router used when a Deployment sets no "+spec.AnnRouter)
	fs.StringVar(&o.WebhookHost, "webhook-host", "", "address the webhook server binds (empty: all interfaces)")
	fs.IntVar(&o.WebhookPort, "webhook-port", 9443, "webhook server port")
	fs.StringVar(&o.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding tls.crt and tls.key (reloaded on change)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", `address of /metrics ("0" disables)`)
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", "", `address of Go's /debug/pprof/ profiles, for measuring the controller (empty or "0": off)`)
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect a leader so that only one replica runs the rollout worker")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	fs.StringVar(&o.PrometheusAddress, "prometheus-address", "http://prometheus.monitoring:9090", "Prometheus used by the builtin checks and checks without a provider")
	fs.DurationVar(&o.QueryTimeout, "query-timeout", 10*time.Second, "timeout of one metric query")
	fs.IntVar(&o.QueryParallelism, "query-parallelism", 64, "metric queries in flight at once, across all releases and backends")
	fs.IntVar(&o.BackendParallelism, "query-parallelism-per-backend", 16,
		"metric queries in flight at once to one backend (provider type, address and region), so a slow or hanging backend holds at most these of --query-parallelism")
	fs.IntVar(&o.Concurrency, "concurrency", 256, "release steps run in parallel; a step holds a worker while its analysis queries run (up to --query-timeout when a backend hangs) and while its writes wait on a busy API server")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", 100, "requests per second to the API server, sustained (client-side limit; a release step costs a few writes, reads come from the cache)")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", 250, "requests to the API server allowed in a burst above --kube-api-qps (e.g. hundreds of releases started by one commit)")
	fs.BoolVar(&o.RestartBypass, "restart-bypass", true, "let `kubectl rollout restart` through without a canary")
	fs.IntVar(&o.LogLevel, "v", 0, "log verbosity (0: what operators act on; 1+: detail)")
	fs.BoolVar(&o.DisableWebhook, "disable-webhook", false, "do not serve the admission webhook")
	fs.BoolVar(&o.DisableReconciler, "disable-reconciler", false, "do not run the rollout worker")
	fs.StringSliceVar(&o.ExcludedNamespaces, "excluded-namespaces", []string{"kube-system"},
		"namespaces the webhook's namespaceSelector excludes (keep them equal): opted-in Deployments there are reported (Event NotGuarded), never released")
	fs.DurationVar(&o.GracefulStopTimeout, "graceful-stop-timeout", 10*time.Second, "time given to in-flight work on shutdown")
	fs.StringSliceVar(&o.WatchNamespaces, "watch-namespaces", nil,
		"comma-separated namespaces whose Deployments Sluice releases (default: all); RBAC may then be Roles in these namespaces only")
	fs.BoolVar(&o.AllowCrossNamespaceTemplates, "allow-cross-namespace-templates", false,
		"let a templateRef name a MetricTemplate in another namespace (it runs with that namespace's Secret); refused as a failed check otherwise")
	fs.BoolVar(&o.AllowControllerCloudIdentity, "allow-controller-cloud-identity", false,
		"let a cloudwatch MetricTemplate without keys in its Secret use the controller's own AWS identity (default credential chain); refused as a failed check otherwise")

	fs.IntVar(&o.HookConcurrency, "hook-concurrency", hooks.DefaultConcurrency,
		"hook calls in flight at once, across all releases (a call beyond waits for a slot; a hook that hangs holds one for its timeout)")
	fs.StringVar(&o.DefaultAlerts, "default-alerts", "",
		"alert targets of every release, besides its own "+spec.AnnAlerts+": a YAML or JSON list in that annotation's shape, each providerRef naming its namespace, "+
			`e.g. '[{name: ops, severity: error, providerRef: {name: ops-slack, namespace: sluice-system}}]'`)
	fs.DurationVar(&o.AlertDedupeWindow, "alert-dedupe-window", alerts.DefaultDedupeWindow,
		"the same alert (Deployment, revision, phase, weight, reason, check, target) is posted at most once per window; a release waiting at a closed gate alerts once, then once a window")
	fs.StringVar(&o.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "Sluice's own namespace: the certificate Secret and the leader-election Lease (default: $POD_NAMESPACE)")
	fs.StringVar(&o.CertSecret, "cert-secret", "", "self-managed webhook certificates: keep a CA and the serving certificate in this Secret of --namespace, "+
		"inject the CA into --webhook-configuration, rotate before expiry (empty: serve tls.crt/tls.key from --cert-dir)")
	fs.StringVar(&o.WebhookConfiguration, "webhook-configuration", "sluice", "MutatingWebhookConfiguration whose caBundle self-managed certificates are injected into")
	fs.StringVar(&o.WebhookService, "webhook-service", "sluice-webhook", "Service in front of the webhook: the serving certificate's DNS names (svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local)")
	fs.StringSliceVar(&o.CertExtraSANs, "cert-extra-sans", nil, "more DNS names or IP addresses for the serving certificate")
	fs.DurationVar(&o.CertValidity, "cert-validity", 365*24*time.Hour, "validity of a self-managed serving certificate; rotated when a third remains (CAs live twice as long)")
	fs.DurationVar(&o.CertRefreshInterval, "cert-refresh-interval", 10*time.Second, "how often each replica re-reads the certificate Secret (and rotates when due)")
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a non-leader waits after the last renewal before taking the lease")
	fs.DurationVar(&o.RenewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew before giving up (and exiting)")
	fs.DurationVar(&o.RetryPeriod, "leader-election-retry-period", 2*time.Second, "interval of leader-election attempts and renewals")
}

// Complete fills defaults that depend on other flags.
func (o *Options) Complete() {
	if o.LeaderElectionNS == "" {
		o.LeaderElectionNS = o.Namespace
	}
}

// CertHosts are the names and addresses of the self-managed serving certificate.
func (o *Options) CertHosts() []string {
	var hosts []string
	if o.WebhookService != "" && o.Namespace != "" {
		svc := o.WebhookService
		hosts = append(hosts, svc, svc+"."+o.Namespace, svc+"."+o.Namespace+".svc", svc+"."+o.Namespace+".svc.cluster.local")
	}
	return append(hosts, o.CertExtraSANs...)
}

// Validate reports every bad flag value.
func (o *Options) Validate() error {
	var errs []error
	if o.ControllerIdentity == "" {
		errs = append(errs, errors.New("--controller-identity must not be empty"))
	}
	if _, errList := spec.Parse(nil, spec.Defaults{Router: o.DefaultRouter, Routers: builtin.Routers().Catalog()}); len(errList) > 0 {
		errs = append(errs, fmt.Errorf("--default-router: %s", spec.FormatErrors(errList)))
	}
	if o.WebhookPort < 1 || o.WebhookPort > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port must be 1..65535, got %d", o.WebhookPort))
	}
	if err := prometheus.CheckAddress(o.PrometheusAddress); err != nil {
		errs = append(errs, fmt.Errorf("--prometheus-address: %w", err))
	}
	if o.QueryTimeout <= 0 {
		errs = append(errs, errors.New("--query-timeout must be positive"))
	}
	if o.QueryParallelism < 1 || o.BackendParallelism < 1 || o.Concurrency < 1 {
		errs = append(errs, errors.New("--query-parallelism, --query-parallelism-per-backend and --concurrency must be at least 1"))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps must be positive and --kube-api-burst at least 1, got %g and %d", o.KubeAPIQPS, o.KubeAPIBurst))
	}
	if o.CertSecret != "" && !o.DisableWebhook {
		if o.Namespace == "" {
			errs = append(errs, errors.New("--cert-secret needs --namespace (or $POD_NAMESPACE)"))
		}
		if o.WebhookConfiguration == "" {
			errs = append(errs, errors.New("--cert-secret needs --webhook-configuration"))
		}
		if len(o.CertHosts()) == 0 {
			errs = append(errs, errors.New("--cert-secret needs --webhook-service or --cert-extra-sans: the certificate must name a host"))
		}
		if o.CertValidity < time.Minute {
			errs = append(errs, fmt.Errorf("--cert-validity must be at least 1m, got %s", o.CertValidity))
		}
		// A replica must see a rotation well before the CA of the certificate it serves
		// leaves the bundle (one rotation period, two thirds of the validity, later).
		if o.CertRefreshInterval <= 0 || o.CertRefreshInterval > o.CertValidity/3 {
			errs = append(errs, fmt.Errorf("--cert-refresh-interval must be positive and at most a third of --cert-validity, got %s", o.CertRefreshInterval))
		}
		for _, san := range o.CertExtraSANs {
			if net.ParseIP(san) == nil && len(validation.IsDNS1123Subdomain(san)) > 0 {
				errs = append(errs, fmt.Errorf("--cert-extra-sans: %q is neither an IP address nor a DNS name", san))
			}
		}
	}
	if o.LeaderElect && !o.DisableReconciler {
		// client-go's own rules: lease > renew deadline > 1.2 × retry period.
		if o.RetryPeriod <= 0 || o.RenewDeadline <= time.Duration(1.2*float64(o.RetryPeriod)) || o.LeaseDuration <= o.RenewDeadline {
			errs = append(errs, fmt.Errorf("leader election needs --leader-election-lease-duration > --leader-election-renew-deadline > 1.2 × --leader-election-retry-period > 0, got %s, %s, %s",
				o.LeaseDuration, o.RenewDeadline, o.RetryPeriod))
		}
	}
	if o.DisableWebhook && o.DisableReconciler {
		errs = append(errs, errors.New("--disable-webhook and --disable-reconciler together leave nothing to run"))
	}
	for _, ns := range o.WatchNamespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	if o.HookConcurrency < 1 {
		errs = append(errs, fmt.Errorf("--hook-concurrency must be at least 1, got %d", o.HookConcurrency))
	}
	if o.AlertDedupeWindow <= 0 {
		errs = append(errs, fmt.Errorf("--alert-dedupe-window must be positive, got %s", o.AlertDedupeWindow))
	}
	if _, err := o.DefaultAlertList(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// DefaultAlertList parses --default-alerts: sluice.dev/alerts' shape, each providerRef with
// its namespace (there is no Deployment's namespace to default to).
func (o *Options) DefaultAlertList() ([]spec.Alert, error) {
	if strings.TrimSpace(o.DefaultAlerts) == "" {
		return nil, nil
	}
	const flag = "--default-alerts"
	as, errList := spec.ParseAlerts(flag, o.DefaultAlerts)
	for i, a := range as {
		if a.ProviderRef.Namespace == "" {
			errList = append(errList, field.Required(field.NewPath(flag).Index(i).Child("providerRef", "namespace"),
				"a default alert names its AlertProvider's namespace"))
		}
	}
	if len(errList) > 0 {
		return nil, errors.New(spec.FormatErrors(errList))
	}
	return as, nil
}
