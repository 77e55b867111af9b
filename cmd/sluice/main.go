// Command sluice runs Sluice's controller: the admission webhook that holds template changes of
// opted-in Deployments and the rollout worker that releases them as canaries.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"

	"github.com/go-logr/zapr"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	// Mozilla's root certificates, used only where the system has none: the image
	// (build/image) holds no certificates, and metric and alert services are called over HTTPS.
	_ "golang.org/x/crypto/x509roots/fallback"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/sluice-dev/sluice/certs"
	"github.com/sluice-dev/sluice/providers/alerts"
	"github.com/sluice-dev/sluice/providers/builtin"
	"github.com/sluice-dev/sluice/providers/hooks"
	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/prometheus"
	"github.com/sluice-dev/sluice/providers/metrics/redact"
	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/rollout"
	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

func main() {
	var o Options
	fs := pflag.NewFlagSet("sluice", pflag.ExitOnError)
	o.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])
	o.Complete()
	if err := o.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(2)
	}
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o Options) error {
	zl := zap.New(zapcore.NewCore(
		zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.Lock(os.Stderr), zap.NewAtomicLevelAt(zapcore.Level(-o.LogLevel))))
	ctrl.SetLogger(zapr.NewLogger(zl))
	logger := ctrl.Log.WithName("setup")

	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	// One limit for the whole process (the worker, the certificate manager, Events): sized by
	// flags for hundreds of releases at once rather than controller-runtime's 20/s.
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst

	cacheOpts, err := cacheOptions(o)
	if err != nil {
		return err
	}
	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}
	// Self-managed certificates: every replica keeps the Secret current and serves what it
	// holds, without a restart. Files mode: the webhook server watches --cert-dir itself.
	var certManager *certs.Manager
	if o.CertSecret != "" && !o.DisableWebhook {
		certManager = &certs.Manager{
			Namespace: o.Namespace, SecretName: o.CertSecret, WebhookConfiguration: o.WebhookConfiguration,
			Want:     certs.Want{Hosts: o.CertHosts(), Validity: o.CertValidity},
			Interval: o.CertRefreshInterval,
		}
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.GetCertificate = certManager.GetCertificate })
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := spec.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOpts,
		Client:                  clientOptions(),
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElect && !o.DisableReconciler,
		LeaderElectionID:        "sluice.dev",
		LeaderElectionNamespace: o.LeaderElectionNS,
		LeaseDuration:           &o.LeaseDuration,
		RenewDeadline:           &o.RenewDeadline,
		RetryPeriod:             &o.RetryPeriod,
		// On SIGTERM the worker finishes the step in progress (up to --graceful-stop-timeout),
		// then the Lease is released so another replica takes over at once instead of waiting
		// for it to expire. main returns right after Start, as this setting requires.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &o.GracefulStopTimeout,
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.CertDir, TLSOpts: tlsOpts,
		}),
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	routerReg, backends := builtin.Routers(), builtin.Backends()
	defaults := spec.Defaults{Router: o.DefaultRouter, Routers: routerReg.Catalog()}
	recorder := mgr.GetEventRecorder("sluice")

	if certManager != nil {
		certManager.Reader, certManager.Writer = mgr.GetAPIReader(), mgr.GetClient()
		if err := mgr.Add(certManager); err != nil {
			return err
		}
	}
	// Hooks and alerts: one Caller (its connection pool) for hook rounds and event hooks; the
	// Dispatcher runs on every replica, since the webhook's Events are notices too.
	caller := hooks.New()
	defaultAlerts, err := o.DefaultAlertList()
	if err != nil {
		return err
	}
	dispatcher := alerts.NewDispatcher(mgr.GetAPIReader(), caller, alerts.DispatcherOptions{
		Defaults: defaultAlerts, DedupeWindow: o.AlertDedupeWindow, Log: ctrl.Log.WithName("notify"),
	})
	if err := mgr.Add(dispatcher); err != nil {
		return err
	}
	if !o.DisableWebhook {
		mgr.GetWebhookServer().Register(webhook.Path, &webhook.Handler{
			ControllerIdentity: o.ControllerIdentity, Defaults: defaults,
			RestartBypass: o.RestartBypass, Recorder: recorder, AllowCrossNamespaceTemplates: o.AllowCrossNamespaceTemplates,
			Notify: dispatcher.Notify,
		})
		// Ready once a TLS handshake with the webhook port succeeds: the certificate is served
		// (self-managed: GetCertificate fails every handshake until the Secret is read).
		if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
			return err
		}
	}
	if !o.DisableReconciler {
		// The builtin checks and inline queries run on the default Prometheus, built like a
		// template's.
		prom, err := backends.New(ctx, prometheus.Backend.Type, metrics.Source{Address: o.PrometheusAddress, Timeout: o.QueryTimeout})
		if err != nil {
			return err
		}
		analyzer := rollout.NewAnalyzer(prom, o.QueryParallelism)
		analyzer.BackendParallelism = o.BackendParallelism
		analyzer.Routers = defaults.Routers
		analyzer.Templates = mgr.GetClient()
		analyzer.AllowCrossNamespaceTemplates = o.AllowCrossNamespaceTemplates
		analyzer.Providers = &rollout.Providers{
			Backends: backends, DefaultAddresses: map[string]string{prometheus.Backend.Type: o.PrometheusAddress},
			Secrets: mgr.GetAPIReader(), Timeout: o.QueryTimeout, AllowControllerCloudIdentity: o.AllowControllerCloudIdentity,
		}
		runner := hooks.NewRunner(ctx, caller, o.HookConcurrency)
		r := &rollout.Reconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Defaults: defaults, Routers: routerReg,
			Analyzer: analyzer, Excluded: o.ExcludedNamespaces, Hooks: runner, Notifier: dispatcher,
		}
		runner.Wake = r.Wake
		if err := r.SetupWithManager(mgr, o.Concurrency); err != nil {
			return fmt.Errorf("set up rollout worker: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("cache", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("cache not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	logger.Info("starting", "webhook", !o.DisableWebhook, "reconciler", !o.DisableReconciler,
		"controllerIdentity", o.ControllerIdentity, "prometheus", redact.URL(o.PrometheusAddress), "certSecret", o.CertSecret,
		"leaderElection", o.LeaderElect && !o.DisableReconciler, "leaseDuration", o.LeaseDuration,
		"watchNamespaces", o.WatchNamespaces,
		"allowCrossNamespaceTemplates", o.AllowCrossNamespaceTemplates, "allowControllerCloudIdentity", o.AllowControllerCloudIdentity,
		"hookConcurrency", o.HookConcurrency, "defaultAlerts", len(defaultAlerts), "alertDedupeWindow", o.AlertDedupeWindow)
	return mgr.Start(ctx)
}

var (
	_ http.Handler                   = (*webhook.Handler)(nil)
	_ rollout.HookRunner             = (*hooks.Runner)(nil)
	_ rollout.Notifier               = (*alerts.Dispatcher)(nil)
	_ manager.Runnable               = (*alerts.Dispatcher)(nil)
	_ manager.LeaderElectionRunnable = (*alerts.Dispatcher)(nil)
)

// cacheOptions scope the informer cache to what Sluice manages, so objects it does not manage
// cost it no memory: opted-in Deployments and Sluice's canary copies of them, and Sluice's own
// Services (`<svc>-stable`, `<svc>-canary`, by their managed-by label). A user's Service and a
// Deployment's ReplicaSets are read from the API server at the few steps that need them
// (rollout.Reconciler: about two reads of each per release).
func cacheOptions(o Options) (cache.Options, error) {
	scope, err := labels.NewRequirement(spec.LabelEnabled, selection.In, []string{spec.ValueEnabled, spec.ValueCanary})
	if err != nil {
		return cache.Options{}, err
	}
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: {Label: labels.NewSelector().Add(*scope)},
			&corev1.Service{}:    {Label: labels.SelectorFromSet(labels.Set{routers.LabelManagedBy: routers.ManagedBy})},
		},
		// Nothing Sluice does reads managedFields; they are often the larger half of an object.
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	// Scoped to namespaces, every informer (Deployments, Services, routing objects,
	// MetricTemplates) lists and watches in those namespaces only, which is all that RBAC
	// granted as Roles there allows.
	if len(o.WatchNamespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.WatchNamespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts, nil
}

// clientOptions: routing objects (HTTPRoutes, VirtualServices …) are read as unstructured
// objects, from the cache like everything else; their informers start on first use. A read of
// ReplicaSets never starts an informer (it would hold every ReplicaSet of the cluster): it goes
// to the API server.
func clientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{
		Unstructured: true,
		DisableFor:   []client.Object{&appsv1.ReplicaSet{}},
	}}
}

func restConfig(path string) (*rest.Config, error) {
	if path == "" {
		return ctrl.GetConfig()
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return c, nil
}
