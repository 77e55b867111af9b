package spec_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// flaggerAnalysisFields are the fields of Flagger's Canary.spec.analysis (v1beta1, Flagger
// 1.36: CanaryAnalysis in pkg/apis/flagger/v1beta1/canary.go).
var flaggerAnalysisFields = []string{
	"interval", "iterations", "mirror", "mirrorWeight", "maxWeight", "stepWeight", "stepWeights",
	"stepWeightPromotion", "threshold", "primaryReadyThreshold", "canaryReadyThreshold", "alerts",
	"metrics", "webhooks", "match", "sessionAffinity",
}

// TestFlaggerAnalysisFields (issue 12, acceptance 3): every field of Flagger's analysis block is
// accepted by sluice.dev/analysis, each one either taken with Flagger's meaning (where it lands
// in the Config is checked) or accepted with a warning that says why it has no effect.
func TestFlaggerAnalysisFields(t *testing.T) {
	gw := map[string]string{spec.AnnRouter: spec.RouterGatewayAPI, spec.AnnService: "web", spec.AnnRoute: "web"}
	tests := map[string]struct {
		block string
		ann   map[string]string
		check func(spec.Config) bool
		warn  string
	}{
		"interval":   {block: "interval: 30s", check: func(c spec.Config) bool { return c.Interval.Duration.String() == "30s" }},
		"iterations": {block: "iterations: 4\n", ann: map[string]string{spec.AnnStrategy: "bluegreen"}, check: func(c spec.Config) bool { return c.Iterations == 4 }},
		"mirror": {block: "mirror: true\nmirrorWeight: 20\niterations: 3", ann: gw, check: func(c spec.Config) bool {
			return c.Strategy == spec.StrategyMirror && c.MirrorPercent == 20
		}},
		"mirrorWeight":        {block: "mirrorWeight: 20", warn: "mirrorWeight: no effect without mirror: true"},
		"maxWeight":           {block: "maxWeight: 30\nstepWeight: 15", check: func(c spec.Config) bool { return slices.Equal(c.Steps, []int{15, 30}) }},
		"stepWeight":          {block: "stepWeight: 25", check: func(c spec.Config) bool { return slices.Equal(c.Steps, []int{25, 50}) }},
		"stepWeights":         {block: "stepWeights: [1, 5, 50]", check: func(c spec.Config) bool { return slices.Equal(c.Steps, []int{1, 5, 50}) }},
		"threshold":           {block: "threshold: 7", check: func(c spec.Config) bool { return c.Threshold == 7 }},
		"stepWeightPromotion": {block: "stepWeightPromotion: 25", ann: gw, check: func(c spec.Config) bool { return c.StepWeightPromotion == 25 }},
		"stepWeightPromotion with the replicas router": {block: "stepWeightPromotion: 25", warn: "stepWeightPromotion: no effect with the replicas router"},
		"primaryReadyThreshold":                        {block: "primaryReadyThreshold: 80", check: func(c spec.Config) bool { return c.PrimaryReadyThreshold == 80 }},
		"canaryReadyThreshold":                         {block: "canaryReadyThreshold: 50", check: func(c spec.Config) bool { return c.CanaryReadyThreshold == 50 }},
		"alerts": {block: "alerts:\n- name: on-call\n  severity: error\n  providerRef: {name: slack}", check: func(c spec.Config) bool {
			return len(c.Alerts) == 1 && c.Alerts[0].ProviderRef.Name == "slack" && c.Alerts[0].Severity == spec.SeverityError
		}},
		"metrics": {block: "metrics:\n- name: errors\n  interval: 1m\n  query: sum(rate(x[1m]))\n  thresholdRange: {max: 1}", check: func(c spec.Config) bool {
			return len(c.Metrics) == 1 && c.Metrics[0].Name == "errors" && *c.Metrics[0].ThresholdRange.Max == 1
		}},
		"metrics with Flagger's deprecated threshold": {block: "metrics:\n- name: request-duration\n  threshold: 300", check: func(c spec.Config) bool {
			m := c.Metrics[0]
			return m.Threshold == nil && m.ThresholdRange != nil && m.ThresholdRange.Min == nil && *m.ThresholdRange.Max == 300
		}},
		"metrics with both thresholds": {block: "metrics:\n- name: request-duration\n  threshold: 300\n  thresholdRange: {max: 500}", warn: "threshold: ignored, the check gives a thresholdRange"},
		"metrics with a template and variables": {block: "metrics:\n- name: custom\n  templateRef: {name: t, namespace: default}\n  templateVariables: {x: abc}\n  thresholdRange: {min: 1}", check: func(c spec.Config) bool {
			return c.Metrics[0].TemplateRef.Name == "t" && c.Metrics[0].TemplateVariables["x"] == "abc"
		}},
		"webhooks": {block: "webhooks:\n- name: load\n  url: http://lt/\n  timeout: 5s\n  muteAlert: true\n  retries: 2\n  disableTLS: true\n  metadata: {cmd: hey}", check: func(c spec.Config) bool {
			h := c.Hooks[0]
			return h.Type == spec.HookRollout && h.MuteAlert && h.Retries == 2 && h.DisableTLS && h.Metadata["cmd"] == "hey"
		}},
		"match": {block: "iterations: 2\nmatch:\n- headers: {x-canary: {exact: insider}}", ann: map[string]string{spec.AnnRouter: spec.RouterGatewayAPI, spec.AnnService: "web", spec.AnnRoute: "web", spec.AnnStrategy: "ab"},
			check: func(c spec.Config) bool {
				return len(c.Matches) == 1 && c.Matches[0].Headers["x-canary"].Exact == "insider"
			}},
		"sessionAffinity": {block: "sessionAffinity: {cookieName: canary, maxAge: 60}", ann: gw, check: func(c spec.Config) bool {
			return c.SessionAffinity != nil && c.SessionAffinity.CookieName == "canary" && c.SessionAffinity.MaxAge == 60
		}},
	}
	covered := map[string]bool{}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ann := map[string]string{spec.AnnAnalysis: tc.block}
			for k, v := range tc.ann {
				ann[k] = v
			}
			c, warns, errs := spec.ParseWarn(ann, catalogtest.Defaults())
			if len(errs) > 0 {
				t.Fatalf("refused: %s", spec.FormatErrors(errs))
			}
			if tc.check != nil && !tc.check(c) {
				t.Errorf("not taken with Flagger's meaning: %+v", c)
			}
			got := strings.Join(warns, "\n")
			if tc.warn == "" && got != "" || !strings.Contains(got, tc.warn) {
				t.Errorf("warnings %q, want %q", got, tc.warn)
			}
		})
		covered[strings.Fields(name)[0]] = true
	}
	for _, f := range flaggerAnalysisFields {
		if !covered[f] {
			t.Errorf("Flagger's analysis field %s has no row", f)
		}
	}
}

func TestReadyCount(t *testing.T) {
	for _, tc := range []struct {
		want      int32
		threshold int
		count     int32
	}{
		{3, 0, 3}, {3, 100, 3}, {4, 50, 2}, {3, 50, 1}, {1, 50, 1}, {10, 99, 9}, {0, 50, 0},
	} {
		if got := spec.ReadyCount(tc.want, tc.threshold); got != tc.count {
			t.Errorf("ReadyCount(%d, %d) = %d, want %d", tc.want, tc.threshold, got, tc.count)
		}
	}
}
