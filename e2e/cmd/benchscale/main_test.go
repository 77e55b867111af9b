package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-n", "200, 10,50,10", "-only", "flagger", "-note", "validation run"})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.ns; len(got) != 3 || got[0] != 10 || got[1] != 50 || got[2] != 200 {
		t.Errorf("ns = %v, want [10 50 200] (sorted, once each)", got)
	}
	if o.only != "flagger" || o.note != "validation run" || o.admission != 200 || o.timeout != 30*time.Minute {
		t.Errorf("options = %+v", o)
	}
	for _, bad := range [][]string{
		{"-n", "10,x"}, {"-n", "0"}, {"-n", ""}, {"-only", "argo"}, {"-timeout", "0s"}, {"-admission", "-1"}, {"extra"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestNodesFor(t *testing.T) {
	for n, want := range map[int]int{1: 1, 10: 1, 48: 1, 50: 2, 200: 5, 1000: 21} {
		if got := nodesFor(n); got != want {
			t.Errorf("nodesFor(%d) = %d, want %d", n, got, want)
		}
	}
}

// The no-op webhook speaks admission.k8s.io/v1 over TLS and allows with the request's UID.
func TestNoopWebhookAllowsEverything(t *testing.T) {
	w, err := startNoopWebhook()
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if !strings.HasPrefix(w.url, "https://127.0.0.1:") {
		t.Errorf("url = %s, want https on 127.0.0.1", w.url)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(w.ca) {
		t.Fatal("no CA certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"0d5a-42","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},"operation":"UPDATE","userInfo":{"username":"admin"},"object":{"kind":"Deployment"}}}`
	resp, err := client.Post(w.url, "application/json", bytes.NewBufferString(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil ||
		out.Response.UID != "0d5a-42" || !out.Response.Allowed || out.Response.Patch != nil {
		t.Errorf("response = %+v", out)
	}
	if w.calls.Load() != 1 {
		t.Errorf("calls = %d, want 1", w.calls.Load())
	}
	bad, err := client.Post(w.url, "application/json", bytes.NewBufferString(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Errorf("a review without a request: %s, want 400", bad.Status)
	}
}
