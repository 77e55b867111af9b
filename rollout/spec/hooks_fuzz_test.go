package spec_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// FuzzParseHooks feeds arbitrary YAML to ParseHooks: it never panics, it is deterministic,
// every error names the annotation, and what it accepts is valid, defaulted, and parses back to
// itself once written out (the plan frozen into the state reads back the same).
func FuzzParseHooks(f *testing.F) {
	f.Add(flaggerWebhooks)
	f.Add("- {name: a, url: 'http://x.test/'}")
	f.Add("- {name: a, url: 'https://u:p@x.test:1/p?q=1#f', timeout: 1h, retries: 10, muteAlert: true, disableTLS: true}")
	f.Add("- {name: a, type: x, url: 'ftp://x', timeout: -1s, retries: -3}\n- {name: a}")
	f.Add("- {name: ' ', url: 'http://[::1]:80/'}")
	f.Add("[]")
	f.Add("{")
	f.Fuzz(func(t *testing.T, raw string) {
		hs, errs := spec.ParseHooks(spec.AnnWebhooks, raw)
		hs2, errs2 := spec.ParseHooks(spec.AnnWebhooks, raw)
		if diff := cmp.Diff(hs, hs2); diff != "" {
			t.Fatalf("ParseHooks is not deterministic (-first +second):\n%s", diff)
		}
		if a, b := spec.FormatErrors(errs), spec.FormatErrors(errs2); a != b {
			t.Fatalf("ParseHooks errors are not deterministic:\n first %s\nsecond %s", a, b)
		}
		if len(errs) > 0 {
			if hs != nil {
				t.Fatalf("hooks returned with errors: %+v", hs)
			}
			for _, e := range errs {
				if !strings.HasPrefix(e.Field, spec.AnnWebhooks) {
					t.Errorf("error %q does not name %s", e.Error(), spec.AnnWebhooks)
				}
			}
			return
		}
		for i, h := range hs {
			if h.Type == "" {
				t.Errorf("hook %d has no type after defaulting", i)
			}
			if d := h.TimeoutDuration(); d <= 0 || d > spec.MaxHookTimeout {
				t.Errorf("hook %d: timeout %s out of bounds", i, d)
			}
		}
		if errs := spec.ValidateHooks(spec.AnnWebhooks, hs); len(errs) > 0 {
			t.Fatalf("accepted hooks do not validate: %s", spec.FormatErrors(errs))
		}
		out, err := yaml.Marshal(hs)
		if err != nil {
			t.Fatalf("marshal accepted hooks: %v", err)
		}
		back, errs := spec.ParseHooks(spec.AnnWebhooks, string(out))
		if len(errs) > 0 {
			t.Fatalf("accepted hooks written out do not parse back: %s\n%s", spec.FormatErrors(errs), out)
		}
		if len(hs) == 0 {
			return // nil and empty lists both mean "none"
		}
		if diff := cmp.Diff(hs, back); diff != "" {
			t.Fatalf("hooks do not survive a round trip (-accepted +reparsed):\n%s", diff)
		}
	})
}

// FuzzParseAlerts is FuzzParseHooks for `sluice.dev/alerts`.
func FuzzParseAlerts(f *testing.F) {
	f.Add("- {name: a, severity: warn, providerRef: {name: p, namespace: ops}}")
	f.Add("- {name: a, providerRef: {name: p.q}}\n- {name: b, severity: error, providerRef: {name: r}}")
	f.Add("- {name: a, severity: x, providerRef: {name: P}}\n- {name: a}")
	f.Add("[]")
	f.Add("- 1")
	f.Fuzz(func(t *testing.T, raw string) {
		as, errs := spec.ParseAlerts(spec.AnnAlerts, raw)
		as2, errs2 := spec.ParseAlerts(spec.AnnAlerts, raw)
		if diff := cmp.Diff(as, as2); diff != "" {
			t.Fatalf("ParseAlerts is not deterministic (-first +second):\n%s", diff)
		}
		if a, b := spec.FormatErrors(errs), spec.FormatErrors(errs2); a != b {
			t.Fatalf("ParseAlerts errors are not deterministic:\n first %s\nsecond %s", a, b)
		}
		if len(errs) > 0 {
			if as != nil {
				t.Fatalf("alerts returned with errors: %+v", as)
			}
			for _, e := range errs {
				if !strings.HasPrefix(e.Field, spec.AnnAlerts) {
					t.Errorf("error %q does not name %s", e.Error(), spec.AnnAlerts)
				}
			}
			return
		}
		for i, a := range as {
			switch a.Severity {
			case "", spec.SeverityInfo, spec.SeverityWarn, spec.SeverityError:
			default:
				t.Errorf("alert %d: severity %q accepted", i, a.Severity)
			}
		}
		out, err := yaml.Marshal(as)
		if err != nil {
			t.Fatalf("marshal accepted alerts: %v", err)
		}
		back, errs := spec.ParseAlerts(spec.AnnAlerts, string(out))
		if len(errs) > 0 {
			t.Fatalf("accepted alerts written out do not parse back: %s\n%s", spec.FormatErrors(errs), out)
		}
		if len(as) > 0 {
			if diff := cmp.Diff(as, back); diff != "" {
				t.Fatalf("alerts do not survive a round trip (-accepted +reparsed):\n%s", diff)
			}
		}
	})
}
