package demoapp

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"
)

// Test pods live on 127.1.200.0/24, far from the addresses kwok hands out from 127.1.0.0/16,
// and each test uses addresses of its own.

const testNamespace = "demo"

// podBuilder builds test pods: testPod("web-1").Running("127.1.200.1").Ready().Pod.
type podBuilder struct{ *corev1.Pod }

func testPod(name string) podBuilder {
	return podBuilder{&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: testNamespace,
			UID:       types.UID(name + "-uid"),
			Labels:    map[string]string{"app": "web"},
		},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "demo:v1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}}
}

func (b podBuilder) Running(ip string) podBuilder {
	b.Status.Phase = corev1.PodRunning
	b.Status.PodIP = ip
	b.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	return b
}

func (b podBuilder) Ready() podBuilder {
	b.Status.Conditions = append(b.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	return b
}

func (b podBuilder) Image(image string) podBuilder {
	b.Spec.Containers[0].Image = image
	return b
}

func (b podBuilder) Label(key, value string) podBuilder {
	b.Labels[key] = value
	return b
}

func (b podBuilder) Terminating() podBuilder {
	b.DeletionTimestamp = &metav1.Time{Time: time.Unix(1700000000, 0)}
	return b
}

// startFleet runs f until the test ends, and then checks that Run returned nil.
func startFleet(t *testing.T, f *Fleet) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Fleet.Run() = %v, want nil", err)
		}
	})
}

// eventually polls cond until it holds, failing the test after a timeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}

// servedPods returns the names of the pods f serves.
func servedPods(f *Fleet) []string {
	var names []string
	for _, ep := range f.Serving() {
		names = append(names, ep.Pod)
	}
	return names
}

// get sends one GET without keeping the connection, returning status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{
		Timeout:   3 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// bindable reports whether addr can be listened on, that is nobody holds it.
func bindable(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// metricLines returns the lines of a /metrics page that start with name.
func metricLines(page, name string) []string {
	var lines []string
	for line := range strings.Lines(page) {
		if strings.HasPrefix(line, name) {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	return lines
}
