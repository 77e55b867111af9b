// Package spec is Sluice's shared vocabulary: the label and annotation keys a user writes on a
// Deployment, their parsing, defaults and validation, the release state Sluice records on the
// Deployment, the pod-template hash that identifies a revision, and the Event reasons both
// halves emit.
//
// Both the admission webhook and the rollout worker import it, so a configuration is judged the
// same way at `kubectl apply` time (where it is refused with a precise message) and at
// reconcile time (where it is reported instead of crashing). It imports nothing else of Sluice.
//
// # Release states
//
// The one drawing of a release's phases (State.Phase) and of an isolated canary's promotion
// steps (State.PromoteStep); docs/design.md and rollout/plan refer to it. (H) marks where the
// parent is held paused (State.Holds); [webhook] marks edges the admission webhook takes, the
// planner (rollout/plan) takes the others.
//
//	                            Paused (H)
//	                      pause ▲    │ resume
//	                            │    ▼
//	Idle ──────────┐
//	Succeeded ─────┼──held──▶ Progressing (H) ──promote──▶ Promoting ──rolled──▶ Succeeded
//	Failed (H) ────┘ or retry   │  ▲ │  ▲   │                 │   │
//	                            │  └─┘  │   │closed      ┌────┘   └──late──▶ Failed
//	                            │  next │ open  ▼        │
//	                            │       Waiting (H) ──promote
//	                   rollback │            │           │revert
//	                            ▼            ▼rollback   │
//	                     RollingBack (H) ◀───────────────┘
//	                            │
//	                            ├──canary gone──▶ Failed (H)
//	                            └──canary gone, template back on stable──▶ Idle (unpaused)
//
//	held      [webhook] a changed template (from Failed also sluice.dev/retry naming it); a
//	          release in flight is replaced the same way, from any phase
//	next      a run passed: the next weight, or the next iteration (bluegreen, ab, mirror)
//	promote   a run passed at the last weight or iteration, or sluice.dev/promote names the revision
//	closed    a confirm gate is closed (a confirm hook did not answer 2xx, or sluice.dev/halt names
//	          the revision): confirm-rollout before the canary exists, confirm-traffic-increase
//	          before the next weight, confirm-promotion before promotion; analysis goes on while
//	          the release waits at the later two (a failing run counts, and rolls back), and the
//	          progress deadline does not run
//	open      the gate's hooks answer 2xx at the next check (every interval; for the later two, at
//	          the next passing run), or sluice.dev/approve names the revision (consumed)
//	pause     sluice.dev/pause names the revision; resume: it was removed (back to the phase paused)
//	rollback  failed runs reach threshold (a refused pre-rollout or rollout hook is a failed run), a
//	          reading outside abortRange, inconclusiveLimit, a rollback hook answering 2xx,
//	          sluice.dev/abort, canary or routing not ready by the progress deadline, the template
//	          no longer the release's, or [webhook] set back to stable or to the last failed one;
//	          from Paused too (abort, or the webhook's)
//	revert    [webhook] the template set back to stable (Idle at the end) or to the last failed
//	          one (Failed); or an isolated canary not scaled up by the progress deadline
//	rolled    the promoted parent rolled out and the canary is gone
//	late      the promoted parent not rolled out by the progress deadline: Failed, not held (its
//	          rolling update would freeze half done)
//
// Besides: [webhook] sluice.dev/skip-analysis takes any phase to Idle, unpaused, and a template
// set back to stable while Failed goes to Idle, unpaused. A release that ends (Succeeded,
// Failed, Idle after a revert) with post-rollout hooks records State.PostRollout; the next step
// calls them and clears it.
//
// Promoting an isolated canary (every router but replicas, and blue/green on any) moves
// traffic before pods:
//
//	scale (H) ──canary ready──▶ shift (H) ──settled──▶ rollout ──rolled──▶ cleanup ──settled, canary gone──▶ Succeeded
//	   └──not scaled by the progress deadline──▶ RollingBack
//
//	scale     the canary grows to the parent's size (passed in the step that decides to promote
//	          when it is there already, as an isolated canary is unless the parent grew)
//	shift     all traffic to the canary; 2 s for the proxies to pick it up
//	rollout   the parent is unpaused and rolls
//	cleanup   <svc>-stable re-pinned to the rolled ReplicaSet, all traffic back to it; 2 s later
//	          the canary is deleted
//
// Any other canary (the replicas router) has no promotion steps: the parent is unpaused in the
// step that decides to promote, and the canary deleted once the parent has rolled.
package spec
