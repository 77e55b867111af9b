// Package rollout is the rollout worker: one controller-runtime reconciler whose step is a
// straight line over the pure planner (package plan):
//
//	gather (gather.go)   one snapshot from the informer cache: parent, canary, recorded state,
//	                     traffic (user Service, port, stable ReplicaSet), routing preconditions
//	                     and the last routing failure, analysis readings when due
//	plan                 plan.Plan, called once
//	apply (apply.go)     Services, routing object, canary, then one JSON patch of the parent
//	                     (state encoded once, spec.paused, consumed controls)
//	record               Events, metrics, one log line when the phase or weight moved
//
// Nothing decides in the I/O layer: a missing Service or port, or a routing write that failed in
// the step before, is planner input (Snapshot.RoutingErr); a decision that needs its routing in
// place is applied only once the routing is set. Every write is idempotent, so a controller
// that crashes anywhere resumes from the state annotation.
package rollout
