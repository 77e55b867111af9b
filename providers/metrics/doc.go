// Package metrics is the contract between Sluice's analysis and its metric backends: one
// Provider interface and the sentinel errors every backend reports, so analysis can tell "no
// data" (inconclusive) from "unreachable" (a failed check) with errors.Is. Each backend lives in
// its own sub-package and imports neither controller-runtime nor the rollout worker.
package metrics

import (
	"context"
	"errors"
)

// Provider runs one query and returns its single value.
type Provider interface {
	Query(ctx context.Context, query string) (float64, error)
}

// Sentinel errors; backends wrap them with the backend's own words.
var (
	// ErrNoData: the query matched no series or returned NaN. Analysis treats it as
	// inconclusive, not failed.
	ErrNoData = errors.New("no data")
	// ErrMultipleSeries: the query returned more than one series where one value was expected.
	ErrMultipleSeries = errors.New("more than one series")
	// ErrUnreachable: the backend could not be reached or timed out.
	ErrUnreachable = errors.New("backend unreachable")
)
