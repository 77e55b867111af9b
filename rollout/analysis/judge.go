package analysis

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/sluice-dev/sluice/providers/metrics" //nolint:depguard // the providers' sentinel errors (ErrNoData); not an arrow of docs/design.md yet, reported under issue 13
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

// JudgeCompare judges a compareTo: stable check from the canary's and the stable pods' readings
// of the same query: the canary must pass the check's own ranges, and be worse than stable by
// at most MaxDelta. Higher is better when the thresholdRange has a min, lower otherwise.
func JudgeCompare(m spec.Metric, canary, stable float64, canaryErr, stableErr error) spec.CheckResult {
	r := Judge(m, canary, canaryErr)
	if r.Verdict != spec.VerdictPass {
		return r
	}
	if s := Judge(spec.Metric{Name: m.Name}, stable, stableErr); s.Verdict == spec.VerdictInconclusive || s.Verdict == spec.VerdictError {
		s.DryRun = m.DryRun
		s.Reason = "stable: " + s.Reason
		return s
	}
	worse := canary - stable
	if m.ThresholdRange != nil && m.ThresholdRange.Min != nil {
		worse = stable - canary
	}
	maxDelta := 0.0
	if m.MaxDelta != nil {
		maxDelta = *m.MaxDelta
	}
	if worse > maxDelta {
		r.Verdict = spec.VerdictFail
		r.Reason = fmt.Sprintf("canary %s vs stable %s: worse by %s, more than maxDelta %s", format(canary), format(stable), format(worse), format(maxDelta))
		return r
	}
	r.Reason = fmt.Sprintf("canary %s vs stable %s, within maxDelta %s", format(canary), format(stable), format(maxDelta))
	return r
}

// JudgeRequests makes r inconclusive when the canary served fewer than min requests. A reading
// outside the abort range still aborts: a few requests that all failed are reason enough.
func JudgeRequests(r spec.CheckResult, min int, requests float64, err error) spec.CheckResult {
	if min <= 0 || r.Verdict == spec.VerdictError || r.Verdict == spec.VerdictAbort {
		return r
	}
	switch {
	case errors.Is(err, metrics.ErrNoData):
		requests, err = 0, nil
	case err != nil:
		return spec.CheckResult{Name: r.Name, DryRun: r.DryRun, Verdict: spec.VerdictError, Reason: "request count: " + err.Error()}
	}
	if requests < float64(min) {
		return spec.CheckResult{Name: r.Name, DryRun: r.DryRun, Value: r.Value, Verdict: spec.VerdictInconclusive,
			Reason: fmt.Sprintf("canary served %s requests in the window, fewer than minRequests %d", format(requests), min)}
	}
	return r
}
