package alerts_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-dev/sluice/providers/alerts"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Which Events alert, and how loudly.
func TestSeverity(t *testing.T) {
	warning := func(r spec.Reason) spec.Event { return spec.WarningEvent(r, "m") }
	normal := func(r spec.Reason) spec.Event { return spec.NormalEvent(r, "m") }
	for name, tc := range map[string]struct {
		e      spec.Event
		want   spec.AlertSeverity
		alerts bool
	}{
		"a failed run warns":                     {e: warning(spec.ReasonCheckFailed), want: spec.SeverityWarn, alerts: true},
		"no data warns":                          {e: warning(spec.ReasonInconclusive), want: spec.SeverityWarn, alerts: true},
		"a closed gate warns":                    {e: warning(spec.ReasonWaiting), want: spec.SeverityWarn, alerts: true},
		"a closed gate with muteAlert is silent": {e: spec.Event{Type: corev1.EventTypeWarning, Reason: spec.ReasonWaiting, MuteAlert: true}},
		"rolling back is an error":               {e: warning(spec.ReasonRollingBack), want: spec.SeverityError, alerts: true},
		"rolled back is an error":                {e: warning(spec.ReasonRolledBack), want: spec.SeverityError, alerts: true},
		"rolled back after a revert is info":     {e: normal(spec.ReasonRolledBack), want: spec.SeverityInfo, alerts: true},
		"a failed promotion is an error":         {e: warning(spec.ReasonPromotionFailed), want: spec.SeverityError, alerts: true},
		"a failed hook is an error":              {e: warning(spec.ReasonHookFailed), want: spec.SeverityError, alerts: true},
		"a rollback hook's request is an error":  {e: warning(spec.ReasonRollbackRequested), want: spec.SeverityError, alerts: true},
		"an unanalysed template is an error":     {e: warning(spec.ReasonUnanalysed), want: spec.SeverityError, alerts: true},
		"a release without a plan is an error":   {e: warning(spec.ReasonInvalidState), want: spec.SeverityError, alerts: true},
		"routing that cannot be set warns":       {e: warning(spec.ReasonRoutingFailed), want: spec.SeverityWarn, alerts: true},
		"a retry that cannot start warns":        {e: warning(spec.ReasonInvalidConfig), want: spec.SeverityWarn, alerts: true},
		"a Deployment never released warns":      {e: warning(spec.ReasonNotGuarded), want: spec.SeverityWarn, alerts: true},
		"skip-analysis warns":                    {e: warning(spec.ReasonBypassed), want: spec.SeverityWarn, alerts: true},
		"an opt-out releasing unanalysed warns":  {e: warning(spec.ReasonOptedOut), want: spec.SeverityWarn, alerts: true},
		"a plain opt-out is silent":              {e: normal(spec.ReasonOptedOut)},
		"promoted is info":                       {e: normal(spec.ReasonPromoted), want: spec.SeverityInfo, alerts: true},
		"a step of a healthy release is silent":  {e: normal(spec.ReasonWeightAdvanced)},
		"promoting is silent (Promoted follows)": {e: normal(spec.ReasonPromoting)},
		"an opened gate is silent":               {e: normal(spec.ReasonGateOpened)},
		"a stale control is silent":              {e: warning(spec.ReasonStaleControl)},
	} {
		t.Run(name, func(t *testing.T) {
			got, alerts := alerts.Severity(tc.e)
			if got != tc.want || alerts != tc.alerts {
				t.Errorf("Severity(%s %s) = %q, %v; want %q, %v", tc.e.Type, tc.e.Reason, got, alerts, tc.want, tc.alerts)
			}
		})
	}
}

// quiet are the Warning reasons that alert nobody, and why.
var quiet = map[string]string{
	"ReasonStaleControl":     "a control naming another revision was cleared: the writer's own leftover, nothing for the team to act on",
	"ReasonControlDiscarded": "the webhook dropped a leftover control: same",
}

// Every reason emitted as a Warning is decided: it alerts, or it is in quiet with a reason. A
// new Warning reason fails here until it is given a severity or a place in quiet.
func TestEveryWarningReasonIsDecided(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", "rollout", "spec", "reasons.go"), nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	doc := regexp.MustCompile(`^(Reason\w+) \(([^)]*)\)`)
	values := map[string]spec.Reason{}
	n := 0
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				continue
			}
			name := vs.Names[0].Name
			lit := vs.Values[0].(*ast.BasicLit).Value
			values[name] = spec.Reason(strings.Trim(lit, `"`))
			m := doc.FindStringSubmatch(vs.Doc.Text())
			if m == nil {
				t.Errorf("%s: no (Normal|Warning) in its doc", name)
				continue
			}
			if !strings.Contains(m[2], "Warning") {
				continue
			}
			n++
			_, alerts := alerts.Severity(spec.WarningEvent(values[name], "m"))
			_, isQuiet := quiet[name]
			switch {
			case alerts && isQuiet:
				t.Errorf("%s alerts but is listed in quiet", name)
			case !alerts && !isQuiet:
				t.Errorf("%s (Warning) alerts nobody: give it a severity in alerts.Severity or a reason in quiet", name)
			}
		}
	}
	if n < 10 {
		t.Fatalf("found %d Warning reasons in reasons.go; the parser missed them", n)
	}
	for name := range quiet {
		if _, ok := values[name]; !ok {
			t.Errorf("quiet lists %s, which reasons.go does not declare", name)
		}
	}
}

// An alert names the release and its first failing check (not a dry run) with the reading.
func TestNewMessage(t *testing.T) {
	v := func(f float64) *float64 { return &f }
	n := spec.Notice{Namespace: "shop", Name: "web", Revision: "5d8c7f9b4a", Image: "ghcr.io/acme/web:v2",
		Phase: spec.PhaseProgressing, Weight: 20}
	for name, tc := range map[string]struct {
		checks       []spec.CheckResult
		check, value string
	}{
		"no checks": {},
		"all pass":  {checks: []spec.CheckResult{{Name: "a", Value: v(100), Verdict: spec.VerdictPass, Reason: "100 within min 99"}}},
		"the first failing, with its reason (the reading and the range)": {
			checks: []spec.CheckResult{
				{Name: "a", Value: v(100), Verdict: spec.VerdictPass},
				{Name: "b", Value: v(87.5), Verdict: spec.VerdictFail, Reason: "87.5 outside min 99"},
				{Name: "c", Value: v(900), Verdict: spec.VerdictFail, Reason: "900 outside max 500"},
			},
			check: "b", value: "87.5 outside min 99"},
		"a dry-run failure is never named": {
			checks: []spec.CheckResult{
				{Name: "shadow", Value: v(1), Verdict: spec.VerdictAbort, DryRun: true, Reason: "1 outside abort range"},
				{Name: "p99", Value: v(900), Verdict: spec.VerdictFail},
			},
			check: "p99", value: "900"},
		"an error names why": {
			checks: []spec.CheckResult{{Name: "q", Verdict: spec.VerdictError, Reason: "HTTP 500 from prometheus"}},
			check:  "q", value: "HTTP 500 from prometheus"},
		"a failure wins over an earlier check without data": {
			checks: []spec.CheckResult{
				{Name: "nodata", Verdict: spec.VerdictInconclusive, Reason: "no data"},
				{Name: "bad", Value: v(3), Verdict: spec.VerdictFail, Reason: "3 outside min 99"},
			},
			check: "bad", value: "3 outside min 99"},
		"without a failure, the check without data": {
			checks: []spec.CheckResult{{Name: "nodata", Verdict: spec.VerdictInconclusive, Reason: "query returned no data"}},
			check:  "nodata", value: "query returned no data"},
	} {
		t.Run(name, func(t *testing.T) {
			n := n
			n.Checks = tc.checks
			got := alerts.NewMessage(n, spec.WarningEvent(spec.ReasonCheckFailed, "run failed at 20%"), spec.SeverityWarn)
			want := alerts.Message{Text: "run failed at 20%", Deployment: "web", Namespace: "shop", Revision: "5d8c7f9b4a",
				Image: "ghcr.io/acme/web:v2", Phase: "Progressing", Weight: 20, Check: tc.check, Value: tc.value, Severity: spec.SeverityWarn}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}
