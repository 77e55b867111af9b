package cluster_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

// The CIDRs differ from the defaults (and from the detached test's) so that this package
// can run at the same time as another test binary's control plane.
const testPodCIDR = "127.3.0.0/16"

var testCluster *cluster.Cluster

func TestMain(m *testing.M) {
	opts := cluster.Options{Nodes: 2, PodCIDR: testPodCIDR, ServiceCIDR: "127.18.0.0/16"}
	os.Exit(cluster.Main(m, opts, func(c *cluster.Cluster) error {
		testCluster = c
		return nil
	}))
}

func TestDeploymentBecomesAvailableWithLoopbackPodIPs(t *testing.T) {
	ctx := t.Context()
	cs := adminClient(t)
	ns := newNamespace(t, cs)

	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	if len(nodes.Items) != 2 {
		t.Fatalf("got %d nodes, want 2", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		if got := n.Status.Allocatable.Pods().Value(); got != 10000 {
			t.Errorf("node %s: allocatable pods = %d, want 10000", n.Name, got)
		}
		if !nodeReady(&n) {
			t.Errorf("node %s is not Ready: %+v", n.Name, n.Status.Conditions)
		}
	}
	out, _, err := testCluster.Kubectl(ctx, "get", "nodes", "-o", "name")
	if err != nil || !strings.Contains(out, "node/kwok-node-0") {
		t.Errorf("kubectl get nodes = %q, %v; want node/kwok-node-0 listed", out, err)
	}

	labels := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "fake-image:v1"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Deployment: %v", err)
	}
	selector := metav1.FormatLabelSelector(deploy.Spec.Selector)
	var pods *corev1.PodList
	pollUntil(t, 30*time.Second, func(ctx context.Context) error {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != 3 {
			return fmt.Errorf("%d of 3 replicas available", d.Status.AvailableReplicas)
		}
		pods, err = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		return err
	})

	cidr := netip.MustParsePrefix(testPodCIDR)
	seen := map[string]bool{}
	for _, p := range pods.Items {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !ip.IsLoopback() || !cidr.Contains(ip) {
			t.Errorf("pod %s: IP %q, want a loopback address in %s", p.Name, p.Status.PodIP, cidr)
		}
		if seen[p.Status.PodIP] {
			t.Errorf("pod %s: IP %s is used by another pod too", p.Name, p.Status.PodIP)
		}
		seen[p.Status.PodIP] = true
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: phase %s, want Running", p.Name, p.Status.Phase)
		}
	}

	// The garbage collector removes the ReplicaSet and pods of a deleted Deployment.
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete Deployment: %v", err)
	}
	pollUntil(t, 30*time.Second, func(ctx context.Context) error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(pods.Items) > 0 {
			return fmt.Errorf("%d pods left", len(pods.Items))
		}
		return nil
	})
}

func TestMutatingWebhookIsCalled(t *testing.T) {
	ctx := t.Context()
	cs := adminClient(t)
	ns := newNamespace(t, cs)

	ca, err := cluster.NewCA("webhook-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ServingCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, fmt.Sprintf("decode AdmissionReview: %v", err), http.StatusBadRequest)
			return
		}
		patch := `[{"op":"add","path":"/metadata/labels/mutated-by","value":"test-webhook"}]`
		review.Response = &admissionv1.AdmissionResponse{
			UID:       review.Request.UID,
			Allowed:   true,
			Patch:     []byte(patch),
			PatchType: ptr.To(admissionv1.PatchTypeJSONPatch),
		}
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	})
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	selectorValue := ns // only this test's ConfigMaps go to the webhook
	webhook := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "label-configmaps.e2e.sluice.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL:      ptr.To("https://" + l.Addr().String() + "/mutate"),
				CABundle: ca.CertPEM(),
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"},
				},
			}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"webhook-test": selectorValue}},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, webhook, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingWebhookConfiguration: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), webhook.Name, metav1.DeleteOptions{})
	})

	// The API server picks the configuration up asynchronously: create until mutated.
	var name string
	pollUntil(t, 30*time.Second, func(ctx context.Context) error {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			GenerateName: "mutated-", Labels: map[string]string{"webhook-test": selectorValue},
		}}
		created, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if created.Labels["mutated-by"] != "test-webhook" {
			_ = cs.CoreV1().ConfigMaps(ns).Delete(ctx, created.Name, metav1.DeleteOptions{})
			return fmt.Errorf("ConfigMap %s created without the webhook's label", created.Name)
		}
		name = created.Name
		return nil
	})
	stored, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := stored.Labels["mutated-by"]; got != "test-webhook" {
		t.Errorf("stored ConfigMap label mutated-by = %q, want test-webhook", got)
	}
	if calls.Load() == 0 {
		t.Error("the webhook server saw no request")
	}
}

func TestUserKubeconfigAuthenticatesAsUser(t *testing.T) {
	path, cfg, err := testCluster.UserKubeconfig("sluice", "sluice-devs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("kubeconfig file: %v", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview: %v", err)
	}
	if u := review.Status.UserInfo; u.Username != "sluice" || !slices.Contains(u.Groups, "sluice-devs") {
		t.Errorf("authenticated as %q in %v, want sluice in sluice-devs", u.Username, u.Groups)
	}
	_, err = cs.CoreV1().Pods(metav1.NamespaceDefault).List(t.Context(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("list pods without RBAC: err = %v, want Forbidden", err)
	}
}

func TestPrometheusScrapesPodByIP(t *testing.T) {
	ctx := t.Context()
	cs := adminClient(t)
	ns := newNamespace(t, cs)

	kubeconfig, err := testCluster.PrometheusKubeconfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	promURL, err := testCluster.StartPrometheus(ctx, cluster.PodsScrapeConfig(kubeconfig, time.Second))
	if err != nil {
		t.Fatal(err)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "fake-image:v1"}}},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	var podIP string
	pollUntil(t, 30*time.Second, func(ctx context.Context) error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			return fmt.Errorf("pod is %s with IP %q", p.Status.Phase, p.Status.PodIP)
		}
		podIP = p.Status.PodIP
		return nil
	})

	// Serve the pod's metrics on its (loopback) IP, then ask Prometheus to scrape it.
	l, err := net.Listen("tcp", net.JoinHostPort(podIP, "0"))
	if err != nil {
		t.Fatalf("listen on the pod IP: %v", err)
	}
	var scrapes atomic.Int32
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scrapes.Add(1)
		fmt.Fprintln(w, "# TYPE sluice_e2e_probe gauge")
		fmt.Fprintln(w, "sluice_e2e_probe 42")
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"prometheus.io/scrape":"true","prometheus.io/port":%q}}}`, port)
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate pod: %v", err)
	}

	query := fmt.Sprintf(`sluice_e2e_probe{namespace=%q,pod=%q}`, ns, pod.Name)
	pollUntil(t, time.Minute, func(ctx context.Context) error {
		v, err := promQuery(ctx, promURL, query)
		if err != nil {
			return err
		}
		if v != "42" {
			return fmt.Errorf("%s = %q, want 42", query, v)
		}
		return nil
	})
	if scrapes.Load() == 0 {
		t.Error("Prometheus has the series but the pod's server saw no scrape")
	}
}

func TestDetachedClusterDownLeavesNothingBehind(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	c, err := cluster.Start(t.Context(), cluster.Options{
		Dir: dir, Detached: true, PodCIDR: "127.2.0.0/16", ServiceCIDR: "127.17.0.0/16", Log: t.Output(),
	})
	if err != nil {
		t.Fatalf("start detached cluster: %v", err)
	}
	t.Cleanup(func() { _ = cluster.Down(dir) })

	pids := readPIDs(t, filepath.Join(dir, "pids"))
	if len(pids) != 5 {
		t.Fatalf("pid file lists %d processes, want 5 (etcd, apiserver, controller-manager, scheduler, kwok)", len(pids))
	}
	for _, pid := range pids {
		// Detached processes lead their own session, so they outlive the caller.
		if sid := session(t, pid); sid != pid {
			t.Errorf("pid %d: session %d, want its own session", pid, sid)
		}
	}
	ports := []int{c.Ports.Etcd, c.Ports.EtcdPeer, c.Ports.APIServer, c.Ports.ControllerManager, c.Ports.Scheduler}
	if slices.Contains(ports, testCluster.Ports.APIServer) {
		t.Errorf("detached cluster shares a port with the shared one: %v", ports)
	}

	downStart := time.Now()
	if err := cluster.Down(dir); err != nil {
		t.Fatalf("Down: %v", err)
	}
	t.Logf("Down took %s", time.Since(downStart))
	pollUntil(t, 10*time.Second, func(context.Context) error {
		for _, pid := range pids {
			switch err := syscall.Kill(pid, 0); {
			case err == nil:
				return fmt.Errorf("pid %d still exists", pid)
			case !errors.Is(err, syscall.ESRCH):
				return fmt.Errorf("pid %d: kill -0: %w", pid, err)
			}
		}
		return nil
	})
	for _, port := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("port %d is still in use: %v", port, err)
			continue
		}
		l.Close()
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir %s still exists (%v)", dir, err)
	}
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(testCluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// newNamespace creates a namespace for the test, waits until pods can be created in it
// (its default ServiceAccount exists) and deletes it afterwards.
func newNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	pollUntil(t, 30*time.Second, func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	return ns.Name
}

// pollUntil calls check every 100 ms until it returns nil, failing the test with the
// last error after timeout.
func pollUntil(t *testing.T, timeout time.Duration, check func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("still failing after %s: %v", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func readPIDs(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for line := range strings.Lines(string(data)) {
		pid, err := strconv.Atoi(strings.Fields(line)[0])
		if err != nil {
			t.Fatalf("pid file line %q: %v", line, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// session returns the session ID of pid from /proc/PID/stat.
func session(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// "PID (COMM) STATE PPID PGRP SESSION ..."; COMM may contain spaces and parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	sid, err := strconv.Atoi(fields[3])
	if err != nil {
		t.Fatalf("parse /proc/%d/stat: %v", pid, err)
	}
	return sid
}

// promQuery runs an instant query and returns the value of its single sample.
func promQuery(ctx context.Context, baseURL, query string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var out struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", fmt.Errorf("decode %s: %w", body, err)
	}
	if out.Status != "success" || len(out.Data.Result) != 1 {
		return "", fmt.Errorf("query %s: %s", query, body)
	}
	v, _ := out.Data.Result[0].Value[1].(string)
	return v, nil
}

// A restarted kube-apiserver comes back on the same port as a new process, with every object
// etcd holds; a process stopped with SIGTERM reports how it exited.
func TestRestartAPIServerAndStopProcess(t *testing.T) {
	ctx := t.Context()
	cs := adminClient(t)
	ns := newNamespace(t, cs)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: ns}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := pidOf(t, "kube-apiserver")
	if err := testCluster.RestartAPIServer(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if after := pidOf(t, "kube-apiserver"); after == before || after == 0 {
		t.Errorf("kube-apiserver pid %d before the restart, %d after", before, after)
	}
	if !testCluster.Running("kube-apiserver") {
		t.Error("kube-apiserver not running after the restart")
	}
	got, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("ConfigMap after the restart: %v, %v", got, err)
	}

	// A program that exits on SIGTERM reports a clean exit; one that ignores it is killed.
	if _, err := testCluster.StartProcess("sleeper", "/bin/sh", "-c", "trap 'exit 0' TERM; echo trapped; while :; do sleep 0.1; done"); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, "sleeper")
	if exit, err := testCluster.StopProcess("sleeper", syscall.SIGTERM, 10*time.Second); exit != nil || err != nil {
		t.Errorf("SIGTERM: exit %v, err %v", exit, err)
	}
	if testCluster.Running("sleeper") {
		t.Error("sleeper still listed as running")
	}
	if _, err := testCluster.StartProcess("stubborn", "/bin/sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 0.1; done"); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, "stubborn")
	if _, err := testCluster.StopProcess("stubborn", syscall.SIGTERM, time.Second); !errors.Is(err, cluster.ErrStillRunning) {
		t.Errorf("SIGTERM ignored: err %v, want ErrStillRunning", err)
	}
}

// pidOf reads the named process's PID from the cluster's pid file.
func pidOf(t *testing.T, name string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testCluster.Dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == name {
			pid, _ := strconv.Atoi(f[0])
			return pid
		}
	}
	return 0
}

// waitForLog waits until the named shell has set its trap (it then prints "trapped").
func waitForLog(t *testing.T, name string) {
	t.Helper()
	pollUntil(t, 10*time.Second, func(context.Context) error {
		// A line of its own: the log's first line is the command line, which contains the word.
		for _, line := range strings.Split(testCluster.LogTail(name, 5), "\n") {
			if strings.TrimSpace(line) == "trapped" {
				return nil
			}
		}
		return fmt.Errorf("%s has not set its trap yet", name)
	})
}
