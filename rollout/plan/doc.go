// Package plan is the rollout worker's brain: a pure function from a snapshot of one opted-in
// Deployment (its release state, parent and canary status, manual controls and the readings of
// an analysis run) and the time to the next state and the actions that reach it.
//
//	          ┌──────── pause ────────┐
//	          ▼                       │
//	       Paused ──resume──▶ Progressing ──passed at last step / promote──▶ Promoting ──rolled──▶ Succeeded
//	                            │  ▲   │                                        │
//	                            │  └───┘ passed: next weight                    └──deadline──▶ Failed
//	                            │
//	threshold failed runs, abortRange, inconclusiveLimit, abort, deadline, revert
//	                            ▼
//	                       RollingBack ──canary gone──▶ Failed (held on stable) | Idle (reverted)
//
// It performs no I/O and reads no clock, so every transition is a table test.
package plan
