package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
)

// tracker holds the releases of one run and what the controller-specific code keeps per
// Deployment while watch events arrive. Its waits are woken by events, never by a timer.
type tracker struct {
	mu       sync.Mutex
	names    []string
	releases map[string]*release
	ready    map[string]bool // ready to be released (before set image)
	notes    map[string]map[string]string
	changed  chan struct{}
}

func newTracker(names []string) *tracker {
	t := &tracker{
		names: names, releases: map[string]*release{}, ready: map[string]bool{},
		notes: map[string]map[string]string{}, changed: make(chan struct{}),
	}
	for _, n := range names {
		t.releases[n] = &release{Name: n}
		t.notes[n] = map[string]string{}
	}
	return t
}

// update runs fn under the lock and wakes the waiters.
func (t *tracker) update(fn func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn()
	close(t.changed)
	t.changed = make(chan struct{})
}

// wait returns once cond holds, re-checking it after every event. Every 10 s it prints cond's
// detail as a progress line.
func (t *tracker) wait(ctx context.Context, timeout time.Duration, what string, progress func(string, ...any), cond func() (bool, string)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	start := time.Now()
	for {
		t.mu.Lock()
		ok, detail := cond()
		changed := t.changed
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-tick.C:
			progress("%s: %s (%s)", what, detail, time.Since(start).Round(time.Second))
		case <-deadline.C:
			return fmt.Errorf("%s: not reached within %s: %s", what, timeout, detail)
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

// countReleases counts the releases for which pred holds; call it under the lock (in cond).
func (t *tracker) countReleases(pred func(*release) bool) int {
	n := 0
	for _, r := range t.releases {
		if pred(r) {
			n++
		}
	}
	return n
}

// watchAll lists and then watches resource gvr in namespace ns until ctx ends, calling handle
// with every object and the time its event arrived (for the initial list, the time the list
// returned). A watch that ends is resumed from the last resource version; one that expired
// (410 Gone) is replaced by a new list.
func watchAll(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns string,
	handle func(typ watch.EventType, obj *unstructured.Unstructured, at time.Time), logf func(string, ...any)) error {
	api := dyn.Resource(gvr).Namespace(ns)
	relist := func() (string, error) {
		list, err := api.List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", fmt.Errorf("list %s in %s: %w", gvr.Resource, ns, err)
		}
		at := time.Now()
		for i := range list.Items {
			handle(watch.Added, &list.Items[i], at)
		}
		return list.GetResourceVersion(), nil
	}
	rv, err := relist()
	if err != nil {
		return err
	}
	go func() {
		for ctx.Err() == nil {
			if rv == "" {
				if rv, err = relist(); err != nil {
					logf("watch %s: %v", gvr.Resource, err)
					retryPause(ctx)
					continue
				}
			}
			w, err := api.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					rv = ""
				} else if ctx.Err() == nil {
					logf("watch %s: %v", gvr.Resource, err)
				}
				retryPause(ctx)
				continue
			}
			for ev := range w.ResultChan() {
				at := time.Now()
				switch ev.Type {
				case watch.Added, watch.Modified, watch.Deleted:
					obj := ev.Object.(*unstructured.Unstructured)
					rv = obj.GetResourceVersion()
					handle(ev.Type, obj, at)
				case watch.Bookmark:
					if obj, ok := ev.Object.(*unstructured.Unstructured); ok {
						rv = obj.GetResourceVersion()
					}
				case watch.Error:
					// Almost always 410 Gone: the resource version is too old to resume from.
					rv = ""
				}
			}
			w.Stop()
		}
	}()
	return nil
}

// retryPause waits a moment before a failed list or watch is tried again.
func retryPause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(500 * time.Millisecond):
	}
}
