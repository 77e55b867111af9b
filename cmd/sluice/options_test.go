package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func parse(t *testing.T, args ...string) Options {
	t.Helper()
	var o Options
	fs := pflag.NewFlagSet("sluice", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
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
