package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// metricsAnnotation reads the `sluice.dev/metrics` list, which replaces the analysis block's
// metrics; both are validated once every source is read (finish).
func (p *parser) metricsAnnotation(c *draft) {
	v, ok := p.ann[AnnMetrics]
	if !ok {
		return
	}
	var ms []Metric
	if err := yaml.UnmarshalStrict([]byte(v), &ms); err != nil {
		p.invalid(AnnMetrics, "", "not a valid YAML list of checks: "+cleanYAMLError(err))
		return
	}
	c.Metrics, c.metricsKey = ms, AnnMetrics
}

// metrics validates the checks, wherever they came from (key): each needs a unique name, a
// query, a templateRef or a builtin name, and a bounded range; its options must make sense.
func (p *parser) metrics(key string, ms []Metric) {
	seen := map[string]bool{}
	for i, m := range ms {
		if m.Name == "" {
			p.errs = append(p.errs, field.Required(field.NewPath(fmt.Sprintf("%s[%d].name", key, i)), "every check needs a name"))
			continue
		}
		where := fmt.Sprintf("%s[%s]", key, m.Name)
		if seen[m.Name] {
			p.errs = append(p.errs, field.Duplicate(field.NewPath(where), m.Name))
		}
		seen[m.Name] = true
		p.checkSource(where, m)
		p.checkRanges(where, m)
		p.checkOptions(where, m)
	}
}

// checkSource: a check's query comes from exactly one of query, templateRef and a builtin name.
func (p *parser) checkSource(where string, m Metric) {
	builtin := m.Name == CheckSuccessRate || m.Name == CheckDuration
	switch {
	case m.TemplateRef != nil && strings.TrimSpace(m.Query) != "":
		p.errs = append(p.errs, field.Invalid(field.NewPath(where+".templateRef"), m.TemplateRef.Name, "give either query or templateRef, not both"))
	case m.TemplateRef != nil:
		if !validName(m.TemplateRef.Name) && !validSubdomain(m.TemplateRef.Name) {
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+".templateRef.name"), m.TemplateRef.Name, "must name a MetricTemplate"))
		}
		if ns := m.TemplateRef.Namespace; ns != "" && !validName(ns) {
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+".templateRef.namespace"), ns, "must be a namespace name"))
		}
	case !builtin && strings.TrimSpace(m.Query) == "":
		p.errs = append(p.errs, field.Required(field.NewPath(where+".query"),
			"a custom check needs a query or a templateRef (builtins are "+CheckSuccessRate+" and "+CheckDuration+")"))
	}
}

// checkRanges: a check judges something (a bound in thresholdRange or abortRange), and each
// range is not empty.
func (p *parser) checkRanges(where string, m Metric) {
	if !m.ThresholdRange.bounded() && !m.AbortRange.bounded() {
		p.errs = append(p.errs, field.Required(field.NewPath(where+".thresholdRange"), "give min and/or max"))
	}
	// A slice, not a map: errors come out in the same order every time.
	for _, nr := range []struct {
		name string
		r    *Range
	}{{"thresholdRange", m.ThresholdRange}, {"abortRange", m.AbortRange}} {
		if r := nr.r; r != nil && r.Min != nil && r.Max != nil && *r.Min > *r.Max {
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+"."+nr.name), r.String(), "min must not exceed max"))
		}
	}
}

// checkOptions: interval, inconclusiveLimit, compareTo with maxDelta, minRequests.
func (p *parser) checkOptions(where string, m Metric) {
	if m.Interval != "" {
		if d, err := time.ParseDuration(m.Interval); err != nil || d <= 0 {
			p.errs = append(p.errs, field.Invalid(field.NewPath(where+".interval"), m.Interval, "must be a positive duration such as 1m"))
		}
	}
	if m.InconclusiveLimit < 0 {
		p.errs = append(p.errs, field.Invalid(field.NewPath(where+".inconclusiveLimit"), strconv.Itoa(m.InconclusiveLimit), fmt.Sprintf("must be 0 (the default, %d) or more", DefaultInconclusiveLimit)))
	}
	switch {
	case m.CompareTo != "" && m.CompareTo != CompareStable:
		p.errs = append(p.errs, field.Invalid(field.NewPath(where+".compareTo"), m.CompareTo, `must be "stable"`))
	case m.CompareTo == CompareStable && (m.MaxDelta == nil || *m.MaxDelta < 0):
		p.errs = append(p.errs, field.Required(field.NewPath(where+".maxDelta"), "compareTo: stable needs a maxDelta of 0 or more"))
	case m.CompareTo == "" && m.MaxDelta != nil:
		p.errs = append(p.errs, field.Invalid(field.NewPath(where+".maxDelta"), strconv.FormatFloat(*m.MaxDelta, 'g', -1, 64), "needs compareTo: stable"))
	}
	if m.MinRequests < 0 {
		p.errs = append(p.errs, field.Invalid(field.NewPath(where+".minRequests"), strconv.Itoa(m.MinRequests), "must be 0 or more"))
	}
	if m.MinRequests > 0 && m.Name != CheckSuccessRate && m.Name != CheckDuration {
		p.errs = append(p.errs, field.Invalid(field.NewPath(where+".minRequests"), strconv.Itoa(m.MinRequests), "applies to the builtin checks only"))
	}
}
