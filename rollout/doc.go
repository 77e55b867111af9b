// Package rollout is the rollout worker: one controller-runtime reconciler that, for each
// opted-in Deployment, gathers a snapshot from the informer cache, runs the analysis when the
// planner says it is due, asks the pure planner (package plan) what to do, and applies that
// decision: canary create/scale/delete, then one patch of the parent (state, spec.paused,
// consumed controls), then Events and metrics. Every action is idempotent, so a controller
// that crashes anywhere resumes from the state annotation.
package rollout
