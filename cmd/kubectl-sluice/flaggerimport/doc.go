// Package flaggerimport converts Flagger's objects into Sluice's: `kubectl sluice import`.
//
// Flagger configures a release with a Canary object beside the Deployment and generates the
// Services and the routing object itself; Sluice is configured by the Deployment's own label and
// annotations and edits routing objects the user owns. So a Canary becomes:
//
//	Canary spec.analysis, provider, progressDeadlineSeconds …  →  sluice.dev/* annotations (and the
//	                                                              opt-in label) on the Deployment
//	Canary spec.service                                     →  the Service <svc> and the routing
//	                                                              object Flagger generated from it
//	                                                              (VirtualService, HTTPRoute,
//	                                                              HTTPProxy, VirtualRouter …), now
//	                                                              the user's own
//	MetricTemplate, AlertProvider (flagger.app)              →  the same kinds in sluice.dev
//
// Nothing is dropped silently: the conversion records, for every field of every input object,
// either where it went or why it has no equivalent (a Finding). Each object is then walked leaf
// by leaf, and a leaf that is in neither set is reported as a field this version does not know.
// The annotations produced are checked with Sluice's own admission parser (spec.Parse and the
// webhook and alert parsers), and what it refuses is reported against the input field it came
// from, so a user reads the reason before `kubectl apply` does.
//
// The package is pure: bytes in, objects and findings out. The plugin (cmd/kubectl-sluice)
// reads the files and writes the result.
package flaggerimport
