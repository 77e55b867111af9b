package main

import (
	"flag"
	"strings"
	"testing"
)

func TestOptions(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     string // $POD_NAMESPACE
		wantErr []string
	}{
		"defaults": {},
		"Flagger's Deployment arguments, one dash": {
			args: []string{"-port=8080", "-timeout=1h", "-namespace-regexp=^test", "-log-level=debug", "-zap-encoding=console", "-zap-replace-globals"},
		},
		"gates in a ConfigMap of the pod's namespace": {
			args: []string{"--gate-configmap=gates"}, env: "sluice-system",
		},
		"every mistake at once": {
			args: []string{"-port=0", "-address=localhost", "-timeout=0s", "-namespace-regexp=(", "-allowed-namespaces=ok,Not_OK",
				"-log-level=loud", "-zap-encoding=xml", "-gate-configmap=Gates", "-shutdown-timeout=-1s"},
			wantErr: []string{
				`-port: must be 1..65535, got "0"`,
				`-address: must be an IP address, got "localhost"`,
				`-timeout: must be positive, got 0s`,
				`-shutdown-timeout: must be positive, got -1s`,
				`-namespace-regexp: error parsing regexp`,
				`-allowed-namespaces: "Not_OK"`,
				`-log-level: must be debug, info, warning or error, got "loud"`,
				`-zap-encoding: must be json or console, got "xml"`,
				`-gate-configmap: "Gates"`,
				`-gate-namespace: required with -gate-configmap (or set $POD_NAMESPACE)`,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tc.env)
			var o Options
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			o.Complete()
			err := o.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate passed, want errors")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}
