package rollout

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sluice-dev/sluice/rollout/plan"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// observed is one step's view of a release, read once from the informer cache: what the
// planner sees (snap) and the objects the applier writes against.
type observed struct {
	parent *appsv1.Deployment
	canary *appsv1.Deployment // nil when it does not exist
	// raw is the state annotation as read; the applier writes only when the decided state
	// encodes differently, and tests it in the patch (see patchParent).
	raw   string
	state spec.State
	// traffic is what routing the release's plan needs; nil unless the plan isolates the
	// canary (every router but replicas, and blue/green).
	traffic *traffic
	snap    plan.Snapshot
}

// gather reads everything one step of parent's release needs, from the cache, and makes the
// planner's snapshot of it. Nothing is written. The analysis runs here when the snapshot says
// it is due, so the planner is called once with the readings.
func (r *Reconciler) gather(ctx context.Context, parent *appsv1.Deployment, now time.Time) (*observed, error) {
	raw := parent.Annotations[spec.AnnState]
	st, err := spec.ReadState(parent.Annotations)
	if err != nil {
		r.Recorder.Eventf(parent, nil, corev1.EventTypeWarning, string(spec.ReasonInvalidState), "Reconcile", "%s", spec.EventNote(err.Error()))
		return nil, reconcile.TerminalError(err)
	}
	canary, err := r.getCanary(ctx, parent)
	if err != nil {
		return nil, err
	}
	o := &observed{parent: parent, canary: canary, raw: raw, state: st}
	o.snap = snapshot(parent, canary, st, r.Defaults)
	if st.Plan != nil && st.Plan.Isolated() {
		// An isolated canary is reached only through the routing object and the Sluice-owned
		// Services: what they need is read here, and a missing Service or port is planner
		// input (the release waits for it), not an error found while writing.
		if o.traffic, err = r.traffic(ctx, parent, o.snap); err != nil {
			return nil, err
		}
		o.snap.Parent.PodHash = o.traffic.podHash
		if _, active := st.Routing(); active && o.traffic.targetErr != nil {
			o.snap.RoutingErr = o.traffic.targetErr.Error()
		}
	}
	if msg := r.routing.get(client.ObjectKeyFromObject(parent), st.Revision); msg != "" && o.snap.RoutingErr == "" {
		o.snap.RoutingErr = msg
	}
	// Hooks run in the background: a step whose hooks have not all answered waits for them
	// (the runner wakes it), and runs its analysis with them.
	pending := r.hookResults(o, now)
	if plan.AnalysisDue(o.snap, now) && !pending {
		o.snap.Analysis = r.Analyzer.Run(ctx, parent.Namespace, parent.Name, st.Plan)
		recordChecks(parent.Namespace, parent.Name, o.snap.Analysis)
	}
	return o, nil
}

// snapshot is the planner's view of a parent, its canary and its recorded state. The
// Deployment's configuration is parsed only when a retry asks for it (a retry starts a new
// release with the current configuration); no other step reads it.
func snapshot(parent, canary *appsv1.Deployment, st spec.State, defaults spec.Defaults) plan.Snapshot {
	s := plan.Snapshot{
		Name:   parent.Name,
		State:  st,
		Parent: workload(parent, spec.TemplateHash(&parent.Spec.Template)),
		Controls: plan.Controls{
			Promote: parent.Annotations[spec.AnnPromote],
			Abort:   parent.Annotations[spec.AnnAbort],
			Pause:   parent.Annotations[spec.AnnPause],
			Retry:   parent.Annotations[spec.AnnRetry],
			Approve: parent.Annotations[spec.AnnApprove],
			Halt:    parent.Annotations[spec.AnnHalt],
		},
	}
	if canary != nil {
		c := workload(canary, canary.Annotations[spec.AnnRevision])
		s.Canary = &c
	}
	if s.Controls.Retry != "" {
		if cfg, errs := spec.Parse(parent.Annotations, defaults); len(errs) > 0 {
			s.ConfigErr = spec.FormatErrors(errs)
		} else {
			s.Config = &cfg
		}
	}
	return s
}

func workload(d *appsv1.Deployment, revision string) plan.Workload {
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	return plan.Workload{
		Revision: revision, Paused: d.Spec.Paused,
		Generation: d.Generation, ObservedGeneration: d.Status.ObservedGeneration,
		Replicas: replicas, StatusReplicas: d.Status.Replicas,
		UpdatedReplicas: d.Status.UpdatedReplicas, AvailableReplicas: d.Status.AvailableReplicas,
	}
}

func (r *Reconciler) getCanary(ctx context.Context, parent *appsv1.Deployment) (*appsv1.Deployment, error) {
	c := &appsv1.Deployment{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: parent.Namespace, Name: spec.CanaryName(parent.Name)}, c)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get canary of %s: %w", klog.KObj(parent), err)
	}
	if c.Labels[spec.LabelParent] != parent.Name {
		return nil, reconcile.TerminalError(fmt.Errorf("deployment %s exists but is not Sluice's canary of %s", klog.KObj(c), parent.Name))
	}
	return c, nil
}

// cacheLag is how soon a step is looked at again when the cache is behind: it has not shown
// the previous step's own write yet, or a write conflicted with a newer version (the update
// event that brings the newer version usually comes first).
const cacheLag = 250 * time.Millisecond

// lagTracker remembers, per Deployment, the state annotation this worker's last step replaced,
// until the cache shows something else: a cached parent that still carries it is behind, and
// a step planned on it would replay the step before (and write its routing and canary size
// over the current one's).
type lagTracker struct {
	mu       sync.Mutex
	replaced map[types.NamespacedName]replacedState
}

// replacedState is the state annotation a step replaced, and when.
type replacedState struct {
	raw string
	at  time.Time
}

// maxCacheLag bounds how long a replaced state is remembered: a cache is not that late.
const maxCacheLag = time.Minute

// behind reports whether parent, as read from the cache at now, still carries the state this
// worker's last step replaced. An entry is dropped once the cache shows anything else, or
// after maxCacheLag.
func (l *lagTracker) behind(key types.NamespacedName, parent *appsv1.Deployment, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	rep, ok := l.replaced[key]
	if ok && parent != nil && parent.Annotations[spec.AnnState] == rep.raw && now.Sub(rep.at) < maxCacheLag {
		return true
	}
	delete(l.replaced, key)
	return false
}

// wrote records that a step at now replaced the state annotation raw of key.
func (l *lagTracker) wrote(key types.NamespacedName, raw string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.replaced == nil {
		l.replaced = map[types.NamespacedName]replacedState{}
	}
	l.replaced[key] = replacedState{raw: raw, at: now}
}

// failureLog remembers, per Deployment and release revision, why the last routing write
// failed, so the next step plans with it (Snapshot.RoutingErr): the release waits for the
// routing object, and rolls back at its progress deadline. It is kept in memory: after a
// restart the first step fails once more and finds out again.
type failureLog struct {
	mu   sync.Mutex
	last map[types.NamespacedName]routingFailure
}

type routingFailure struct {
	revision, msg string
}

func (f *failureLog) get(key types.NamespacedName, revision string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rf, ok := f.last[key]; ok && rf.revision == revision {
		return rf.msg
	}
	return ""
}

// set records msg for key's release revision; "" forgets it.
func (f *failureLog) set(key types.NamespacedName, revision, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if msg == "" {
		delete(f.last, key)
		return
	}
	if f.last == nil {
		f.last = map[types.NamespacedName]routingFailure{}
	}
	f.last[key] = routingFailure{revision: revision, msg: msg}
}
