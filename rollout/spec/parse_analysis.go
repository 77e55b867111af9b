package spec

import "sigs.k8s.io/yaml"

// analysisBlock is the Flagger-shaped `sluice.dev/analysis` annotation.
type analysisBlock struct {
	Interval    string   `json:"interval,omitempty"`
	Threshold   *int     `json:"threshold,omitempty"`
	MaxWeight   *int     `json:"maxWeight,omitempty"`
	StepWeight  *int     `json:"stepWeight,omitempty"`
	StepWeights []int    `json:"stepWeights,omitempty"`
	Iterations  *int     `json:"iterations,omitempty"`
	Match       []Match  `json:"match,omitempty"`
	Metrics     []Metric `json:"metrics,omitempty"`
	Webhooks    []Hook   `json:"webhooks,omitempty"`
	Alerts      []Alert  `json:"alerts,omitempty"`
	Mirror      *bool    `json:"mirror,omitempty"`
	// MirrorWeight is the percent of requests mirrored (Flagger's field).
	MirrorWeight *int `json:"mirrorWeight,omitempty"`
	// SessionAffinity is Flagger's field: cookieName and maxAge in seconds.
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
	// StepWeightPromotion moves the traffic back from the canary to the rolled stable pods in
	// steps of this many percent, one per interval, at the end of an isolated promotion.
	StepWeightPromotion *int `json:"stepWeightPromotion,omitempty"`
	// PrimaryReadyThreshold and CanaryReadyThreshold are the percent of a Deployment's pods that
	// must be available for it to count as ready (Flagger's; default 100).
	PrimaryReadyThreshold *int `json:"primaryReadyThreshold,omitempty"`
	CanaryReadyThreshold  *int `json:"canaryReadyThreshold,omitempty"`
}

// analysisBlock reads `sluice.dev/analysis`, so a Flagger user can paste their
// Canary.spec.analysis; its numbers obey the bounds of their flat annotations, which are read
// after it and win. Its stepWeights are checked where the flat ones are (flatSchedule).
func (p *parser) analysisBlock(c *draft) {
	raw, ok := p.ann[AnnAnalysis]
	if !ok {
		return
	}
	var block analysisBlock
	if err := yaml.UnmarshalStrict([]byte(raw), &block); err != nil {
		p.invalid(AnnAnalysis, "", "not a valid analysis block: "+cleanYAMLError(err))
		return
	}
	if block.Interval != "" {
		c.Interval.Duration = p.duration(AnnAnalysis+" interval", block.Interval, MinInterval)
	}
	if block.StepWeight != nil {
		c.stepKey = AnnAnalysis + " stepWeight"
	}
	if block.MaxWeight != nil {
		c.maxKey = AnnAnalysis + " maxWeight"
	}
	p.bounded(AnnAnalysis+" threshold", block.Threshold, 1, 1000, &c.Threshold)
	p.bounded(c.stepKey, block.StepWeight, 1, 100, &c.stepWeight)
	p.bounded(c.maxKey, block.MaxWeight, 1, 100, &c.maxWeight)
	p.bounded(AnnAnalysis+" iterations", block.Iterations, 1, 10000, &c.Iterations)
	c.stepWeights = block.StepWeights
	c.Metrics = block.Metrics
	if len(block.Metrics) > 0 {
		c.metricsKey = AnnAnalysis + " metrics"
	}
	if len(block.Match) > 0 {
		c.Matches, c.matchKey = block.Match, AnnAnalysis+" match"
	}
	if len(block.Webhooks) > 0 {
		hs := DefaultHooks(block.Webhooks)
		p.errs = append(p.errs, ValidateHooks(AnnAnalysis+" webhooks", hs)...)
		c.Hooks = hs
	}
	if len(block.Alerts) > 0 {
		p.errs = append(p.errs, ValidateAlerts(AnnAnalysis+" alerts", block.Alerts)...)
		c.Alerts = block.Alerts
	}
	if block.Mirror != nil && *block.Mirror {
		c.Strategy, c.strategyKey = StrategyMirror, AnnAnalysis+" mirror"
	}
	if mirror := block.Mirror != nil && *block.Mirror; mirror || block.MirrorWeight == nil {
		p.bounded(AnnAnalysis+" mirrorWeight", block.MirrorWeight, 1, 100, &c.MirrorPercent)
	}
	if block.SessionAffinity != nil {
		c.SessionAffinity, c.affinityKey = block.SessionAffinity, AnnAnalysis+" sessionAffinity"
	}
	p.bounded(AnnAnalysis+" stepWeightPromotion", block.StepWeightPromotion, 1, 100, &c.StepWeightPromotion)
	p.bounded(AnnAnalysis+" primaryReadyThreshold", block.PrimaryReadyThreshold, 1, 100, &c.PrimaryReadyThreshold)
	p.bounded(AnnAnalysis+" canaryReadyThreshold", block.CanaryReadyThreshold, 1, 100, &c.CanaryReadyThreshold)
	if block.MirrorWeight != nil && (block.Mirror == nil || !*block.Mirror) {
		p.noEffect(AnnAnalysis + " mirrorWeight: no effect without mirror: true (as in Flagger)")
	}
}
