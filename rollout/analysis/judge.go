package analysis

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Judge turns one reading (or the error that replaced it) into the check's verdict. No data is
// inconclusive; any other error counts as a failed check and keeps the provider's words.
func Judge(m spec.Metric, value float64, err error) spec.CheckResult {
	r := spec.CheckResult{Name: m.Name, DryRun: m.DryRun}
	switch {
	case errors.Is(err, metrics.ErrNoData):
		r.Verdict, r.Reason = spec.VerdictInconclusive, err.Error()
		return r
	case err == nil && math.IsNaN(value):
		r.Verdict, r.Reason = spec.VerdictInconclusive, "query returned NaN (no requests in the window?)"
		return r
	case err != nil:
		r.Verdict, r.Reason = spec.VerdictError, err.Error()
		return r
	}
	v := value
	r.Value = &v
	switch {
	case !m.AbortRange.Contains(v):
		r.Verdict = spec.VerdictAbort
		r.Reason = fmt.Sprintf("%s outside abort range %s", format(v), m.AbortRange)
	case !m.ThresholdRange.Contains(v):
		r.Verdict = spec.VerdictFail
		r.Reason = fmt.Sprintf("%s outside %s", format(v), m.ThresholdRange)
	default:
		r.Verdict = spec.VerdictPass
		r.Reason = format(v) + " within " + m.ThresholdRange.String()
	}
	return r
}

func format(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
