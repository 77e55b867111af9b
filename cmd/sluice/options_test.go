package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func parse(t *testing.T, args ...string) Options {
	t.Helper()
	t.Setenv("POD_NAMESPACE", "sluice-system")
	var o Options
	fs := pflag.NewFlagSet("sluice", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	o.Complete()
	return o
}

func TestDefaultsAreValidAndSafe(t *testing.T) {
	o := parse(t)
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if o.AllowCrossNamespaceTemplates || o.AllowControllerCloudIdentity {
		t.Errorf("cross-namespace templates or the controller's cloud identity are allowed by default: %+v", o)
	}
	o = parse(t, "--allow-cross-namespace-templates", "--allow-controller-cloud-identity")
	if !o.AllowCrossNamespaceTemplates || !o.AllowControllerCloudIdentity {
		t.Errorf("the allow flags did not set the options: %+v", o)
	}
}

// A bad --prometheus-address stops the controller at startup, and the message never repeats
// credentials written into it.
func TestPrometheusAddressValidated(t *testing.T) {
	for addr, want := range map[string]string{
		"http://admin:hunter2@prometheus:9090": `--prometheus-address: "http://xxxxx@prometheus:9090": must not carry user info`,
		"https://hunter2@prometheus:9090/x":    `"https://xxxxx@prometheus:9090/x": must not carry user info`,
		"prometheus:9090":                      "scheme must be http or https",
		"http://prometheus:9090/?token=x":      "must not carry a query",
		"":                                     "scheme must be http or https",
	} {
		o := parse(t, "--prometheus-address="+addr)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--prometheus-address=%s: err = %v, want it to contain %q", addr, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("--prometheus-address=%s: err = %v repeats the password", addr, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	o := parse(t)
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if o.Namespace != "sluice-system" || o.LeaderElectionNS != "sluice-system" {
		t.Errorf("namespace %q, lease namespace %q: want $POD_NAMESPACE for both", o.Namespace, o.LeaderElectionNS)
	}
	if o.CertValidity != 365*24*time.Hour || o.LeaseDuration != 15*time.Second || o.RenewDeadline != 10*time.Second || o.RetryPeriod != 2*time.Second {
		t.Errorf("validity %s, lease %s/%s/%s", o.CertValidity, o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
}

func TestCertHosts(t *testing.T) {
	o := parse(t, "--cert-secret=sluice-webhook-cert", "--webhook-service=sluice-webhook", "--cert-extra-sans=127.0.0.1,sluice.example")
	want := []string{
		"sluice-webhook", "sluice-webhook.sluice-system", "sluice-webhook.sluice-system.svc",
		"sluice-webhook.sluice-system.svc.cluster.local", "127.0.0.1", "sluice.example",
	}
	if diff := cmp.Diff(want, o.CertHosts()); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string // "" = valid
	}{
		"self-managed":                  {args: []string{"--cert-secret=s"}},
		"short validity":                {args: []string{"--cert-secret=s", "--cert-validity=2m", "--cert-refresh-interval=2s"}},
		"validity too short":            {args: []string{"--cert-secret=s", "--cert-validity=30s", "--cert-refresh-interval=1s"}, want: "--cert-validity must be at least 1m"},
		"refresh too slow":              {args: []string{"--cert-secret=s", "--cert-validity=3m", "--cert-refresh-interval=2m"}, want: "--cert-refresh-interval"},
		"no namespace":                  {args: []string{"--cert-secret=s", "--namespace="}, want: "--cert-secret needs --namespace"},
		"no host":                       {args: []string{"--cert-secret=s", "--webhook-service="}, want: "must name a host"},
		"bad SAN":                       {args: []string{"--cert-secret=s", "--cert-extra-sans=not a host"}, want: "--cert-extra-sans"},
		"no configuration":              {args: []string{"--cert-secret=s", "--webhook-configuration="}, want: "--webhook-configuration"},
		"files mode needs none":         {args: []string{"--namespace=", "--webhook-service="}},
		"short lease":                   {args: []string{"--leader-election-lease-duration=6s", "--leader-election-renew-deadline=4s", "--leader-election-retry-period=1s"}},
		"renew not below lease":         {args: []string{"--leader-election-lease-duration=10s", "--leader-election-renew-deadline=10s"}, want: "lease-duration > --leader-election-renew-deadline"},
		"retry too long":                {args: []string{"--leader-election-retry-period=9s"}, want: "1.2 × --leader-election-retry-period"},
		"no leader election, any lease": {args: []string{"--leader-elect=false", "--leader-election-retry-period=0s"}},
		"no query per backend":          {args: []string{"--query-parallelism-per-backend=0"}, want: "--query-parallelism-per-backend"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := parse(t, tc.args...)
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// Hooks and alerts: the defaults, and --default-alerts parsed like sluice.dev/alerts with each
// provider's namespace required.
func TestHookAndAlertFlags(t *testing.T) {
	o := parse(t)
	if o.HookConcurrency != 64 || o.AlertDedupeWindow != time.Hour || o.DefaultAlerts != "" {
		t.Errorf("defaults: --hook-concurrency=%d --alert-dedupe-window=%s --default-alerts=%q", o.HookConcurrency, o.AlertDedupeWindow, o.DefaultAlerts)
	}
	o = parse(t, "--default-alerts=[{name: ops, severity: error, providerRef: {name: ops-slack, namespace: sluice-system}}]")
	if err := o.Validate(); err != nil {
		t.Fatalf("valid --default-alerts: %v", err)
	}
	as, err := o.DefaultAlertList()
	if err != nil || len(as) != 1 || as[0].ProviderRef.Namespace != "sluice-system" || as[0].Severity != "error" {
		t.Errorf("parsed %+v, %v", as, err)
	}
	o = parse(t, `--default-alerts=[{"name":"ops","providerRef":{"name":"p","namespace":"x"}}]`)
	if as, err := o.DefaultAlertList(); err != nil || len(as) != 1 {
		t.Errorf("JSON --default-alerts: %+v, %v", as, err)
	}
	for args, want := range map[string]string{
		"--default-alerts=[{name: ops, providerRef: {name: ops-slack}}]":                         "--default-alerts[0].providerRef.namespace: required: a default alert names its AlertProvider's namespace",
		"--default-alerts=[{name: ops, severity: loud, providerRef: {name: p, namespace: x}}]":   `--default-alerts[0].severity: must be info, warn or error`,
		"--default-alerts=[{name: ops, providerRef: {name: p, namespace: x}, channel: general}]": "--default-alerts: not a valid YAML list of alerts",
		"--hook-concurrency=0":     "--hook-concurrency must be at least 1, got 0",
		"--alert-dedupe-window=0s": "--alert-dedupe-window must be positive",
	} {
		o := parse(t, args)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to contain %q", args, err, want)
		}
	}
}
