// Package plan is the rollout worker's brain: a pure function from a snapshot of one opted-in
// Deployment (its release state, parent and canary status, manual controls and the readings of
// an analysis run) and the time to the next state and the actions that reach it. The phases
// and promotion steps it moves through are drawn in the package doc of rollout/spec, beside the
// state they live in; Plan takes every edge there not marked [webhook].
//
// It performs no I/O and reads no clock, so every transition is a table test.
package plan
