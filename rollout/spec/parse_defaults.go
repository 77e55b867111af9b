package spec

import (
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// defaults is the configuration of a Deployment that sets nothing (SPEC §2), every setting
// keyed to its flat annotation.
func defaults(d Defaults) draft {
	router := d.Router
	if router == "" {
		router = RouterReplicas
	}
	return draft{
		Config: Config{
			Strategy:         StrategyCanary,
			Router:           router,
			Interval:         metav1.Duration{Duration: time.Minute},
			Threshold:        5,
			Iterations:       10,
			ProgressDeadline: metav1.Duration{Duration: 10 * time.Minute},
		},
		catalog:    d.Routers,
		stepWeight: 10, maxWeight: 50,
		stepKey: AnnStepWeight, maxKey: AnnMaxWeight, metricsKey: AnnMetrics, matchKey: AnnMatch,
		strategyKey: AnnStrategy, affinityKey: AnnSessionAffinity,
	}
}

// finish merges what the sources gave into the Config and checks what needs all of it: the
// steps (explicit weights win over step/max), the default checks, the checks, matches and
// session affinity on their own, then what the router can do with them.
func (p *parser) finish(c *draft) {
	switch {
	case len(c.stepWeights) > 0:
		c.Steps = c.stepWeights
	case c.stepWeight > c.maxWeight:
		p.invalid(c.stepKey, strconv.Itoa(c.stepWeight), fmt.Sprintf("must not exceed %s (%d)", c.maxKey, c.maxWeight))
	default:
		for w := c.stepWeight; w <= c.maxWeight; w += c.stepWeight {
			c.Steps = append(c.Steps, w)
		}
		if c.Steps[len(c.Steps)-1] != c.maxWeight {
			c.Steps = append(c.Steps, c.maxWeight)
		}
	}
	if len(c.Metrics) == 0 {
		c.Metrics = DefaultMetrics()
	}
	p.flaggerThresholds(c.metricsKey, c.Metrics)
	p.metrics(c.metricsKey, c.Metrics)
	p.matches(c.matchKey, c.Matches)
	p.sessionAffinity(c.affinityKey, c.SessionAffinity)
	if c.routerKnown {
		p.capabilities(&c.Config, c.router, c.strategyKey, c.matchKey)
		p.stickyCapability(&c.Config, c.router, c.catalog, c.affinityKey)
	}
	if c.Strategy == StrategyMirror && c.MirrorPercent == 0 {
		c.MirrorPercent = 100
	}
	if c.StepWeightPromotion > 0 && !c.Isolated() {
		p.noEffect(AnnAnalysis + " stepWeightPromotion: no effect with the replicas router and the canary strategy: promotion is the Deployment's own rolling update (Flagger ignores it for its kubernetes provider too)")
	}
}

// flaggerThresholds reads Flagger's deprecated `threshold` of a check (its maximum) as
// thresholdRange.max, unless the check gives a thresholdRange, which wins as in Flagger.
func (p *parser) flaggerThresholds(key string, ms []Metric) {
	for i := range ms {
		m := &ms[i]
		if m.Threshold == nil {
			continue
		}
		if m.ThresholdRange == nil {
			m.ThresholdRange = &Range{Max: m.Threshold}
		} else {
			p.noEffect(fmt.Sprintf("%s[%s].threshold: ignored, the check gives a thresholdRange (Flagger's rule)", key, m.Name))
		}
		m.Threshold = nil
	}
}
