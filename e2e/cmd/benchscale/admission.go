package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/certs"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

// admissionResult is the latency of Deployment updates through the API server per webhook
// setup, in milliseconds.
type admissionResult struct {
	Date     string             `json:"date"`
	Commit   string             `json:"commit"`
	Note     string             `json:"note,omitempty"`
	Load     float64            `json:"load"`
	Requests int                `json:"requests"`
	Cases    []admissionLatency `json:"cases"`
}

type admissionLatency struct {
	Webhook string  `json:"webhook"`
	P50     float64 `json:"p50ms"`
	P99     float64 `json:"p99ms"`
	// CallMean is the API server's mean time calling the webhook (its own metric: the request
	// sent, the webhook's server, the answer read), ms; 0 for no webhook.
	CallMean float64 `json:"callMeanMs,omitempty"`
	// ServedMean is the webhook server's own mean time per request (Sluice's: controller-runtime's
	// metric, from reading the request to writing the answer), ms; 0 where not measured.
	ServedMean float64 `json:"servedMeanMs,omitempty"`
}

// The three setups, each in its own namespace: no webhook, a no-op webhook that allows
// everything, and Sluice's.
const (
	caseNone   = "none"
	caseNoop   = "no-op"
	caseSluice = "sluice"
	noopLabel  = "bench.sluice.dev/noop"
	// The webhooks' names, as the API server's metrics label them (Sluice's: deploy/webhook.yaml).
	noopWebhookName   = "noop.bench.sluice.dev"
	sluiceWebhookName = "deployments.sluice.dev"
)

var admissionCases = []string{caseNone, caseNoop, caseSluice}

// noopWebhook is an HTTPS admission server on 127.0.0.1 that allows every request unchanged.
type noopWebhook struct {
	url    string
	ca     []byte
	calls  atomic.Int64
	server *http.Server
}

func startNoopWebhook() (*noopWebhook, error) {
	bundle, err := certs.Generate([]string{"127.0.0.1"}, 24*time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(bundle.Cert, bundle.Key)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &noopWebhook{url: "https://" + l.Addr().String() + "/allow", ca: bundle.CACert}
	w.server = &http.Server{
		Handler:           w,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = w.server.ServeTLS(l, "", "") }()
	return w, nil
}

// ServeHTTP answers an AdmissionReview with "allowed", no patch.
func (w *noopWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(rw, "want an AdmissionReview", http.StatusBadRequest)
		return
	}
	w.calls.Add(1)
	out := admissionv1.AdmissionReview{
		TypeMeta: review.TypeMeta,
		Response: &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true},
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(out)
}

func (w *noopWebhook) close() { _ = w.server.Close() }

// measureAdmission times requests sequential Deployment updates per setup: server-side
// dry-run patches that change the image, so Sluice's webhook takes its full path (a held
// release: both templates hashed, the release record built, a patch returned) while nothing
// is stored and no release starts. The setups take turns request by request, so a busy moment
// of the shared machine hits all three alike.
func measureAdmission(ctx context.Context, cs kubernetes.Interface, repo, sluiceMetricsURL string, requests int, logf func(string, ...any)) ([]admissionLatency, error) {
	noop, err := startNoopWebhook()
	if err != nil {
		return nil, fmt.Errorf("start the no-op webhook: %w", err)
	}
	defer noop.close()
	if err := registerNoop(ctx, cs, repo, noop); err != nil {
		return nil, err
	}
	ns := map[string]string{caseNone: "bench-adm-none", caseNoop: "bench-adm-noop", caseSluice: "bench-adm-sluice"}
	nsLabels := map[string]map[string]string{
		caseNone:   {stack.WebhookOffLabel: "true"},
		caseNoop:   {stack.WebhookOffLabel: "true", noopLabel: "true"},
		caseSluice: nil,
	}
	ann := map[string]string{
		spec.AnnStrategy: string(spec.StrategyBlueGreen), spec.AnnIterations: fmt.Sprint(iterations),
		spec.AnnInterval: interval.String(), spec.AnnMetrics: sluiceMetrics,
	}
	for _, c := range admissionCases {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns[c], Labels: nsLabels[c]}}, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create namespace %s: %w", ns[c], err)
		}
		d := deployment(ns[c], "adm", map[string]string{spec.LabelEnabled: spec.ValueEnabled}, ann)
		if _, err := cs.AppsV1().Deployments(ns[c]).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create Deployment in %s: %w", ns[c], err)
		}
	}
	// After a Deployment's create, the Deployment controller writes its revision annotation and
	// Sluice's worker records the stable revision (it manages the opted-in Deployments of every
	// setup): two updates the no-op webhook is called for, at their own pace on a busy control
	// plane. The count starts once both are done and observed; Sluice's webhook holds a
	// template change only once the stable revision is recorded.
	for _, c := range admissionCases {
		if err := waitSettled(ctx, cs, ns[c], "adm"); err != nil {
			return nil, err
		}
	}

	update := func(c string, i int) (time.Duration, *appsv1.Deployment, error) {
		patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":"registry.example/bench/adm:%d"}]}}}}`, container, i)
		start := time.Now()
		d, err := cs.AppsV1().Deployments(ns[c]).Patch(ctx, "adm", types.StrategicMergePatchType, patch,
			metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return time.Since(start), d, err
	}
	noop.calls.Store(0) // the CREATE above went through it
	// Warm up connections and caches, and check each setup is what it claims: only Sluice's
	// holds (pauses) the Deployment, and the no-op webhook sees exactly its namespace's requests.
	const warmup = 10
	for i := range warmup {
		for _, c := range admissionCases {
			_, d, err := update(c, i)
			if err != nil {
				return nil, fmt.Errorf("update through %s: %w", c, err)
			}
			if d.Spec.Paused != (c == caseSluice) {
				return nil, fmt.Errorf("update through %s: paused=%v, want %v (is the webhook set up?)", c, d.Spec.Paused, c == caseSluice)
			}
		}
	}
	if got := noop.calls.Load(); got != warmup {
		return nil, fmt.Errorf("the no-op webhook was called %d times for %d requests in its namespace", got, warmup)
	}
	logf("admission: %d dry-run updates per setup (%s), taking turns", requests, "none, no-op webhook, Sluice's webhook")
	before, err := readCallTotals(ctx, cs, sluiceMetricsURL)
	if err != nil {
		return nil, err
	}
	took := map[string][]time.Duration{}
	for i := range requests {
		for k := range admissionCases {
			c := admissionCases[(i+k)%len(admissionCases)]
			d, _, err := update(c, warmup+i)
			if err != nil {
				return nil, fmt.Errorf("update through %s: %w", c, err)
			}
			took[c] = append(took[c], d)
		}
	}
	after, err := readCallTotals(ctx, cs, sluiceMetricsURL)
	if err != nil {
		return nil, err
	}
	hooks := map[string]string{caseNoop: noopWebhookName, caseSluice: sluiceWebhookName}
	var out []admissionLatency
	for _, c := range admissionCases {
		q := quantilesOf(took[c])
		l := admissionLatency{Webhook: c, P50: q.P50 * 1000, P99: q.P99 * 1000, CallMean: meanCallMS(before.called, after.called, hooks[c])}
		if c == caseSluice {
			l.ServedMean = meanCallMS(before.served, after.served, webhook.Path)
		}
		out = append(out, l)
	}
	for _, c := range admissionCases {
		_ = cs.CoreV1().Namespaces().Delete(ctx, ns[c], metav1.DeleteOptions{})
	}
	_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, "bench-noop", metav1.DeleteOptions{})
	return out, nil
}

// registerNoop registers the no-op webhook exactly like Sluice's (deploy/webhook.yaml: same
// rules, object selector, timeout, failure policy), but only for namespaces labelled noopLabel.
func registerNoop(ctx context.Context, cs kubernetes.Interface, repo string, w *noopWebhook) error {
	raw, err := os.ReadFile(filepath.Join(repo, "deploy", "webhook.yaml"))
	if err != nil {
		return err
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := yaml.UnmarshalStrict(raw, cfg); err != nil {
		return fmt.Errorf("parse deploy/webhook.yaml: %w", err)
	}
	if len(cfg.Webhooks) != 1 {
		return fmt.Errorf("deploy/webhook.yaml: %d webhooks, want 1", len(cfg.Webhooks))
	}
	cfg.Name = "bench-noop"
	h := &cfg.Webhooks[0]
	h.Name = noopWebhookName
	h.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &w.url, CABundle: w.ca}
	h.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{noopLabel: "true"}}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("register the no-op webhook: %w", err)
	}
	return nil
}

// unsettled says what Deployment d still waits for after its create ("" once settled): Sluice
// recording the stable revision, the Deployment controller writing its revision annotation and
// observing the result.
func unsettled(d *appsv1.Deployment) string {
	if st, err := spec.ReadState(d.Annotations); err != nil || st.Stable == "" {
		return "Sluice did not record the stable revision of"
	}
	if d.Annotations["deployment.kubernetes.io/revision"] == "" || d.Status.ObservedGeneration < d.Generation {
		return "the Deployment controller did not observe"
	}
	return ""
}

// waitSettled waits up to a minute until Deployment ns/name has settled (unsettled).
func waitSettled(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	what := "could not read"
	for {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if what = unsettled(d); what == "" {
				return nil
			}
		}
		if ctx.Err() != nil {
			return errors.Join(fmt.Errorf("%s %s/%s within a minute", what, ns, name), err)
		}
		retryPause(ctx)
	}
}
