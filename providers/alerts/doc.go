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
// Like every provider it imports neither controller-runtime nor the rollout worker.
package alerts
