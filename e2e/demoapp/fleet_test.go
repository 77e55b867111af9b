package demoapp

import (
	"context"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes/fake"
)

func TestFleetServesPodsByBehaviour(t *testing.T) {
	good := testPod("good").Running("127.1.200.1").Ready().Image("demo:v1")
	bad := testPod("bad").Running("127.1.200.2").Ready().Image("demo:v2-bad")
	slow := testPod("slow").Running("127.1.200.3").Ready().Image("demo:v2-slow")
	f := &Fleet{Client: fake.NewClientset(good.Pod, bad.Pod, slow.Pod), Namespace: testNamespace}
	startFleet(t, f)
	eventually(t, "all three pods are served", func() bool { return len(f.Serving()) == 3 })

	tests := map[string]struct {
		ip          string
		requests    int
		wantCodes   []int
		wantMetrics []string
		minLatency  time.Duration
	}{
		"good answers 200": {
			ip:          "127.1.200.1",
			requests:    4,
			wantCodes:   []int{200, 200, 200, 200},
			wantMetrics: []string{`http_requests_total{code="200",method="get"} 4`},
		},
		"bad fails every other request": {
			ip:        "127.1.200.2",
			requests:  4,
			wantCodes: []int{200, 500, 200, 500},
			wantMetrics: []string{
				`http_requests_total{code="200",method="get"} 2`,
				`http_requests_total{code="500",method="get"} 2`,
			},
		},
		"slow answers 200 after 800ms": {
			ip:          "127.1.200.3",
			requests:    1,
			wantCodes:   []int{200},
			wantMetrics: []string{`http_requests_total{code="200",method="get"} 1`},
			minLatency:  800 * time.Millisecond,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			base := "http://" + tc.ip + ":8080"
			var codes []int
			for range tc.requests {
				start := time.Now()
				code, _ := get(t, base+"/")
				if took := time.Since(start); took < tc.minLatency {
					t.Errorf("request took %v, want at least %v", took, tc.minLatency)
				}
				codes = append(codes, code)
			}
			if diff := cmp.Diff(tc.wantCodes, codes); diff != "" {
				t.Errorf("status codes (-want +got):\n%s", diff)
			}

			get(t, base+"/metrics") // a scrape, which must not count as a request
			code, page := get(t, base+"/metrics")
			if code != http.StatusOK {
				t.Fatalf("GET /metrics = %d, want 200", code)
			}
			if diff := cmp.Diff(tc.wantMetrics, metricLines(page, "http_requests_total{")); diff != "" {
				t.Errorf("http_requests_total series (-want +got):\n%s", diff)
			}
			for _, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5"} {
				want := `http_request_duration_seconds_bucket{code="200",method="get",le="` + le + `"}`
				if !strings.Contains(page, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			if got := metricLines(page, "demoapp_info{"); len(got) != 1 {
				t.Errorf("demoapp_info series = %q, want one", got)
			}
		})
	}
}

func TestFleetServesOnlyRunningLoopbackPodsItSelects(t *testing.T) {
	client := fake.NewClientset(
		testPod("served").Running("127.1.200.10").Pod,
		testPod("served-not-ready").Running("127.1.200.11").Pod,
		testPod("pending").Pod,
		testPod("other-app").Running("127.1.200.12").Label("app", "other").Pod,
		testPod("not-loopback").Running("192.0.2.10").Pod,
		testPod("succeeded").Running("127.1.200.13").Pod,
	)
	succeeded, err := client.CoreV1().Pods(testNamespace).Get(t.Context(), "succeeded", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	succeeded.Status.Phase = corev1.PodSucceeded
	if _, err := client.CoreV1().Pods(testNamespace).UpdateStatus(t.Context(), succeeded, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	otherNamespace := testPod("elsewhere").Running("127.1.200.14").Pod
	otherNamespace.Namespace = "elsewhere"
	if _, err := client.CoreV1().Pods("elsewhere").Create(t.Context(), otherNamespace, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	f := &Fleet{Client: client, Namespace: testNamespace, Selector: labels.SelectorFromSet(labels.Set{"app": "web"})}
	startFleet(t, f)
	// One sync looks at every pod, so once the served pods are up the others were judged too.
	eventually(t, "the web pods are served", func() bool { return len(f.Serving()) >= 2 })
	if diff := cmp.Diff([]string{"served", "served-not-ready"}, servedPods(f)); diff != "" {
		t.Errorf("served pods (-want +got):\n%s", diff)
	}
	for _, addr := range []string{"127.1.200.12:8080", "127.1.200.13:8080", "127.1.200.14:8080"} {
		if !bindable(addr) {
			t.Errorf("%s is bound, want it free", addr)
		}
	}
}

func TestFleetReleasesAddressWhenPodStopsServing(t *testing.T) {
	tests := map[string]struct {
		ip     string
		change func(t *testing.T, f *Fleet, pod *corev1.Pod)
	}{
		"pod deleted": {
			ip: "127.1.200.20",
			change: func(t *testing.T, f *Fleet, pod *corev1.Pod) {
				if err := f.Client.CoreV1().Pods(pod.Namespace).Delete(t.Context(), pod.Name, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			},
		},
		"pod lost its IP": {
			ip: "127.1.200.21",
			change: func(t *testing.T, f *Fleet, pod *corev1.Pod) {
				pod.Status.PodIP, pod.Status.PodIPs = "", nil
				updateStatus(t, f, pod)
			},
		},
		"pod failed": {
			ip: "127.1.200.22",
			change: func(t *testing.T, f *Fleet, pod *corev1.Pod) {
				pod.Status.Phase = corev1.PodFailed
				updateStatus(t, f, pod)
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := testPod("web").Running(tc.ip).Ready().Pod
			f := &Fleet{Client: fake.NewClientset(pod.DeepCopy()), Namespace: testNamespace}
			startFleet(t, f)
			addr := tc.ip + ":8080"
			eventually(t, "the pod is served", func() bool { return len(f.Serving()) == 1 })
			if code, _ := get(t, "http://"+addr+"/"); code != http.StatusOK {
				t.Fatalf("GET / = %d, want 200", code)
			}

			tc.change(t, f, pod)
			eventually(t, "the pod is no longer served", func() bool { return len(f.Serving()) == 0 })
			// The address is released before the pod leaves Serving, so no polling here.
			if !bindable(addr) {
				t.Errorf("%s is still bound after the pod stopped serving", addr)
			}
		})
	}
}

func updateStatus(t *testing.T, f *Fleet, pod *corev1.Pod) {
	t.Helper()
	if _, err := f.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestFleetRestartsServerWhenImageChanges(t *testing.T) {
	pod := testPod("web").Running("127.1.200.30").Ready().Image("demo:v1").Pod
	f := &Fleet{Client: fake.NewClientset(pod.DeepCopy()), Namespace: testNamespace}
	startFleet(t, f)
	eventually(t, "the pod is served", func() bool { return len(f.Serving()) == 1 })
	base := "http://127.1.200.30:8080"
	for range 3 {
		if code, _ := get(t, base+"/"); code != http.StatusOK {
			t.Fatalf("GET / = %d, want 200", code)
		}
	}

	pod.Spec.Containers[0].Image = "demo:v2-bad"
	if _, err := f.Client.CoreV1().Pods(testNamespace).Update(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pod is served as bad", func() bool {
		eps := f.Serving()
		return len(eps) == 1 && eps[0].Behaviour.Name == "bad"
	})
	var codes []int
	for range 2 {
		code, _ := get(t, base+"/")
		codes = append(codes, code)
	}
	if diff := cmp.Diff([]int{200, 500}, codes); diff != "" {
		t.Errorf("status codes after the image change (-want +got):\n%s", diff)
	}
	// A restarted container starts its counters from zero.
	_, page := get(t, base+"/metrics")
	want := []string{`http_requests_total{code="200",method="get"} 1`, `http_requests_total{code="500",method="get"} 1`}
	if diff := cmp.Diff(want, metricLines(page, "http_requests_total{")); diff != "" {
		t.Errorf("http_requests_total series (-want +got):\n%s", diff)
	}
}

func TestFleetEndpoints(t *testing.T) {
	web := labels.SelectorFromSet(labels.Set{"app": "web"})
	tests := map[string]struct {
		ip     string
		change func(pod *corev1.Pod)
	}{
		"pod turns unready": {
			ip:     "127.1.200.60",
			change: func(pod *corev1.Pod) { pod.Status.Conditions[0].Status = corev1.ConditionFalse },
		},
		"pod starts terminating": {
			ip:     "127.1.200.61",
			change: func(pod *corev1.Pod) { pod.DeletionTimestamp = testPod("x").Terminating().DeletionTimestamp },
		},
		"pod leaves the selector": {
			ip:     "127.1.200.62",
			change: func(pod *corev1.Pod) { pod.Labels["app"] = "web-old" },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := testPod("web").Running(tc.ip).Ready().Pod
			f := &Fleet{Client: fake.NewClientset(pod.DeepCopy()), Namespace: testNamespace}
			startFleet(t, f)
			eventually(t, "the pod is an endpoint", func() bool { return len(f.Endpoints(web)) == 1 })

			tc.change(pod)
			if _, err := f.Client.CoreV1().Pods(testNamespace).Update(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the pod is no endpoint", func() bool { return len(f.Endpoints(web)) == 0 })
			// Still running with its IP: still served, as a real pod keeps running.
			if diff := cmp.Diff([]string{"web"}, servedPods(f)); diff != "" {
				t.Errorf("served pods (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFleetRunStopsEverything(t *testing.T) {
	pods := []*corev1.Pod{
		testPod("a").Running("127.1.200.40").Ready().Pod,
		testPod("b").Running("127.1.200.41").Ready().Image("demo:bad").Pod,
		testPod("c").Running("127.1.200.42").Ready().Image("demo:slow").Pod,
	}
	client := fake.NewClientset(pods[0], pods[1], pods[2])
	goroutines := runtime.NumGoroutine()
	f := &Fleet{Client: client, Namespace: testNamespace}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	eventually(t, "all pods are served", func() bool { return len(f.Serving()) == 3 })

	// A slow request in flight when Run stops is answered before Run returns.
	slow := make(chan int, 1)
	go func() {
		code, _ := get(t, "http://127.1.200.42:8080/")
		slow <- code
	}()
	eventually(t, "the slow request is in flight", func() bool {
		_, page := get(t, "http://127.1.200.42:8080/metrics")
		return slices.Contains(metricLines(page, "http_requests_in_flight"), "http_requests_in_flight 1")
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	for _, pod := range pods {
		if addr := pod.Status.PodIP + ":8080"; !bindable(addr) {
			t.Errorf("%s is still bound after Run returned", addr)
		}
	}
	if code := <-slow; code != http.StatusOK {
		t.Errorf("slow request in flight during shutdown = %d, want 200", code)
	}
	if got := f.Serving(); len(got) != 0 {
		t.Errorf("Serving() after Run = %v, want none", got)
	}
	// Servers, informer and in-flight handlers are all gone; only the runtime's own
	// bookkeeping may take a moment to notice.
	eventually(t, "no goroutine outlives Run", func() bool { return runtime.NumGoroutine() <= goroutines })
}

func TestFleetRunRejectsBadConfig(t *testing.T) {
	tests := map[string]struct {
		fleet   *Fleet
		wantErr string
	}{
		"no client":    {fleet: &Fleet{Namespace: testNamespace}, wantErr: "needs a Client"},
		"no namespace": {fleet: &Fleet{Client: fake.NewClientset()}, wantErr: "needs a Namespace"},
		"bad port":     {fleet: &Fleet{Client: fake.NewClientset(), Namespace: testNamespace, Port: 70000}, wantErr: "not a TCP port"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.fleet.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Run() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestFleetRunTwice(t *testing.T) {
	f := &Fleet{Client: fake.NewClientset(), Namespace: testNamespace}
	startFleet(t, f)
	eventually(t, "the first Run is running", func() bool {
		f.mu.RLock()
		defer f.mu.RUnlock()
		return f.running
	})
	if err := f.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run() = %v, want an error containing %q", err, "already running")
	}
}
