package spec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// flaggerWebhooks is the example list of Flagger's webhook documentation, pasted unchanged.
const flaggerWebhooks = `
- name: "start gate"
  type: confirm-rollout
  url: http://flagger-loadtester.test/gate/approve
  retries: 5
- name: "helm test"
  type: pre-rollout
  url: http://flagger-helmtester.flagger/
  timeout: 3m
  metadata:
    type: "helmv3"
    cmd: "test podinfo -n test"
- name: "load test"
  type: rollout
  url: http://flagger-loadtester.test/
  timeout: 15s
  metadata:
    cmd: "hey -z 1m -q 5 -c 2 http://podinfo-canary.test:9898/"
- name: "traffic increase gate"
  type: confirm-traffic-increase
  url: http://flagger-loadtester.test/gate/approve
- name: "promotion gate"
  type: confirm-promotion
  url: http://flagger-loadtester.test/gate/approve
- name: "notify"
  type: post-rollout
  url: http://telegram.bot:8080/
  timeout: 5s
  metadata:
    some: "message"
- name: "rollback gate"
  type: rollback
  url: http://flagger-loadtester.test/rollback/check
- name: "send to Slack"
  type: event
  url: http://event-recevier.notifications/slack
  retries: 3
  metadata:
    environment: "test"
    cluster: "flagger-test"
`

func TestParseHooks(t *testing.T) {
	tests := map[string]struct {
		raw  string
		want []spec.Hook
	}{
		"Flagger's documented example pastes unchanged": {
			raw: flaggerWebhooks,
			want: []spec.Hook{
				{Name: "start gate", Type: spec.HookConfirmRollout, URL: "http://flagger-loadtester.test/gate/approve", Retries: 5},
				{Name: "helm test", Type: spec.HookPreRollout, URL: "http://flagger-helmtester.flagger/", Timeout: "3m",
					Metadata: map[string]string{"type": "helmv3", "cmd": "test podinfo -n test"}},
				{Name: "load test", Type: spec.HookRollout, URL: "http://flagger-loadtester.test/", Timeout: "15s",
					Metadata: map[string]string{"cmd": "hey -z 1m -q 5 -c 2 http://podinfo-canary.test:9898/"}},
				{Name: "traffic increase gate", Type: spec.HookConfirmTrafficIncrease, URL: "http://flagger-loadtester.test/gate/approve"},
				{Name: "promotion gate", Type: spec.HookConfirmPromotion, URL: "http://flagger-loadtester.test/gate/approve"},
				{Name: "notify", Type: spec.HookPostRollout, URL: "http://telegram.bot:8080/", Timeout: "5s",
					Metadata: map[string]string{"some": "message"}},
				{Name: "rollback gate", Type: spec.HookRollback, URL: "http://flagger-loadtester.test/rollback/check"},
				{Name: "send to Slack", Type: spec.HookEvent, URL: "http://event-recevier.notifications/slack", Retries: 3,
					Metadata: map[string]string{"environment": "test", "cluster": "flagger-test"}},
			},
		},
		"no type is a rollout hook (Flagger's default)": {
			raw:  "- {name: load, url: 'http://lt.test/'}",
			want: []spec.Hook{{Name: "load", Type: spec.HookRollout, URL: "http://lt.test/"}},
		},
		"https, user info, query, muteAlert, disableTLS, the longest timeout and most retries": {
			raw: "- {name: a, type: confirm-promotion, url: 'https://u:p@gate.test:8443/x?team=a', muteAlert: true, disableTLS: true, timeout: 1h, retries: 10}",
			want: []spec.Hook{{Name: "a", Type: spec.HookConfirmPromotion, URL: "https://u:p@gate.test:8443/x?team=a",
				MuteAlert: true, DisableTLS: true, Timeout: "1h", Retries: 10}},
		},
		"an empty list": {raw: "[]", want: []spec.Hook{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, errs := spec.ParseHooks(spec.AnnWebhooks, tc.raw)
			if len(errs) > 0 {
				t.Fatalf("ParseHooks: %s", spec.FormatErrors(errs))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("hooks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHooksRefuses(t *testing.T) {
	tests := map[string]struct {
		key, raw string
		want     string
	}{
		"not a list": {
			raw:  "name: x",
			want: `sluice.dev/webhooks: not a valid YAML list of webhooks: json: cannot unmarshal object into Go value of type []spec.Hook`,
		},
		"an unknown field (a typo is never ignored)": {
			raw:  "- {name: a, url: 'http://x.test/', timout: 5s}",
			want: `sluice.dev/webhooks: not a valid YAML list of webhooks: json: unknown field "timout"`,
		},
		"unknown type, named by its index": {
			raw: "- {name: a, url: 'http://x.test/'}\n- {name: b, url: 'http://x.test/'}\n- {name: c, type: pre-rollot, url: 'http://x.test/'}",
			want: `sluice.dev/webhooks[2].type: must be one of confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, ` +
				`confirm-promotion, post-rollout, rollback, event, got "pre-rollot"`,
		},
		"no url": {
			raw:  "- {name: a}",
			want: `sluice.dev/webhooks[0].url: required: every webhook needs a url`,
		},
		"a url without a scheme": {
			raw:  "- {name: a, url: 'loadtester.test/'}",
			want: `sluice.dev/webhooks[0].url: must be an http or https URL, got "loadtester.test/"`,
		},
		"another scheme": {
			raw:  "- {name: a, url: 'ftp://loadtester.test/'}",
			want: `sluice.dev/webhooks[0].url: must be an http or https URL, got "ftp://loadtester.test/"`,
		},
		"no host": {
			raw:  "- {name: a, url: 'http:///gate'}",
			want: `sluice.dev/webhooks[0].url: must name a host, e.g. http://loadtester.test/, got "http:///gate"`,
		},
		"not parseable, and its user info is not repeated": {
			raw:  "- {name: a, url: 'http://user:s3cret@lt.test:port/'}",
			want: `sluice.dev/webhooks[0].url: not a URL, got "http://xxxxx@lt.test:port/"`,
		},
		"a bad url's user info is masked": {
			raw:  "- {name: a, url: 'gopher://user:s3cret@lt.test/'}",
			want: `sluice.dev/webhooks[0].url: must be an http or https URL, got "gopher://xxxxx@lt.test/"`,
		},
		"white space around the url": {
			raw:  "- {name: a, url: ' http://lt.test/'}",
			want: `sluice.dev/webhooks[0].url: must not start or end with white space, got " http://lt.test/"`,
		},
		"timeout not a duration": {
			raw:  "- {name: a, url: 'http://lt.test/', timeout: '10'}",
			want: `sluice.dev/webhooks[0].timeout: must be a positive duration such as 10s or 2m, got "10"`,
		},
		"timeout zero": {
			raw:  "- {name: a, url: 'http://lt.test/', timeout: 0s}",
			want: `sluice.dev/webhooks[0].timeout: must be a positive duration such as 10s or 2m, got "0s"`,
		},
		"timeout over an hour": {
			raw:  "- {name: a, url: 'http://lt.test/', timeout: 61m}",
			want: `sluice.dev/webhooks[0].timeout: must be at most 1h, got "61m"`,
		},
		"negative retries": {
			raw:  "- {name: a, url: 'http://lt.test/', retries: -1}",
			want: `sluice.dev/webhooks[0].retries: must be 0..10, got "-1"`,
		},
		"too many retries": {
			raw:  "- {name: a, url: 'http://lt.test/', retries: 11}",
			want: `sluice.dev/webhooks[0].retries: must be 0..10, got "11"`,
		},
		"no name": {
			raw:  "- {url: 'http://lt.test/'}",
			want: `sluice.dev/webhooks[0].name: required: every webhook needs a name`,
		},
		"a duplicate name": {
			raw:  "- {name: gate, url: 'http://lt.test/'}\n- {name: gate, type: rollback, url: 'http://lt.test/'}",
			want: `sluice.dev/webhooks[1].name: the same name as sluice.dev/webhooks[0]: names tell the webhooks apart in events and the release state, got "gate"`,
		},
		"every problem at once, each naming its entry": {
			raw: "- {name: a, type: x, url: 'http://lt.test/'}\n- {name: b, url: '', timeout: soon, retries: 99}",
			want: `sluice.dev/webhooks[0].type: must be one of confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event, got "x"; ` +
				`sluice.dev/webhooks[1].url: required: every webhook needs a url; ` +
				`sluice.dev/webhooks[1].timeout: must be a positive duration such as 10s or 2m, got "soon"; ` +
				`sluice.dev/webhooks[1].retries: must be 0..10, got "99"`,
		},
		"the analysis block's list is named as such": {
			key:  spec.AnnAnalysis + " webhooks",
			raw:  "- {name: a, url: 'http://lt.test/', retries: 12}",
			want: `sluice.dev/analysis webhooks[0].retries: must be 0..10, got "12"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			key := tc.key
			if key == "" {
				key = spec.AnnWebhooks
			}
			got, errs := spec.ParseHooks(key, tc.raw)
			if got != nil {
				t.Errorf("ParseHooks returned hooks with errors: %+v", got)
			}
			if msg := spec.FormatErrors(errs); msg != tc.want {
				t.Errorf("errors\n got %s\nwant %s", msg, tc.want)
			}
			if strings.Contains(spec.FormatErrors(errs), "s3cret") {
				t.Errorf("an error repeats the URL's password: %s", spec.FormatErrors(errs))
			}
		})
	}
}

func TestHookDefaults(t *testing.T) {
	tests := map[string]struct {
		hook        spec.Hook
		wantTimeout time.Duration
		wantKind    spec.HookType
	}{
		"nothing set: 10s, rollout":    {hook: spec.Hook{}, wantTimeout: 10 * time.Second, wantKind: spec.HookRollout},
		"set":                          {hook: spec.Hook{Timeout: "2m", Type: spec.HookEvent}, wantTimeout: 2 * time.Minute, wantKind: spec.HookEvent},
		"unparseable falls back":       {hook: spec.Hook{Timeout: "soon"}, wantTimeout: 10 * time.Second, wantKind: spec.HookRollout},
		"non-positive falls back":      {hook: spec.Hook{Timeout: "-1s"}, wantTimeout: 10 * time.Second, wantKind: spec.HookRollout},
		"surrounding space is ignored": {hook: spec.Hook{Timeout: " 3s "}, wantTimeout: 3 * time.Second, wantKind: spec.HookRollout},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.hook.TimeoutDuration(); got != tc.wantTimeout {
				t.Errorf("TimeoutDuration = %s, want %s", got, tc.wantTimeout)
			}
			if got := tc.hook.HookKind(); got != tc.wantKind {
				t.Errorf("HookKind = %q, want %q", got, tc.wantKind)
			}
		})
	}
}

func TestDefaultHooksLeavesItsInputAlone(t *testing.T) {
	in := []spec.Hook{{Name: "a", URL: "http://x.test/", Metadata: map[string]string{"k": "v"}}}
	out := spec.DefaultHooks(in)
	out[0].Metadata["k"] = "changed"
	if in[0].Type != "" || in[0].Metadata["k"] != "v" {
		t.Errorf("DefaultHooks changed its input: %+v", in[0])
	}
	if out[0].Type != spec.HookRollout {
		t.Errorf("type = %q, want rollout", out[0].Type)
	}
	if spec.DefaultHooks(nil) != nil {
		t.Error("DefaultHooks(nil) is not nil")
	}
}

func TestParseAlerts(t *testing.T) {
	tests := map[string]struct {
		raw  string
		want []spec.Alert
	}{
		"Flagger's documented example": {
			raw: `
- name: "on-call Slack"
  severity: error
  providerRef:
    name: on-call
    namespace: flagger
- name: "qa Discord"
  severity: warn
  providerRef:
    name: qa-discord
- name: "dev MS Teams"
  severity: info
  providerRef:
    name: dev-msteams
`,
			want: []spec.Alert{
				{Name: "on-call Slack", Severity: spec.SeverityError, ProviderRef: spec.AlertProviderRef{Name: "on-call", Namespace: "flagger"}},
				{Name: "qa Discord", Severity: spec.SeverityWarn, ProviderRef: spec.AlertProviderRef{Name: "qa-discord"}},
				{Name: "dev MS Teams", Severity: spec.SeverityInfo, ProviderRef: spec.AlertProviderRef{Name: "dev-msteams"}},
			},
		},
		"no severity (info)": {
			raw:  "- {name: a, providerRef: {name: slack.team-a}}",
			want: []spec.Alert{{Name: "a", ProviderRef: spec.AlertProviderRef{Name: "slack.team-a"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, errs := spec.ParseAlerts(spec.AnnAlerts, tc.raw)
			if len(errs) > 0 {
				t.Fatalf("ParseAlerts: %s", spec.FormatErrors(errs))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("alerts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseAlertsRefuses(t *testing.T) {
	tests := map[string]struct {
		raw  string
		want string
	}{
		"not a list": {
			raw:  "severity: warn",
			want: `sluice.dev/alerts: not a valid YAML list of alerts: json: cannot unmarshal object into Go value of type []spec.Alert`,
		},
		"an unknown field": {
			raw:  "- {name: a, severity: warn, providerRef: {name: p, kind: AlertProvider}}",
			want: `sluice.dev/alerts: not a valid YAML list of alerts: json: unknown field "kind"`,
		},
		"unknown severity, named by its index": {
			raw:  "- {name: a, providerRef: {name: p}}\n- {name: b, severity: critical, providerRef: {name: p}}",
			want: `sluice.dev/alerts[1].severity: must be info, warn or error (empty means info), got "critical"`,
		},
		"severity is case-sensitive": {
			raw:  "- {name: a, severity: Error, providerRef: {name: p}}",
			want: `sluice.dev/alerts[0].severity: must be info, warn or error (empty means info), got "Error"`,
		},
		"no provider": {
			raw:  "- {name: a}",
			want: `sluice.dev/alerts[0].providerRef.name: required: the AlertProvider to post to`,
		},
		"a provider name that is no object name": {
			raw:  "- {name: a, providerRef: {name: On_Call}}",
			want: `sluice.dev/alerts[0].providerRef.name: must name an AlertProvider (a DNS-1123 subdomain), got "On_Call"`,
		},
		"a bad namespace": {
			raw:  "- {name: a, providerRef: {name: p, namespace: Team.A}}",
			want: `sluice.dev/alerts[0].providerRef.namespace: must be a namespace name, got "Team.A"`,
		},
		"no name, and a duplicate": {
			raw: "- {providerRef: {name: p}}\n- {name: x, providerRef: {name: p}}\n- {name: x, providerRef: {name: q}}",
			want: `sluice.dev/alerts[0].name: required: every alert needs a name; ` +
				`sluice.dev/alerts[2].name: the same name as sluice.dev/alerts[1], got "x"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, errs := spec.ParseAlerts(spec.AnnAlerts, tc.raw)
			if got != nil {
				t.Errorf("ParseAlerts returned alerts with errors: %+v", got)
			}
			if msg := spec.FormatErrors(errs); msg != tc.want {
				t.Errorf("errors\n got %s\nwant %s", msg, tc.want)
			}
		})
	}
}

func TestCrossNamespaceAlerts(t *testing.T) {
	as := []spec.Alert{
		{Name: "own", ProviderRef: spec.AlertProviderRef{Name: "p"}},
		{Name: "same", ProviderRef: spec.AlertProviderRef{Name: "p", Namespace: "app"}},
		{Name: "other", ProviderRef: spec.AlertProviderRef{Name: "on-call", Namespace: "ops"}},
	}
	want := `sluice.dev/alerts[2].providerRef.namespace: AlertProvider ops/on-call is in another namespace than the Deployment (app); the controller allows that only with --allow-cross-namespace-templates`
	if got := spec.FormatErrors(spec.CrossNamespaceAlerts(spec.AnnAlerts, as, "app")); got != want {
		t.Errorf("errors\n got %s\nwant %s", got, want)
	}
	if errs := spec.CrossNamespaceAlerts(spec.AnnAlerts, as, "ops"); len(errs) != 1 || !strings.Contains(errs[0].Field, "[1]") {
		t.Errorf("from namespace ops, want only alerts[1] refused, got %s", spec.FormatErrors(errs))
	}
}

func TestValidateAlertProviderSpec(t *testing.T) {
	tests := map[string]struct {
		spec spec.AlertProviderSpec
		want string
	}{
		"inline address":            {spec: spec.AlertProviderSpec{Type: "slack", Address: "https://hooks.slack.test/services/x", Channel: "ops", Username: "sluice"}},
		"address from a Secret":     {spec: spec.AlertProviderSpec{Type: "msteams", SecretRef: &spec.SecretRef{Name: "teams-url"}}},
		"every type is known":       {spec: spec.AlertProviderSpec{Type: "generic", Address: "http://receiver.test:8080/alerts"}},
		"gchat, discord and rocket": {spec: spec.AlertProviderSpec{Type: "gchat", SecretRef: &spec.SecretRef{Name: "s"}}},
		"an unknown type": {
			spec: spec.AlertProviderSpec{Type: "pagerduty", Address: "https://x.test/"},
			want: `spec.type: must be one of slack, msteams, discord, rocket, gchat, generic, got "pagerduty"`,
		},
		"neither address nor secret": {
			spec: spec.AlertProviderSpec{Type: "slack"},
			want: `spec.address: required: give address, or secretRef naming a Secret with the key address`,
		},
		"both": {
			spec: spec.AlertProviderSpec{Type: "slack", Address: "https://x.test/", SecretRef: &spec.SecretRef{Name: "s"}},
			want: `spec.address: give address or secretRef, not both, got "https://x.test/"`,
		},
		"not http": {
			spec: spec.AlertProviderSpec{Type: "discord", Address: "discord.test/api/webhooks/1/x"},
			want: `spec.address: must be an http or https URL, got "discord.test/api/webhooks/1/x"`,
		},
		"user info inline": {
			spec: spec.AlertProviderSpec{Type: "generic", Address: "https://bot:s3cret@receiver.test/"},
			want: `spec.address: must not carry user info; put credentials in the Secret named by secretRef, got "https://xxxxx@receiver.test/"`,
		},
		"a bad Secret name": {
			spec: spec.AlertProviderSpec{Type: "rocket", SecretRef: &spec.SecretRef{Name: "Rocket URL"}},
			want: `spec.secretRef.name: must name a Secret, got "Rocket URL"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := spec.FormatErrors(spec.ValidateAlertProviderSpec(tc.spec)); got != tc.want {
				t.Errorf("errors\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAlertProviderDeepCopy(t *testing.T) {
	orig := &spec.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"team": "a"}},
		Spec:       spec.AlertProviderSpec{Type: "slack", SecretRef: &spec.SecretRef{Name: "s"}},
	}
	cp := orig.DeepCopy()
	cp.Labels["team"] = "b"
	cp.Spec.SecretRef.Name = "other"
	if orig.Labels["team"] != "a" || orig.Spec.SecretRef.Name != "s" {
		t.Errorf("DeepCopy shares memory with the original: %+v", orig)
	}
	list := &spec.AlertProviderList{Items: []spec.AlertProvider{*orig}}
	lcp := list.DeepCopyObject().(*spec.AlertProviderList)
	lcp.Items[0].Spec.SecretRef.Name = "other"
	if list.Items[0].Spec.SecretRef.Name != "s" {
		t.Error("list DeepCopyObject shares memory with the original")
	}
	if (*spec.AlertProvider)(nil).DeepCopy() != nil {
		t.Error("DeepCopy(nil) is not nil")
	}
}
