package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// webhookMetric is the API server's histogram of the time each admission webhook call took,
// from sending the AdmissionReview to having the answer (the webhook's server and the round
// trip; not the API server applying a returned patch).
const webhookMetric = "apiserver_admission_webhook_admission_duration_seconds"

// callTotals are the summed seconds and the count of one webhook's calls.
type callTotals struct{ seconds, calls float64 }

// callReading is the call totals of both sides at one moment: the API server's calls per
// webhook name, and the requests Sluice's webhook server served per path.
type callReading struct{ called, served map[string]callTotals }

func readCallTotals(ctx context.Context, cs kubernetes.Interface, sluiceMetricsURL string) (callReading, error) {
	called, err := webhookCalls(ctx, cs)
	if err != nil {
		return callReading{}, err
	}
	served, err := webhookServed(ctx, sluiceMetricsURL)
	return callReading{called: called, served: served}, err
}

// webhookCalls reads the API server's totals of UPDATE calls per mutating webhook name.
func webhookCalls(ctx context.Context, cs kubernetes.Interface) (map[string]callTotals, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the API server's metrics: %w", err)
	}
	return histogramTotals(raw, webhookMetric, updateAdmits)
}

// updateAdmits keys the API server's webhook series by webhook name, mutating UPDATEs only.
func updateAdmits(l map[string]string) (string, bool) {
	return l["name"], l["type"] == "admit" && l["operation"] == "UPDATE"
}

// servedMetric is controller-runtime's histogram of the time its webhook server took per
// request, from reading it to writing the answer, by path.
const servedMetric = "controller_runtime_webhook_latency_seconds"

// webhookServed reads Sluice's own totals of the requests its webhook served, by path.
func webhookServed(ctx context.Context, metricsURL string) (map[string]callTotals, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read sluice's metrics: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read sluice's metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read sluice's metrics: %s", resp.Status)
	}
	return histogramTotals(raw, servedMetric, func(l map[string]string) (string, bool) { return l["webhook"], true })
}

// histogramTotals sums the histogram metric of a metrics text by the key keep gives each
// series' labels, skipping those it says no to.
func histogramTotals(raw []byte, metric string, keep func(labels map[string]string) (string, bool)) (map[string]callTotals, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := map[string]callTotals{}
	for _, m := range families[metric].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		key, ok := keep(labels)
		if !ok || m.GetHistogram() == nil {
			continue
		}
		t := out[key]
		t.seconds += m.GetHistogram().GetSampleSum()
		t.calls += float64(m.GetHistogram().GetSampleCount())
		out[key] = t
	}
	return out, nil
}

// meanCallMS is the mean time in ms of the calls to webhook name between two readings (0 when
// none were made).
func meanCallMS(before, after map[string]callTotals, name string) float64 {
	calls := after[name].calls - before[name].calls
	if calls <= 0 {
		return 0
	}
	return (after[name].seconds - before[name].seconds) / calls * 1000
}
