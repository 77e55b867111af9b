// Package analysis judges metric readings against a release's checks. It is pure: the
// providers fetch values, this package says what they mean (pass, fail, abort, inconclusive,
// error) and why, so the rules of SPEC §5 are unit-tested without any backend.
package analysis
