package cluster_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

// With an audit policy the API server logs what the policy selects, and only that; PID names
// the started processes.
func TestAuditLogAndPID(t *testing.T) {
	if testCluster.AuditLog != "" {
		t.Errorf("the shared cluster has no audit policy but an audit log %q", testCluster.AuditLog)
	}
	c, err := cluster.Start(t.Context(), cluster.Options{
		PodCIDR: "127.4.0.0/16", ServiceCIDR: "127.19.0.0/16", Log: t.Output(),
		AuditPolicy: "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  users: [audited]\n- level: None\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })

	pid, ok := c.PID("kube-apiserver")
	if !ok {
		t.Fatal("no PID for kube-apiserver")
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	if argv0, _, _ := bytes.Cut(cmdline, []byte{0}); string(argv0) != c.Binaries.KubeAPIServer {
		t.Errorf("PID(kube-apiserver) = %d runs %q", pid, argv0)
	}
	if _, ok := c.PID("no-such-process"); ok {
		t.Error("PID of a process never started")
	}

	_, cfg, err := c.UserKubeconfig("audited")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _ = cs.CoreV1().Pods("default").List(t.Context(), metav1.ListOptions{}) // forbidden, and logged
	admin, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(c.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var got []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct {
			Verb      string `json:"verb"`
			Stage     string `json:"stage"`
			User      struct{ Username string }
			ObjectRef struct{ Resource string }
			Status    struct{ Code int } `json:"responseStatus"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit log line %q: %v", sc.Text(), err)
		}
		if ev.User.Username != "audited" || ev.Stage == "RequestReceived" {
			t.Errorf("logged %s %s by %q at %s: the policy selects only user audited, past RequestReceived", ev.Verb, ev.ObjectRef.Resource, ev.User.Username, ev.Stage)
		}
		got = append(got, fmt.Sprintf("%s %s %d", ev.Verb, ev.ObjectRef.Resource, ev.Status.Code))
	}
	for _, want := range []string{"create selfsubjectreviews 201", "list pods 403"} {
		if !slices.Contains(got, want) {
			t.Errorf("audit log lacks %q: %v", want, got)
		}
	}
}
