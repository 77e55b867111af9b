package spec

// Labels.
const (
	// LabelEnabled opts a Deployment in when its value is ValueEnabled. Sluice's own canary
	// copies carry the same key with ValueCanary, so one label selector scopes Sluice's cache to
	// both, while the webhook (which matches only ValueEnabled) never intercepts a canary.
	LabelEnabled = "sluice.dev/enabled"
	ValueEnabled = "true"
	ValueCanary  = "canary"

	// LabelTrack marks canary pods (value "canary").
	LabelTrack = "sluice.dev/track"
	// LabelParent names, on a canary Deployment, the Deployment it was copied from.
	LabelParent = "sluice.dev/parent"
)

// Configuration annotations (SPEC §2).
const (
	AnnStrategy         = "sluice.dev/strategy"
	AnnRouter           = "sluice.dev/router"
	AnnService          = "sluice.dev/service"
	AnnPort             = "sluice.dev/port"
	AnnRoute            = "sluice.dev/route"
	AnnInterval         = "sluice.dev/interval"
	AnnThreshold        = "sluice.dev/threshold"
	AnnStepWeight       = "sluice.dev/step-weight"
	AnnMaxWeight        = "sluice.dev/max-weight"
	AnnStepWeights      = "sluice.dev/step-weights"
	AnnIterations       = "sluice.dev/iterations"
	AnnMatch            = "sluice.dev/match"
	AnnMetrics          = "sluice.dev/metrics"
	AnnWebhooks         = "sluice.dev/webhooks"
	AnnAlerts           = "sluice.dev/alerts"
	AnnAnalysis         = "sluice.dev/analysis"
	AnnProgressDeadline = "sluice.dev/progress-deadline"
	AnnSkipAnalysis     = "sluice.dev/skip-analysis"
	// AnnMirrorPercent is the share of requests mirrored to the canary (strategy mirror).
	AnnMirrorPercent = "sluice.dev/mirror-percent"
	// AnnSessionAffinity names the cookie that keeps a user who reached the canary on it
	// (strategy canary); AnnSessionAffinityMaxAge is the cookie's lifetime.
	AnnSessionAffinity       = "sluice.dev/session-affinity"
	AnnSessionAffinityMaxAge = "sluice.dev/session-affinity-max-age"
)

// Manual controls (SPEC §4): annotations a user (or `kubectl sluice`) writes.
const (
	// AnnPromote approves promotion of the revision it names ("true" approves the current one).
	AnnPromote = "sluice.dev/promote"
	AnnAbort   = "sluice.dev/abort"
	AnnPause   = "sluice.dev/pause"
	AnnRetry   = "sluice.dev/retry"
	// AnnApprove opens, once, the confirm gate the release of the revision it names waits at
	// (Sluice's own gate: no hook server needed).
	AnnApprove = "sluice.dev/approve"
	// AnnHalt closes every confirm gate of the release of the revision it names, whether or not
	// it has confirm hooks: the release waits (phase Waiting) before its next traffic increase
	// and before promotion, analysis going on, until the annotation is removed.
	AnnHalt = "sluice.dev/halt"
)

// Sluice's own state. Only Sluice writes these; the webhook restores them on foreign writes.
const (
	AnnState = "sluice.dev/state"
	// AnnRevision on a canary Deployment names the revision (template hash) it runs.
	AnnRevision = "sluice.dev/revision"
)

// On the Sluice-owned `<svc>-canary` Service of an isolated canary (mesh routers and blue/green).
const (
	// AnnRouteTarget records what the router manages (as JSON), so the routing object can be put
	// back after the Deployment is opted out (its state is gone) or deleted; AnnRouter beside it
	// names the router.
	AnnRouteTarget = "sluice.dev/route-target"
	// FinalizerRoute keeps the Service until the routing object no longer points at it.
	FinalizerRoute = "sluice.dev/route-cleanup"
)

// ConfigAnnotations are every configuration annotation Parse reads.
var ConfigAnnotations = []string{
	AnnStrategy, AnnRouter, AnnService, AnnPort, AnnRoute, AnnInterval, AnnThreshold, AnnStepWeight,
	AnnMaxWeight, AnnStepWeights, AnnIterations, AnnMatch, AnnMetrics, AnnWebhooks, AnnAlerts,
	AnnAnalysis, AnnProgressDeadline, AnnSkipAnalysis, AnnMirrorPercent, AnnSessionAffinity,
	AnnSessionAffinityMaxAge,
}

// Prefix starts every key Sluice reads; any other key with it on an opted-in Deployment is a
// typo or a feature this version lacks, and is refused.
const Prefix = "sluice.dev/"

// OwnStateAnnotations are the annotations whose values only Sluice may set.
var OwnStateAnnotations = []string{AnnState}

// AnnRestartedAt is what `kubectl rollout restart` writes into the pod template.
const AnnRestartedAt = "kubectl.kubernetes.io/restartedAt"

// CanaryName is the name of the canary copy of Deployment parent.
func CanaryName(parent string) string { return parent + "-canary" }

// Names of the Sluice-owned Services in front of the two tracks (mesh routers and blue/green).
func StableServiceName(svc string) string { return svc + "-stable" }

// CanaryServiceName is the Service selecting only the canary's pods.
func CanaryServiceName(svc string) string { return svc + "-canary" }

// MaxEventNote is the longest message the API server accepts in an Event (events.k8s.io/v1
// note); a longer one is refused and the Event lost.
const MaxEventNote = 1024

// EventNote cuts msg so that the Event carrying it is accepted, saying how long it was.
func EventNote(msg string) string {
	if len(msg) <= MaxEventNote {
		return msg
	}
	return cut(msg, MaxEventNote-32)
}
