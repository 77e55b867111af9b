// Package analysis judges metric readings against a release's checks. It is pure: the
// providers fetch values, this package says what they mean (pass, fail, abort, inconclusive,
// error) and why, so the rules of SPEC §5 are unit-tested without any backend.
//
// It also renders the queries a check runs: the check's own, or the builtin query of the
// release's router, which each router declares in its spec.RouterInfo (providers/routers/<name>;
// docs/metrics.md lists them all), with the {{ variables }} of Render.
package analysis
