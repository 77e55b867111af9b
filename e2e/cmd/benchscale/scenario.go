package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

// The scenario of issue 14: N Deployments with 2 replicas, blue/green, 3 analysis runs at a
// 10 s interval, one Prometheus check `vector(100)`, the image of all N set at once.
const (
	replicas   = 2
	iterations = 3
	interval   = 10 * time.Second
	schedule   = iterations * interval
	imageV1    = "registry.example/bench/app:v1"
	imageV2    = "registry.example/bench/app:v2"
	container  = "app"
	appPort    = 8080
	// createParallelism bounds the concurrent requests that create a run's objects.
	createParallelism = 16
)

var deploymentsGVR = appsv1.SchemeGroupVersion.WithResource("deployments")

// controller is what differs between Sluice and Flagger in a run.
type controller interface {
	// name is "sluice" or "flagger"; user is the API user its requests are audited under.
	name() string
	user() string
	// restart starts a fresh controller process (so its CPU time, peak RSS and caches belong
	// to one run) and waits until it is ready; pid is that process.
	restart(ctx context.Context) error
	pid() (int, bool)
	// create makes the objects of the releases in namespace ns.
	create(ctx context.Context, ns string, names []string) error
	// watched are the resources observe needs to see, besides Deployments.
	watched() []schema.GroupVersionResource
	// observe updates t (under its lock) with one watched object as its event arrived at at.
	observe(t *tracker, typ watch.EventType, obj *unstructured.Unstructured, at time.Time)
	// readyDetail says whether every Deployment is ready to be released (under t's lock).
	readyDetail(t *tracker) (bool, string)
}

// bench is one control plane with one controller on it.
type bench struct {
	c    *cluster.Cluster
	cs   kubernetes.Interface
	dyn  dynamic.Interface
	ctl  controller
	opts options
	// noProfile skips the controller's profiles (the memory runs).
	noProfile bool
}

// logf prints a progress line stamped with the wall clock (the control plane's own lines carry
// its uptime).
func (b *bench) logf(format string, args ...any) {
	fmt.Printf("%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// run runs the scenario once for n releases and returns its summary.
func (b *bench) run(ctx context.Context, n int) (summary, error) {
	tag := fmt.Sprintf("%s N=%d", b.ctl.name(), n)
	logf := func(format string, args ...any) { b.logf("[%s] %s", tag, fmt.Sprintf(format, args...)) }
	ns := fmt.Sprintf("bench-n%d", n)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("app-%04d", i)
	}
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return summary{}, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	defer b.deleteNamespace(ns, logf)

	t := newTracker(names)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for _, gvr := range append([]schema.GroupVersionResource{deploymentsGVR}, b.ctl.watched()...) {
		err := watchAll(watchCtx, b.dyn, gvr, ns, func(typ watch.EventType, obj *unstructured.Unstructured, at time.Time) {
			t.update(func() { b.ctl.observe(t, typ, obj, at) })
		}, logf)
		if err != nil {
			return summary{}, err
		}
	}

	logf("starting a fresh %s", b.ctl.name())
	if err := b.ctl.restart(ctx); err != nil {
		return summary{}, err
	}
	pid, ok := b.ctl.pid()
	if !ok {
		return summary{}, fmt.Errorf("%s is not running", b.ctl.name())
	}
	logf("creating %d Deployments (%d replicas each) and what %s needs beside them", n, replicas, b.ctl.name())
	if err := b.ctl.create(ctx, ns, names); err != nil {
		return summary{}, err
	}
	if err := t.wait(ctx, 10*time.Minute, "ready to release", logf, func() (bool, string) { return b.ctl.readyDetail(t) }); err != nil {
		return summary{}, err
	}

	logf("all %d ready; kubectl set image on all %d at once", n, n)
	load := loadAverage()
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return summary{}, err
	}
	from := time.Now()
	profiled := func() {}
	if p, ok := b.ctl.(interface {
		startProfile(ctx context.Context, tag string, seconds int, logf func(string, ...any)) func()
	}); ok && !b.noProfile {
		profiled = p.startProfile(ctx, fmt.Sprintf("%s-n%d", b.ctl.name(), n), profileSeconds, logf)
	}
	b.setImages(ctx, t, ns, names)
	exited := false
	err = t.wait(ctx, b.opts.timeout, "releases", logf, func() (bool, string) {
		if !running(pid) {
			// Nothing would move again: a stalled run would only wait out its timeout.
			exited = true
			return true, b.ctl.name() + " exited"
		}
		done := t.countReleases(func(r *release) bool { return !r.Done.IsZero() })
		failed := t.countReleases(func(r *release) bool { return r.Err != nil })
		started := t.countReleases(func(r *release) bool { return !r.Started.IsZero() })
		return done+failed == n, fmt.Sprintf("%d/%d done, %d failed, %d canaries started", done, n, failed, started)
	})
	if exited {
		return summary{}, fmt.Errorf("%s (pid %d) exited during the releases (its log is in the control plane's logs dir; -keep keeps it)", b.ctl.name(), pid)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		logf("%v; reporting what finished", err)
	} else if err != nil {
		return summary{}, err
	}
	cpu1, cpuErr := cpuSeconds(pid)
	rss, rssErr := peakRSSMiB(pid)
	now, nowErr := rssMiB(pid)
	if err := errors.Join(cpuErr, rssErr, nowErr); err != nil {
		return summary{}, fmt.Errorf("read %s's /proc: %w", b.ctl.name(), err)
	}
	// The work queue's window ends now: read it before waiting for the profile.
	var queue *queueStats
	if q, ok := b.ctl.(interface {
		queueStats(ctx context.Context, window time.Duration) (*queueStats, error)
	}); ok {
		if queue, err = q.queueStats(ctx, time.Since(from)); err != nil {
			logf("work queue metrics: %v", err)
		}
	}
	profiled()

	t.mu.Lock()
	rs := make([]*release, 0, n)
	to := from
	for _, name := range names {
		r := *t.releases[name]
		r.Runs = slices.Clone(r.Runs)
		rs = append(rs, &r)
		if r.Done.After(to) {
			to = r.Done
		}
		if r.Err != nil {
			logf("%s: %v", name, r.Err)
		}
	}
	t.mu.Unlock()
	if err != nil {
		to = time.Now()
	}
	s := summary{
		Controller: b.ctl.name(), N: n, Load: load, ScheduleSeconds: schedule.Seconds(),
		CPUSeconds: cpu1 - cpu0, PeakRSSMiB: rss, RSSMiB: now, WindowSeconds: to.Sub(from).Seconds(),
	}
	summarize(rs, interval, &s)
	s.Queue = queue
	if s.Requests, err = requestsPerRelease(b.c.AuditLog, b.ctl.user(), from, to, n); err != nil {
		return summary{}, fmt.Errorf("count %s's API requests: %w", b.ctl.name(), err)
	}
	if s.Cluster, err = clusterRequestsPerRelease(b.c.AuditLog, from, to, n); err != nil {
		return summary{}, fmt.Errorf("count the controller-manager's API requests: %w", err)
	}
	if q := s.Queue; q != nil {
		logf("work queue: %.0f reconciles (p50 %.3f s, p99 %.3f s), wait p50 %.3g s p99 %.3g s, at most %.0f workers busy and %.0f items due",
			q.Reconciles, q.ReconcileP50, q.ReconcileP99, q.WaitP50, q.WaitP99, q.MaxWorkers, q.MaxDepth)
	}
	logf("controller-manager requests per release: %.1f by the Deployment controller, %.1f by the ReplicaSet controller",
		s.Cluster["deployment-controller"], s.Cluster["replicaset-controller"])
	logf("done %d/%d: release p50 %.1f s (%.2f× schedule), max %.1f s; start p50 %.2f s; analysis from %.1f s; finish %.1f s; lag p50 %.3f s p99 %.3f s; CPU %.1f s; peak RSS %.0f MiB; %.0f API requests per release",
		s.Done, n, s.Release.P50, s.Release.P50/s.ScheduleSeconds, s.Release.Max, s.Start.P50, s.ToAnalysis.P50, s.Finish.P50,
		s.Lag.P50, s.Lag.P99, s.CPUSeconds, s.PeakRSSMiB, total(s.Requests))
	return s, nil
}

// setImages sends, for every Deployment at once, the patch `kubectl set image deployment/NAME
// app=IMAGE` sends (a strategic merge patch of the container's image), recording when each
// was sent.
func (b *bench) setImages(ctx context.Context, t *tracker, ns string, names []string) {
	patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":%q}]}}}}`, container, imageV2)
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			t.update(func() { t.releases[name].SetImage = time.Now() })
			_, err := b.cs.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, patch,
				metav1.PatchOptions{FieldManager: "kubectl-set"})
			if err != nil {
				t.update(func() { t.releases[name].Err = fmt.Errorf("set image: %w", err) })
			}
		})
	}
	wg.Wait()
}

// deleteNamespace deletes ns and waits until it is gone, so the next run starts clean.
func (b *bench) deleteNamespace(ns string, logf func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logf("deleting namespace %s", ns)
	if err := b.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		logf("delete namespace %s: %v", ns, err)
		return
	}
	for ctx.Err() == nil {
		_, err := b.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		retryPause(ctx)
	}
	logf("namespace %s still there after 5 min", ns)
}

// forEach runs fn for every name with bounded parallelism and joins the errors.
func forEach(names []string, fn func(name string) error) error {
	sem := make(chan struct{}, createParallelism)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := fn(name); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more errors", len(errs)-3))
	}
	return errors.Join(errs...)
}

// deployment is one of the N Deployments: 2 replicas of one container serving HTTP on 8080.
func deployment(ns, name string, labels, annotations map[string]string) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	all := map[string]string{"app": name}
	for k, v := range labels {
		all[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: all, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](replicas),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: container, Image: imageV1,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: appPort, Protocol: corev1.ProtocolTCP}},
				}}},
			},
		},
	}
}

// service is the Service in front of a Deployment (port 80 to the pods' http port).
func service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// rolled reports whether d's Deployment controller has finished rolling it out.
func rolled(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return !d.Spec.Paused && s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want &&
		s.Replicas == want && s.AvailableReplicas == want
}

// total is the sum of the per-release request counts.
func total(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// readyCount is a readyDetail helper: how many Deployments are ready, and the first few that
// are not.
func readyCount(t *tracker) (bool, string) {
	var missing []string
	for _, n := range t.names {
		if !t.ready[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return true, ""
	}
	ex := missing[:min(3, len(missing))]
	return false, fmt.Sprintf("%d/%d ready (waiting for %s…)", len(t.names)-len(missing), len(t.names), strings.Join(ex, ", "))
}
