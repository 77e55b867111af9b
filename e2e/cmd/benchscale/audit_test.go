package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// auditLine is one line of an API server's JSON audit log, shaped as kube-apiserver writes it.
func auditLine(id, stage, user, verb, uri, resource, subresource, received string) string {
	ref := ""
	if resource != "" {
		ref = `,"objectRef":{"resource":"` + resource + `","namespace":"bench-n10","name":"app-0001","apiGroup":"apps","apiVersion":"v1"`
		if subresource != "" {
			ref += `,"subresource":"` + subresource + `"`
		}
		ref += "}"
	}
	return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"` + id + `","stage":"` + stage +
		`","requestURI":"` + uri + `","verb":"` + verb + `","user":{"username":"` + user + `","groups":["system:authenticated"]},` +
		`"sourceIPs":["127.0.0.1"],"userAgent":"sluice/v0.0.0"` + ref +
		`,"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"` + received +
		`","stageTimestamp":"` + received + `"}`
}

func TestCountRequestsByVerbAndResourceInTheWindow(t *testing.T) {
	log := strings.Join([]string{
		auditLine("a1", "ResponseComplete", "sluice", "get", "/apis/apps/v1/namespaces/bench-n10/deployments/app-0001", "deployments", "", "2026-12-01T12:00:00.500000Z"),
		// Before the window.
		auditLine("a0", "ResponseComplete", "sluice", "get", "/apis/apps/v1/namespaces/bench-n10/deployments/app-0001", "deployments", "", "2026-12-01T11:59:59.999999Z"),
		// A watch is logged when it starts and when it ends: one request.
		auditLine("w1", "ResponseStarted", "sluice", "watch", "/apis/apps/v1/deployments?watch=true", "deployments", "", "2026-12-01T12:00:01Z"),
		auditLine("w1", "ResponseComplete", "sluice", "watch", "/apis/apps/v1/deployments?watch=true", "deployments", "", "2026-12-01T12:00:01Z"),
		auditLine("p1", "ResponseComplete", "sluice", "patch", "/apis/apps/v1/namespaces/bench-n10/deployments/app-0001", "deployments", "", "2026-12-01T12:00:02Z"),
		auditLine("p2", "ResponseComplete", "sluice", "patch", "/apis/apps/v1/namespaces/bench-n10/deployments/app-0002", "deployments", "", "2026-12-01T12:00:03Z"),
		auditLine("s1", "ResponseComplete", "sluice", "update", "/apis/apps/v1/namespaces/bench-n10/deployments/app-0001/status", "deployments", "status", "2026-12-01T12:00:04Z"),
		// Discovery names no object.
		auditLine("d1", "ResponseComplete", "sluice", "get", "/apis?timeout=32s", "", "", "2026-12-01T12:00:05Z"),
		// Another user.
		auditLine("f1", "ResponseComplete", "flagger", "get", "/apis/flagger.app/v1beta1/namespaces/bench-n10/canaries/app-0001", "canaries", "", "2026-12-01T12:00:05Z"),
		// After the window.
		auditLine("a9", "ResponseComplete", "sluice", "get", "/apis/apps/v1/namespaces/bench-n10/deployments/app-0001", "deployments", "", "2026-12-01T12:00:10.000001Z"),
	}, "\n") + "\n"
	from := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	got, err := countRequests(strings.NewReader(log), "sluice", from, from.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"get deployments":           1,
		"watch deployments":         1,
		"patch deployments":         2,
		"update deployments/status": 1,
		"get /apis":                 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("countRequests (-want +got):\n%s", diff)
	}
}

func TestCountRequestsRefusesABrokenLog(t *testing.T) {
	_, err := countRequests(strings.NewReader("{\"auditID\":\"x\"}\nnot json\n"), "sluice", time.Time{}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v, want one naming line 2", err)
	}
}

func TestRequestsPerReleaseRefusesARotatedLog(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := requestsPerRelease(log, "sluice", time.Time{}, time.Now(), 1); err != nil {
		t.Fatalf("a log that was never rotated: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit-2026-12-01T18-50-00.000.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := requestsPerRelease(log, "sluice", time.Time{}, time.Now(), 1); err == nil || !strings.Contains(err.Error(), "rotated") {
		t.Errorf("err = %v, want one saying the log was rotated", err)
	}
}
