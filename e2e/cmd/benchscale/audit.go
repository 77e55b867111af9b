package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// clusterControllers are the controller-manager's controllers whose work a release makes (each
// runs under its own service account, with its own client at the controller-manager's default
// 20 requests/s): they roll the canary and the parent out.
var clusterControllers = []string{"deployment-controller", "replicaset-controller"}

func serviceAccount(name string) string { return "system:serviceaccount:kube-system:" + name }

// auditPolicy logs every request of the two controllers' users, and of the Deployment and
// ReplicaSet controllers, once it is answered (the RequestReceived stage is omitted; a watch is
// logged when it starts and again when it ends, under one auditID) and nothing else, so the log
// stays small and the other clients pay nothing.
var auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: ["` + sluiceUser + `", "` + flaggerUser + `", "` + serviceAccount(clusterControllers[0]) + `", "` + serviceAccount(clusterControllers[1]) + `"]
- level: None
`

// auditEvent is the part of an audit.k8s.io/v1 Event the count needs.
type auditEvent struct {
	AuditID    string `json:"auditID"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	RequestReceived time.Time `json:"requestReceivedTimestamp"`
}

// countRequests reads an API server audit log (JSON lines) and counts the requests user sent
// that the server received in [from, to], by "verb resource" ("verb resource/subresource"; for a
// request that names no object, such as discovery, "verb path"). Each request counts once
// however many stages were logged for it.
func countRequests(r io.Reader, user string, from, to time.Time) (map[string]int, error) {
	counts := map[string]int{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("audit log line %d: %w", line, err)
		}
		if ev.User.Username != user || ev.RequestReceived.Before(from) || ev.RequestReceived.After(to) || seen[ev.AuditID] {
			continue
		}
		seen[ev.AuditID] = true
		counts[requestKey(ev)]++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return counts, nil
}

func requestKey(ev auditEvent) string {
	if ev.ObjectRef != nil && ev.ObjectRef.Resource != "" {
		res := ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			res += "/" + ev.ObjectRef.Subresource
		}
		return ev.Verb + " " + res
	}
	path := ev.RequestURI
	if u, err := url.Parse(ev.RequestURI); err == nil {
		path = u.Path
	}
	return ev.Verb + " " + path
}

// requestsPerRelease counts user's requests in the audit log at path and divides them by n.
func requestsPerRelease(path, user string, from, to time.Time, n int) (map[string]float64, error) {
	// A rotated log (backups named audit-TIME.log beside it) holds only the newest requests.
	ext := filepath.Ext(path)
	if rotated, _ := filepath.Glob(strings.TrimSuffix(path, ext) + "-*" + ext); len(rotated) > 0 {
		return nil, fmt.Errorf("the audit log %s was rotated (%d backups): its counts would miss requests", path, len(rotated))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	counts, err := countRequests(f, user, from, to)
	if err != nil {
		return nil, err
	}
	per := map[string]float64{}
	for k, v := range counts {
		per[k] = float64(v) / float64(n)
	}
	return per, nil
}

// clusterRequestsPerRelease counts, per controller of clusterControllers, its requests in the
// window (all verbs) divided by n.
func clusterRequestsPerRelease(path string, from, to time.Time, n int) (map[string]float64, error) {
	out := map[string]float64{}
	for _, c := range clusterControllers {
		per, err := requestsPerRelease(path, serviceAccount(c), from, to, n)
		if err != nil {
			return nil, err
		}
		out[c] = total(per)
	}
	return out, nil
}
