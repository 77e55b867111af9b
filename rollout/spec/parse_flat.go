package spec

import (
	"fmt"
	"strconv"
	"time"

	"sigs.k8s.io/yaml"
)

// flat reads the flat annotations of SPEC §2, which win over the analysis block: how traffic
// reaches the canary, then the schedule, then what is analysed.
func (p *parser) flat(c *draft) {
	p.flatTraffic(c)
	p.flatSchedule(c)
	p.flatAnalysis(c)
}

// flatTraffic reads the strategy, the router and what it routes.
func (p *parser) flatTraffic(c *draft) {
	if v, ok := p.ann[AnnStrategy]; ok {
		switch s := Strategy(v); s {
		case StrategyCanary, StrategyBlueGreen, StrategyAB, StrategyMirror:
			c.Strategy, c.strategyKey = s, AnnStrategy
		default:
			p.invalid(AnnStrategy, v, "must be one of canary, bluegreen, ab, mirror")
		}
	}
	if v, ok := p.ann[AnnRouter]; ok {
		c.Router = v
	}
	c.router, c.routerKnown = c.catalog.Lookup(c.Router)
	if !c.routerKnown {
		p.invalid(AnnRouter, c.Router, c.catalog.unknown())
	}
	c.Service = p.name(AnnService)
	if v, ok := p.ann[AnnRoute]; ok {
		c.RouteKind, c.Route = p.route(v, c.router, c.routerKnown)
	}
	p.int(AnnMirrorPercent, 1, 100, &c.MirrorPercent)
	if v, ok := p.ann[AnnSessionAffinity]; ok {
		c.SessionAffinity, c.affinityKey = &SessionAffinity{CookieName: v}, AnnSessionAffinity
	}
	if v, ok := p.ann[AnnSessionAffinityMaxAge]; ok {
		d := p.duration(AnnSessionAffinityMaxAge, v, time.Second)
		if c.SessionAffinity == nil {
			p.invalid(AnnSessionAffinityMaxAge, v, "needs "+AnnSessionAffinity+" (the cookie's name)")
		} else {
			c.SessionAffinity.MaxAge = int(d / time.Second)
		}
	}
	if v, ok := p.ann[AnnPort]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			if n < 1 || n > 65535 {
				p.invalid(AnnPort, v, "must be a port number 1..65535 or a port name")
			}
		} else if !validName(v) || len(v) > 15 {
			p.invalid(AnnPort, v, "must be a port number 1..65535 or a port name")
		}
		c.Port = v
	}
}

// flatSchedule reads the timing and the steps: interval, progress deadline, threshold, linear
// or explicit weights, iterations. The analysis block's stepWeights are checked here, after the
// flat settings before them, so errors come out in the order of the flat annotations.
func (p *parser) flatSchedule(c *draft) {
	if v, ok := p.ann[AnnInterval]; ok {
		c.Interval.Duration = p.duration(AnnInterval, v, MinInterval)
	}
	if v, ok := p.ann[AnnProgressDeadline]; ok {
		c.ProgressDeadline.Duration = p.duration(AnnProgressDeadline, v, 10*time.Second)
	}
	p.int(AnnThreshold, 1, 1000, &c.Threshold)
	if _, ok := p.ann[AnnStepWeight]; ok {
		c.stepKey = AnnStepWeight
	}
	if _, ok := p.ann[AnnMaxWeight]; ok {
		c.maxKey = AnnMaxWeight
	}
	p.int(AnnStepWeight, 1, 100, &c.stepWeight)
	p.int(AnnMaxWeight, 1, 100, &c.maxWeight)
	p.int(AnnIterations, 1, 10000, &c.Iterations)
	if v, ok := p.ann[AnnStepWeights]; ok {
		c.stepWeights = p.weights(AnnStepWeights, v)
	} else if len(c.stepWeights) > 0 {
		c.stepWeights = p.checkWeights(AnnAnalysis+" stepWeights", fmt.Sprint(c.stepWeights), c.stepWeights)
	}
}

// flatAnalysis reads what the release analyses and how: A/B matches, hooks and alerts (each
// annotation replaces the analysis block's list), the checks, and the break-glass switch.
func (p *parser) flatAnalysis(c *draft) {
	if v, ok := p.ann[AnnMatch]; ok {
		var ms []Match
		if err := yaml.UnmarshalStrict([]byte(v), &ms); err != nil {
			p.invalid(AnnMatch, "", "not a valid YAML list of matches: "+cleanYAMLError(err))
		} else {
			c.Matches, c.matchKey = ms, AnnMatch
		}
	}
	if v, ok := p.ann[AnnWebhooks]; ok {
		hs, errs := ParseHooks(AnnWebhooks, v)
		p.errs = append(p.errs, errs...)
		c.Hooks = hs
	}
	if v, ok := p.ann[AnnAlerts]; ok {
		as, errs := ParseAlerts(AnnAlerts, v)
		p.errs = append(p.errs, errs...)
		c.Alerts = as
	}
	p.metricsAnnotation(c)
	if v, ok := p.ann[AnnSkipAnalysis]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.invalid(AnnSkipAnalysis, v, `must be "true" or "false"`)
		}
		c.SkipAnalysis = b
	}
}
