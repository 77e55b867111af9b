// Package alerts posts release alerts to chat services: one Notifier per AlertProvider type —
// slack, msteams, discord, rocket, gchat and generic — each sending the message format that
// service documents (see each type's file), with the Deployment, namespace, revision, image,
// phase, weight, failing check and its value as that service's fields or facts.
//
// It also holds the two decisions about which alerts to send, pure and table-tested:
// ShouldPost (severity: an alert of severity s receives messages of s and above; empty means
// info) and Deduper (the same alert, by Key, at most once per window).
//
// What the caller can rely on:
//   - A post is bounded by its timeout (DefaultTimeout, 5s) and is never retried, so a failing
//     service costs a release at most that; the error is for the caller to report, never to
//     act on.
//   - No error carries the address or the token: for most services the address is the
//     credential, so both come from a Secret and are scrubbed from whatever a service answers.
//   - No redirect is followed, at most 64 KiB of an answer are read.
//
// Dispatcher is what the rollout worker talks to (rollout.Notifier): it turns each step's
// notice into posts — every Event to the release's event hooks, the Events that alert
// (Severity) to its alert targets and the controller's defaults — each receiver with its own
// bounded queue, so a slow or failing one costs only its own posts. It reads AlertProviders
// and their Secrets through a controller-runtime client.Reader (as routers write through a
// client) and counts on controller-runtime's metrics registry; it never imports the rollout
// worker, which gets it through the interface from cmd/sluice.
package alerts
