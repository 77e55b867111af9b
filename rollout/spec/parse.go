package spec

import "k8s.io/apimachinery/pkg/util/validation/field"

// Parse reads and validates the configuration annotations. Every problem is reported, each
// naming its annotation; a Config is returned only when there is none.
//
// The sources are read in a fixed order, which is also the order of the errors: unknown
// sluice.dev/ keys (unknown.go), the defaults (parse_defaults.go), the Flagger-shaped
// `sluice.dev/analysis` block (parse_analysis.go), the flat annotations, which win where both
// are set (parse_flat.go; the `sluice.dev/metrics` list in parse_metrics.go), and last what
// needs them all: the steps, the default checks, every check, match and cookie on its own,
// and what the router can do (finish, parse_defaults.go; routing.go).
func Parse(ann map[string]string, d Defaults) (Config, field.ErrorList) {
	c, _, errs := ParseWarn(ann, d)
	return c, errs
}

// ParseWarn is Parse that also says what the configuration asks for that has no effect (a
// Flagger field Sluice's design makes meaningless here): each warning names the field and why,
// for an admission warning. There are warnings only when there are no errors.
func ParseWarn(ann map[string]string, d Defaults) (Config, []string, field.ErrorList) {
	p := parser{ann: ann, errs: unknownKeys(ann)}
	c := defaults(d)
	p.analysisBlock(&c)
	p.flat(&c)
	p.finish(&c)
	if len(p.errs) > 0 {
		return Config{}, nil, p.errs
	}
	return c.Config, p.warns, nil
}

// draft is a Config being parsed, with what Parse needs beyond it: the linear step settings
// until they become Steps, whether the router is known, and the key each setting came from (a
// flat annotation, or a field of the analysis block), so an error names the one the user wrote.
type draft struct {
	Config
	stepWeight, maxWeight int
	stepWeights           []int
	// catalog is the controller's routers; router is the one the configuration names, when
	// routerKnown.
	catalog     Routers
	router      RouterInfo
	routerKnown bool

	stepKey, maxKey, metricsKey, matchKey, strategyKey, affinityKey string
}
