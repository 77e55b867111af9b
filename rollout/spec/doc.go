// Package spec is Sluice's shared vocabulary: the label and annotation keys a user writes on a
// Deployment, their parsing, defaults and validation, the release state Sluice records on the
// Deployment, and the pod-template hash that identifies a revision.
//
// Both the admission webhook and the rollout worker import it, so a configuration is judged the
// same way at `kubectl apply` time (where it is refused with a precise message) and at
// reconcile time (where it is reported instead of crashing). It imports nothing else of Sluice.
package spec
