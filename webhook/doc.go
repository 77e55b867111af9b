// Package webhook is Sluice's admission hold: a mutating webhook on opted-in Deployments.
//
// Design rule: pause, don't revert. A new pod template is stored exactly as sent (so the live
// object still equals Git), but the Deployment is paused, so the Deployment controller keeps
// the stable ReplicaSet serving while the rollout worker releases the new template as a canary.
//
// Every decision is made by the pure function Decide from the AdmissionRequest alone (old and
// new object, whether the writer is Sluice itself, and the time): no API calls on the hot path,
// and server-side dry-run sees exactly what a real write would store. Handler is the thin layer
// that decodes, calls Decide and builds the JSON patch.
package webhook
