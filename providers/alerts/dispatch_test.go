package alerts_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-dev/sluice/providers/alerts"
	"github.com/sluice-dev/sluice/providers/hooks"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// The tests below read AlertProviders and Secrets through controller-runtime's fake client: a
// narrow unit case (what is read, and how it becomes a notifier). The e2e suite posts alerts
// with the real API server.

// post is one request a sink received.
type post struct {
	path, auth string
	alert      genericAlert
	hook       hooks.Payload
}

type genericAlert struct {
	Source, Severity, Message, Namespace, Deployment, Revision, Image, Phase, Check, Value string
	Weight                                                                                 int
}

// sink is a local receiver of generic alerts and hook payloads; hang makes it hold every
// request until the test ends; echo makes it refuse every post, quoting the request back.
type sink struct {
	*httptest.Server
	mu    sync.Mutex
	posts []post
}

func newSink(t *testing.T, hang, echo bool) *sink {
	t.Helper()
	s := &sink{}
	stop := make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p := post{path: r.URL.Path, auth: r.Header.Get("Authorization")}
		_ = json.Unmarshal(body, &p.alert)
		_ = json.Unmarshal(body, &p.hook)
		s.mu.Lock()
		s.posts = append(s.posts, p)
		s.mu.Unlock()
		if hang {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
			return
		}
		if echo {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "bad request to "+r.URL.String()+" with "+r.Header.Get("Authorization"))
		}
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(stop) })
	return s
}

func (s *sink) got() []post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.posts)
}

// messages are the alert messages received at path ("" for every path).
func (s *sink) messages(path string) []string {
	var out []string
	for _, p := range s.got() {
		if path == "" || p.path == path {
			out = append(out, p.alert.Message)
		}
	}
	return out
}

// eventually polls cond every 10ms for at most 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counting is a client.Reader that counts its reads.
type counting struct {
	client.Reader
	gets atomic.Int32
}

func (c *counting) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets.Add(1)
	return c.Reader.Get(ctx, key, obj, opts...)
}

func reader(t *testing.T, objs ...client.Object) *counting {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := spec.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return &counting{Reader: fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()}
}

func provider(ns, name string, s spec.AlertProviderSpec) *spec.AlertProvider {
	return &spec.AlertProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: s}
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// logs collects what the dispatcher logs.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) sink(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, args)
}

func (l *logs) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// clock is a settable clock.
type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time                { return time.Unix(0, c.now.Load()) }
func (c *clock) add(d time.Duration)           { c.now.Add(int64(d)) }
func newClock(t time.Time) *clock              { c := &clock{}; c.now.Store(t.UnixNano()); return c }
func start(t *testing.T, d *alerts.Dispatcher) { t.Helper(); go func() { _ = d.Start(t.Context()) }() }

func dispatcher(t *testing.T, r client.Reader, o alerts.DispatcherOptions) (*alerts.Dispatcher, *logs) {
	t.Helper()
	l := &logs{}
	o.Log = funcr.New(l.sink, funcr.Options{})
	c := hooks.New()
	c.Backoff = func(int) time.Duration { return time.Millisecond }
	return alerts.NewDispatcher(r, c, o), l
}

var at = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func notice(events ...spec.Event) spec.Notice {
	v := 87.5
	return spec.Notice{Namespace: "shop", Name: "web", Revision: "5d8c7f9b4a", Image: "ghcr.io/acme/web:v2",
		Phase: spec.PhaseProgressing, Weight: 20, At: at, Events: events,
		Checks: []spec.CheckResult{{Name: "request-success-rate", Value: &v, Verdict: spec.VerdictFail, Reason: "87.5 outside min 99"}}}
}

// counter reads a counter of controller-runtime's registry (where /metrics serves it from).
func counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s %v on controller-runtime's registry", name, labels)
	return 0
}

// An alert goes to the address in its AlertProvider's Secret, with the Secret's token, and
// names the release, its revision, image, phase, weight and the failing check with its value.
// Controller-wide default alerts go to their provider in its own namespace too.
func TestDispatcherPostsThroughTheProvidersSecret(t *testing.T) {
	team := newSink(t, false, false)
	ops := newSink(t, false, false)
	secretPath := "/services/T0001/B0002/s3cr3tPath"
	r := reader(t,
		provider("shop", "chat", spec.AlertProviderSpec{Type: spec.AlertGeneric, SecretRef: &spec.SecretRef{Name: "chat-url"}}),
		secret("shop", "chat-url", map[string]string{"address": team.URL + secretPath, "token": "tok-5ecret-value"}),
		provider("sluice-system", "ops", spec.AlertProviderSpec{Type: spec.AlertGeneric, Address: ops.URL + "/ops"}),
	)
	d, l := dispatcher(t, r, alerts.DispatcherOptions{Defaults: []spec.Alert{
		{Name: "ops", Severity: spec.SeverityError, ProviderRef: spec.AlertProviderRef{Namespace: "sluice-system", Name: "ops"}},
	}})
	start(t, d)
	n := notice(spec.WarningEvent(spec.ReasonRollingBack, "rolling back web: request-success-rate failed 5 times"))
	n.Phase = spec.PhaseRollingBack
	n.Alerts = []spec.Alert{{Name: "team", ProviderRef: spec.AlertProviderRef{Name: "chat"}}}
	d.Notify(n)

	eventually(t, "both alerts", func() bool { return len(team.got()) == 1 && len(ops.got()) == 1 })
	got := team.got()[0]
	if got.path != secretPath || got.auth != "Bearer tok-5ecret-value" {
		t.Errorf("posted to path %q with Authorization %q; want the Secret's address and token", got.path, got.auth)
	}
	want := genericAlert{Source: "sluice", Severity: "error", Message: "rolling back web: request-success-rate failed 5 times",
		Namespace: "shop", Deployment: "web", Revision: "5d8c7f9b4a", Image: "ghcr.io/acme/web:v2", Phase: "RollingBack",
		Weight: 20, Check: "request-success-rate", Value: "87.5 outside min 99"}
	if diff := cmp.Diff(want, got.alert); diff != "" {
		t.Errorf("alert (-want +got):\n%s", diff)
	}
	if got := ops.got()[0]; got.path != "/ops" || got.alert != want {
		t.Errorf("default alert: %+v", got)
	}
	if text := l.text(); strings.Contains(text, "s3cr3tPath") || strings.Contains(text, "tok-5ecret") {
		t.Errorf("the log carries the address or the token:\n%s", text)
	}
}

// An alert of severity s receives messages of s and above (none: info).
func TestDispatcherFiltersBySeverity(t *testing.T) {
	s := newSink(t, false, false)
	var objs []client.Object
	var as []spec.Alert
	for _, sev := range []spec.AlertSeverity{"", spec.SeverityInfo, spec.SeverityWarn, spec.SeverityError} {
		name := "p-" + string(sev)
		objs = append(objs, provider("shop", name, spec.AlertProviderSpec{Type: spec.AlertGeneric, Address: s.URL + "/" + name}))
		as = append(as, spec.Alert{Name: name, Severity: sev, ProviderRef: spec.AlertProviderRef{Name: name}})
	}
	d, _ := dispatcher(t, reader(t, objs...), alerts.DispatcherOptions{})
	start(t, d)
	n := notice(spec.WarningEvent(spec.ReasonCheckFailed, "check failed"), spec.NormalEvent(spec.ReasonWeightAdvanced, "advanced"),
		spec.WarningEvent(spec.ReasonRollingBack, "rolling back"), spec.NormalEvent(spec.ReasonPromoted, "promoted"))
	n.Alerts = as
	d.Notify(n)

	eventually(t, "9 alerts", func() bool { return len(s.got()) == 9 })
	for path, want := range map[string][]string{
		"/p-":      {"check failed", "rolling back", "promoted"},
		"/p-info":  {"check failed", "rolling back", "promoted"},
		"/p-warn":  {"check failed", "rolling back"},
		"/p-error": {"rolling back"},
	} {
		if diff := cmp.Diff(want, s.messages(path)); diff != "" {
			t.Errorf("%s received (-want +got):\n%s", path, diff)
		}
	}
}

// A release waiting at a closed gate alerts once, however often the step tells it again (with
// another message), until the window has passed; a muted gate alerts nobody.
func TestDispatcherDedupesAWaitingGate(t *testing.T) {
	s := newSink(t, false, false)
	clk := newClock(at)
	d, _ := dispatcher(t, reader(t, provider("shop", "chat", spec.AlertProviderSpec{Type: spec.AlertGeneric, Address: s.URL})),
		alerts.DispatcherOptions{DedupeWindow: time.Hour, Now: clk.Now})
	start(t, d)
	dedup := func() float64 {
		return counter(t, "sluice_notifications_total", map[string]string{"kind": "alert", "result": "deduplicated"})
	}
	before := dedup()
	waiting := func(msg string, mute bool) spec.Notice {
		e := spec.WarningEvent(spec.ReasonWaiting, msg)
		e.MuteAlert = mute
		n := notice(e)
		n.Phase = spec.PhaseWaiting
		n.Alerts = []spec.Alert{{Name: "chat", ProviderRef: spec.AlertProviderRef{Name: "chat"}}}
		return n
	}
	for i, msg := range []string{"waiting at confirm-promotion since 12:00:00 (1m)", "… (2m)", "… (3m)"} {
		clk.add(time.Minute)
		d.Notify(waiting(msg, false))
		if i == 0 {
			eventually(t, "the first alert", func() bool { return len(s.got()) == 1 })
		}
	}
	d.Notify(waiting("muted", true))
	marker := waiting("", false)
	marker.Events = []spec.Event{spec.NormalEvent(spec.ReasonPromoted, "marker")}
	d.Notify(marker)
	eventually(t, "the marker", func() bool { return len(s.got()) == 2 })
	if diff := cmp.Diff([]string{"waiting at confirm-promotion since 12:00:00 (1m)", "marker"}, s.messages("")); diff != "" {
		t.Errorf("posted (-want +got):\n%s", diff)
	}
	if got := dedup() - before; got != 2 {
		t.Errorf("sluice_notifications_total{deduplicated} grew by %g, want 2", got)
	}
	// A window later, the reminder.
	clk.add(time.Hour)
	d.Notify(waiting("still waiting", false))
	eventually(t, "the reminder", func() bool { return len(s.got()) == 3 })
}

// Every Event of a notice goes to each event hook, in order, with Flagger's event payload;
// hooks of other types receive nothing.
func TestDispatcherEventHooks(t *testing.T) {
	s := newSink(t, false, false)
	d, _ := dispatcher(t, reader(t), alerts.DispatcherOptions{})
	start(t, d)
	n := notice(spec.NormalEvent(spec.ReasonCanaryReady, "canary ready"), spec.WarningEvent(spec.ReasonCheckFailed, "check failed"))
	n.Hooks = []spec.Hook{
		{Name: "events", Type: spec.HookEvent, URL: s.URL + "/events", Metadata: map[string]string{"cluster": "eu-1"}},
		{Name: "load", Type: spec.HookRollout, URL: s.URL + "/load"},
	}
	d.Notify(n)
	eventually(t, "two event payloads", func() bool { return len(s.got()) == 2 })
	ts := "1782907200000"
	want := []hooks.Payload{
		{Name: "web", Namespace: "shop", Phase: "Progressing", Checksum: "5d8c7f9b4a", Type: spec.HookEvent,
			Metadata: map[string]string{"eventMessage": "canary ready", "eventType": "Normal", "timestamp": ts, "cluster": "eu-1"}},
		{Name: "web", Namespace: "shop", Phase: "Progressing", Checksum: "5d8c7f9b4a", Type: spec.HookEvent,
			Metadata: map[string]string{"eventMessage": "check failed", "eventType": "Warning", "timestamp": ts, "cluster": "eu-1"}},
	}
	var got []hooks.Payload
	for _, p := range s.got() {
		if p.path != "/events" {
			t.Errorf("posted to %s", p.path)
		}
		got = append(got, p.hook)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event payloads (-want +got):\n%s", diff)
	}
}

// A receiver that hangs delays only the posts to it: Notify returns at once, and the other
// receivers of the same notice get theirs.
func TestDispatcherSlowReceiverDelaysOnlyItself(t *testing.T) {
	slow := newSink(t, true, false)
	fast := newSink(t, false, false)
	d, _ := dispatcher(t, reader(t,
		provider("shop", "slow", spec.AlertProviderSpec{Type: spec.AlertGeneric, Address: slow.URL}),
		provider("shop", "fast", spec.AlertProviderSpec{Type: spec.AlertGeneric, Address: fast.URL}),
	), alerts.DispatcherOptions{})
	start(t, d)
	began := time.Now()
	for i := range 20 {
		n := notice(spec.WarningEvent(spec.ReasonCheckFailed, "failed"))
		n.Weight = i // a new alert each time
		n.Alerts = []spec.Alert{{Name: "slow", ProviderRef: spec.AlertProviderRef{Name: "slow"}}, {Name: "fast", ProviderRef: spec.AlertProviderRef{Name: "fast"}}}
		n.Hooks = []spec.Hook{{Name: "slow-events", Type: spec.HookEvent, URL: slow.URL + "/events", Timeout: "1h"}}
		d.Notify(n)
	}
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Errorf("20 Notify calls took %s", took)
	}
	eventually(t, "the fast receiver's 20 alerts", func() bool { return len(fast.got()) == 20 })
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("the fast receiver waited %s behind the slow one", took)
	}
}

// Notices beyond the queue are dropped and counted, never waited for.
func TestDispatcherDropsWhenTheQueueIsFull(t *testing.T) {
	d, _ := dispatcher(t, reader(t), alerts.DispatcherOptions{Queue: 2}) // not started: nothing leaves the queue
	drops := func() float64 {
		return counter(t, "sluice_notifications_dropped_total", map[string]string{"queue": "notices"})
	}
	before := drops()
	returned := make(chan struct{})
	go func() {
		for range 5 {
			d.Notify(notice(spec.WarningEvent(spec.ReasonCheckFailed, "failed")))
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify blocks on a full queue")
	}
	if got := drops() - before; got != 3 {
		t.Errorf("sluice_notifications_dropped_total{queue=notices} grew by %g, want 3", got)
	}
}

// What cannot be posted is logged with the AlertProvider's name and counted as failed, and
// never with the address or the token — not even when the service quotes them back.
func TestDispatcherFailuresNameTheProviderNotItsSecret(t *testing.T) {
	echo := newSink(t, false, true)
	r := reader(t,
		provider("shop", "echo", spec.AlertProviderSpec{Type: spec.AlertGeneric, SecretRef: &spec.SecretRef{Name: "echo"}}),
		secret("shop", "echo", map[string]string{"address": echo.URL + "/hook/xoxb-Secret-Path?key=qu3ry-k3y", "token": "t0ken-v4lue"}),
		provider("shop", "no-address", spec.AlertProviderSpec{Type: spec.AlertSlack, SecretRef: &spec.SecretRef{Name: "empty"}}),
		secret("shop", "empty", map[string]string{"token": "t0ken-v4lue"}),
		provider("shop", "no-secret", spec.AlertProviderSpec{Type: spec.AlertSlack, SecretRef: &spec.SecretRef{Name: "gone"}}),
	)
	d, l := dispatcher(t, r, alerts.DispatcherOptions{})
	start(t, d)
	failed := func() float64 {
		return counter(t, "sluice_notifications_total", map[string]string{"kind": "alert", "result": "failed"})
	}
	before := failed()
	n := notice(spec.WarningEvent(spec.ReasonRollingBack, "rolling back"))
	for _, p := range []string{"echo", "no-address", "no-secret", "missing"} {
		n.Alerts = append(n.Alerts, spec.Alert{Name: p, ProviderRef: spec.AlertProviderRef{Name: p}})
	}
	d.Notify(n)
	eventually(t, "four failures", func() bool { return failed()-before == 4 })
	text := l.text()
	for _, want := range []string{
		`"alertProvider"="shop/echo"`, "generic: HTTP 500",
		"Secret shop/empty of AlertProvider shop/no-address has no key address",
		"read Secret shop/gone of AlertProvider shop/no-secret",
		"read AlertProvider shop/missing",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
	for _, secret := range []string{"xoxb-Secret-Path", "qu3ry-k3y", "t0ken-v4lue"} {
		if strings.Contains(text, secret) {
			t.Errorf("log carries %q:\n%s", secret, text)
		}
	}
	if len(echo.got()) != 1 {
		t.Errorf("the echoing service got %d posts, want 1 (alerts are not retried)", len(echo.got()))
	}
}

// A resolved provider is reused for a minute, then read again (an edited AlertProvider or a
// rotated Secret is picked up).
func TestDispatcherRereadsTheProviderAfterAMinute(t *testing.T) {
	s := newSink(t, false, false)
	r := reader(t,
		provider("shop", "chat", spec.AlertProviderSpec{Type: spec.AlertGeneric, SecretRef: &spec.SecretRef{Name: "chat"}}),
		secret("shop", "chat", map[string]string{"address": s.URL + "/old"}))
	clk := newClock(at)
	d, _ := dispatcher(t, r, alerts.DispatcherOptions{Now: clk.Now})
	start(t, d)
	send := func(weight int) {
		n := notice(spec.WarningEvent(spec.ReasonCheckFailed, "failed"))
		n.Weight = weight
		n.Alerts = []spec.Alert{{Name: "chat", ProviderRef: spec.AlertProviderRef{Name: "chat"}}}
		d.Notify(n)
	}
	send(10)
	send(20)
	eventually(t, "two alerts", func() bool { return len(s.got()) == 2 })
	if gets := r.gets.Load(); gets != 2 {
		t.Errorf("%d reads for two alerts, want 2 (the provider and its Secret, once)", gets)
	}
	var sec corev1.Secret
	if err := r.Reader.(client.Client).Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "chat"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["address"] = []byte(s.URL + "/new")
	if err := r.Reader.(client.Client).Update(t.Context(), &sec); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Minute)
	send(30)
	eventually(t, "the third alert", func() bool { return len(s.got()) == 3 })
	if p := s.got()[2].path; p != "/new" {
		t.Errorf("after the Secret changed and a minute passed, posted to %s, want /new", p)
	}
}
