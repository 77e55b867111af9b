package demoapp

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
)

// runLoad runs l until stop holds, then stops it and returns its stats.
func runLoad(t *testing.T, l *Load, what string, stop func(Stats) bool) Stats {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	eventually(t, what, func() bool { return stop(l.Stats()) })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Load.Run() = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load.Run did not return after its context ended")
	}
	return l.Stats()
}

func TestLoadSpreadsOverEligiblePodsOnly(t *testing.T) {
	f := &Fleet{Client: fake.NewClientset(
		testPod("web-a").Running("127.1.200.50").Ready().Pod,
		testPod("web-b").Running("127.1.200.51").Ready().Pod,
		testPod("web-unready").Running("127.1.200.52").Pod,
		testPod("other-app").Running("127.1.200.53").Ready().Label("app", "other").Pod,
		testPod("web-terminating").Running("127.1.200.54").Ready().Terminating().Pod,
	), Namespace: testNamespace}
	startFleet(t, f)
	eventually(t, "all pods are served", func() bool { return len(f.Serving()) == 5 })

	const requests = 200
	l := &Load{Fleet: f, RPS: 400, Selector: labels.SelectorFromSet(labels.Set{"app": "web"}), Timeout: time.Second}
	stats := runLoad(t, l, "the load has sent enough requests", func(s Stats) bool { return s.Total() >= requests })

	if diff := cmp.Diff([]string{"web-a", "web-b"}, slices.Sorted(maps.Keys(stats.Pods))); diff != "" {
		t.Fatalf("pods that got requests (-want +got):\n%s", diff)
	}
	total := stats.Total()
	for name, p := range stats.Pods {
		if diff := cmp.Diff(map[int]int{200: p.Total()}, p.Codes); diff != "" || p.Errors != 0 {
			t.Errorf("pod %s: codes (-want +got):\n%s\nerrors: %d", name, diff, p.Errors)
		}
		// Uniform over two pods: each gets half, give or take; a quarter is seven standard
		// deviations away at 200 requests.
		if p.Total() < total/4 {
			t.Errorf("pod %s got %d of %d requests, want about half", name, p.Total(), total)
		}
	}
	if stats.NoEndpoints != 0 || stats.Dropped != 0 {
		t.Errorf("NoEndpoints = %d, Dropped = %d, want 0 and 0", stats.NoEndpoints, stats.Dropped)
	}
}

func TestLoadCountsStatusesPerPod(t *testing.T) {
	f := &Fleet{Client: fake.NewClientset(
		testPod("bad").Running("127.1.200.55").Ready().Image("demo:v2-bad").Pod,
	), Namespace: testNamespace}
	startFleet(t, f)
	eventually(t, "the pod is served", func() bool { return len(f.Serving()) == 1 })

	l := &Load{Fleet: f, RPS: 200}
	stats := runLoad(t, l, "the load has sent enough requests", func(s Stats) bool { return s.Total() >= 40 })
	p := stats.Pods["bad"]
	// The pod fails every other request it serves. Load does not count the few requests in
	// flight when it stops, so allow for them.
	if ok, failed := p.Codes[200], p.Codes[500]; ok+failed != p.Total() || ok-failed > 5 || failed-ok > 5 {
		t.Errorf("bad pod answered %v with %d errors, want about as many 200s as 500s", p.Codes, p.Errors)
	}
}

func TestLoadWithoutEndpoints(t *testing.T) {
	f := &Fleet{Client: fake.NewClientset(
		testPod("web-unready").Running("127.1.200.56").Pod,
	), Namespace: testNamespace}
	startFleet(t, f)
	eventually(t, "the pod is served", func() bool { return len(f.Serving()) == 1 })

	l := &Load{Fleet: f, RPS: 200}
	stats := runLoad(t, l, "requests found no endpoint", func(s Stats) bool { return s.NoEndpoints >= 10 })
	if len(stats.Pods) != 0 {
		t.Errorf("Pods = %v, want none", stats.Pods)
	}
}

func TestLoadRunRejectsBadConfig(t *testing.T) {
	f := &Fleet{}
	tests := map[string]struct {
		load    *Load
		wantErr string
	}{
		"no fleet":         {load: &Load{RPS: 10}, wantErr: "needs a Fleet"},
		"zero rps":         {load: &Load{Fleet: f}, wantErr: "RPS 0 is not within 1 to 1000"},
		"too many rps":     {load: &Load{Fleet: f, RPS: MaxRPS + 1}, wantErr: "RPS 1001 is not within 1 to 1000"},
		"negative timeout": {load: &Load{Fleet: f, RPS: 1, Timeout: -time.Second}, wantErr: "Timeout -1s"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.load.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Run() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestStatsIsACopy(t *testing.T) {
	l := &Load{}
	l.recordPod("web", 200)
	s := l.Stats()
	s.Pods["web"].Codes[200] = 99
	if got := l.Stats().Pods["web"].Codes[200]; got != 1 {
		t.Errorf("Stats() after mutating a snapshot = %d, want 1", got)
	}
}
