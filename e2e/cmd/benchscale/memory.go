package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// memoryReleases is how many opted-in releases each memory run makes, so that every informer
// the worker uses is started and holds what it holds in use.
const memoryReleases = 10

// unmanagedNamespace holds the objects Sluice does not manage.
const unmanagedNamespace = "bench-unmanaged"

// memoryResult compares the controller's memory on a cluster without and with many objects it
// does not manage (issue 14: within 10 % of an empty cluster's).
type memoryResult struct {
	Date   string  `json:"date"`
	Commit string  `json:"commit"`
	Note   string  `json:"note,omitempty"`
	Load   float64 `json:"load"`
	// Unmanaged is the number of Deployments, of Services and of ReplicaSets not opted in.
	Unmanaged int `json:"unmanaged"`
	// Releases is the number of opted-in releases each run made.
	Releases int `json:"releases"`
	// Empty and With are the runs without and with the unmanaged objects.
	Empty memoryRun `json:"empty"`
	With  memoryRun `json:"with"`
}

// memoryRun is one fresh controller process releasing memoryReleases Deployments.
type memoryRun struct {
	// PeakRSSMiB is VmHWM: from the process's start (its caches' initial lists included) to
	// the last release done.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	// RSSMiB is VmRSS once the releases are done.
	RSSMiB float64 `json:"rssMiB"`
	// Requests is the controller's API requests per release (audit log).
	Requests float64 `json:"requests"`
}

// measureMemory runs memoryReleases releases with a fresh controller on the cluster as it is,
// then creates n Deployments, n Services and n ReplicaSets that are not opted in and runs
// them again with another fresh controller.
func (b *bench) measureMemory(ctx context.Context, n int) (*memoryResult, error) {
	res := &memoryResult{Unmanaged: n, Releases: memoryReleases, Load: loadAverage()}
	b.noProfile = true
	defer func() { b.noProfile = false }()
	b.logf("[memory] %d releases on a cluster with nothing else in it", memoryReleases)
	s, err := b.run(ctx, memoryReleases)
	if err != nil {
		return nil, fmt.Errorf("without unmanaged objects: %w", err)
	}
	res.Empty = memoryRun{PeakRSSMiB: s.PeakRSSMiB, RSSMiB: s.RSSMiB, Requests: total(s.Requests)}

	b.logf("[memory] creating %d Deployments, %d Services and %d ReplicaSets that are not opted in", n, n, n)
	start := time.Now()
	if err := b.createUnmanaged(ctx, n); err != nil {
		return nil, err
	}
	b.logf("[memory] created in %s; waiting for the controller-manager to have seen them all", time.Since(start).Round(time.Second))
	if err := b.waitUnmanagedSeen(ctx, n); err != nil {
		return nil, err
	}
	b.logf("[memory] seen after %s", time.Since(start).Round(time.Second))

	b.logf("[memory] %d releases beside %d unmanaged objects of each kind", memoryReleases, n)
	s, err = b.run(ctx, memoryReleases)
	if err != nil {
		return nil, fmt.Errorf("with %d unmanaged objects: %w", n, err)
	}
	res.With = memoryRun{PeakRSSMiB: s.PeakRSSMiB, RSSMiB: s.RSSMiB, Requests: total(s.Requests)}
	b.logf("[memory] peak RSS %.1f MiB empty, %.1f MiB with %d unmanaged (×%.3f); RSS at the end %.1f / %.1f MiB",
		res.Empty.PeakRSSMiB, res.With.PeakRSSMiB, n, res.With.PeakRSSMiB/res.Empty.PeakRSSMiB, res.Empty.RSSMiB, res.With.RSSMiB)
	return res, nil
}

// createUnmanaged creates, in their own namespace, n of each object a cluster is full of and
// Sluice does not manage: Deployments (paused at 0 replicas: no ReplicaSet or pod is made for
// them, yet they are whole Deployments), Services in front of them, and bare ReplicaSets (0
// replicas, labels no Deployment selects, so none adopts them).
func (b *bench) createUnmanaged(ctx context.Context, n int) error {
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: unmanagedNamespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", unmanagedNamespace, err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("other-%05d", i)
	}
	ns := unmanagedNamespace
	return forEach(names, func(name string) error {
		d := deployment(ns, name, nil, map[string]string{"team": "someone-else"})
		d.Spec.Replicas, d.Spec.Paused = ptr.To[int32](0), true
		if _, err := b.cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Deployment %s: %w", name, err)
		}
		if _, err := b.cs.CoreV1().Services(ns).Create(ctx, service(ns, name), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s: %w", name, err)
		}
		// A bare ReplicaSet of the same pod template under labels of its own.
		labels := map[string]string{"app": name + "-batch", "pod-template-hash": "5d8f9c7b6a"}
		tmpl := deployment(ns, name, nil, nil).Spec.Template
		tmpl.Labels = labels
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-5d8f9c7b6a", Namespace: ns, Labels: labels},
			Spec: appsv1.ReplicaSetSpec{
				Replicas: ptr.To[int32](0),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: tmpl,
			},
		}
		if _, err := b.cs.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create ReplicaSet %s: %w", rs.Name, err)
		}
		return nil
	})
}

// waitUnmanagedSeen waits until the Deployment and ReplicaSet controllers have written the
// status of the last unmanaged Deployment and ReplicaSet created (each works through its queue
// in order, at its client's 20 requests/s), and the EndpointSlice controller has made the last
// Service's slice: the second run then measures Sluice, not a cluster still catching up.
func (b *bench) waitUnmanagedSeen(ctx context.Context, n int) error {
	last := fmt.Sprintf("other-%05d", n-1)
	ns := unmanagedNamespace
	deadline := time.Now().Add(30 * time.Minute)
	for tick := 0; ; tick++ {
		d, derr := b.cs.AppsV1().Deployments(ns).Get(ctx, last, metav1.GetOptions{})
		rs, rerr := b.cs.AppsV1().ReplicaSets(ns).Get(ctx, last+"-5d8f9c7b6a", metav1.GetOptions{})
		slices, serr := b.cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + last})
		if err := errors.Join(derr, rerr, serr); err != nil {
			return err
		}
		if d.Status.ObservedGeneration >= d.Generation && rs.Status.ObservedGeneration >= rs.Generation && len(slices.Items) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the controller-manager has not seen the unmanaged objects within 30 min")
		}
		if tick%6 == 0 {
			b.logf("[memory] waiting: Deployment %s observed %t, ReplicaSet observed %t, EndpointSlice %t", last,
				d.Status.ObservedGeneration >= d.Generation, rs.Status.ObservedGeneration >= rs.Generation, len(slices.Items) > 0)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}
