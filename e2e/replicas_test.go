package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/webhook"
)

// Helpers of the tests that run several sluice replicas (certs_test.go, ha_test.go).

// webhookConfigName is the name of the webhook configuration deploy/webhook.yaml installs.
const webhookConfigName = "sluice"

// takeOverSluice kills the stack's sluice for the rest of the test (so the test's replicas are
// the only webhook and worker) and, when the test ends, kills every replica the test started,
// registers the stack's webhook configuration again and restarts the stack's sluice. Tests
// that use it are not parallel.
func takeOverSluice(t *testing.T) *replicaSet {
	t.Helper()
	if err := env.KillSluice(); err != nil {
		t.Fatal(err)
	}
	rs := &replicaSet{t: t}
	t.Cleanup(func() {
		rs.killAll()
		if err := env.RestoreSluice(context.Background()); err != nil {
			t.Errorf("restore the stack's sluice: %v", err)
		}
	})
	return rs
}

// replicaSet is the sluice processes a test started.
type replicaSet struct {
	t    *testing.T
	mu   sync.Mutex
	live map[string]*stack.Replica
}

// start starts a replica with the given flags.
func (rs *replicaSet) start(name string, flags ...string) *stack.Replica {
	rs.t.Helper()
	r, err := env.StartReplica(name, flags...)
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.live == nil {
		rs.live = map[string]*stack.Replica{}
	}
	rs.live[name] = r
	return r
}

// kill kills a replica with SIGKILL, as a crashed pod.
func (rs *replicaSet) kill(r *stack.Replica) {
	rs.t.Helper()
	rs.mu.Lock()
	delete(rs.live, r.Name)
	rs.mu.Unlock()
	if err := env.Cluster.KillProcess(r.Name); err != nil {
		rs.t.Fatal(err)
	}
}

func (rs *replicaSet) killAll() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for name := range rs.live {
		_ = env.Cluster.KillProcess(name)
	}
	rs.live = nil
}

// pointWebhook makes every webhook of the configuration call url, with caBundle (nil: none,
// as a chart installs it for self-managed certificates).
func pointWebhook(t *testing.T, url string, caBundle []byte) {
	t.Helper()
	api := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := api.Get(t.Context(), webhookConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Webhooks {
		cfg.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
	}
	if _, err := api.Update(t.Context(), cfg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// loadBalancer is a loopback TCP load balancer in front of the replicas' webhook ports, as the
// sluice-webhook Service is in a cluster (kwok pods run no process, so the replicas are local
// processes and the Service's part is played here). It spreads connections round robin and
// skips a replica that refuses the connection: a killed pod's endpoint leaves a Service once
// its readiness fails; here that is immediate, in a cluster it takes the probe's period.
// recycle closes every connection, so the API server dials again (a new TLS handshake).
type loadBalancer struct {
	ln       net.Listener
	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]net.Conn
	accepted map[string]int // connections per backend
}

func startLoadBalancer(t *testing.T) *loadBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := &loadBalancer{ln: ln, conns: map[net.Conn]net.Conn{}, accepted: map[string]int{}}
	go lb.serve()
	t.Cleanup(func() {
		ln.Close()
		lb.recycle()
	})
	return lb
}

// URL is the webhook's URL through the load balancer.
func (lb *loadBalancer) URL() string { return "https://" + lb.ln.Addr().String() + webhook.Path }

func (lb *loadBalancer) setBackends(replicas ...*stack.Replica) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.backends = nil
	for _, r := range replicas {
		lb.backends = append(lb.backends, "127.0.0.1:"+strconv.Itoa(r.WebhookPort))
	}
}

// connections returns how many connections went to r so far.
func (lb *loadBalancer) connections(r *stack.Replica) int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.accepted["127.0.0.1:"+strconv.Itoa(r.WebhookPort)]
}

func (lb *loadBalancer) serve() {
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return
		}
		go lb.proxy(c)
	}
}

func (lb *loadBalancer) proxy(client net.Conn) {
	lb.mu.Lock()
	backends, start := append([]string(nil), lb.backends...), lb.next
	lb.next++
	lb.mu.Unlock()
	var backend net.Conn
	var addr string
	for i := range backends {
		addr = backends[(start+i)%len(backends)]
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			backend = c
			break
		}
	}
	if backend == nil {
		client.Close()
		return
	}
	lb.mu.Lock()
	lb.conns[client] = backend
	lb.accepted[addr]++
	lb.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(backend, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, backend); done <- struct{}{} }()
	<-done // either side closed: close both
	client.Close()
	backend.Close()
	<-done
	lb.mu.Lock()
	delete(lb.conns, client)
	lb.mu.Unlock()
}

func (lb *loadBalancer) recycle() {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for c, b := range lb.conns {
		c.Close()
		b.Close()
	}
}

// servedCertificate does a TLS handshake with a replica's webhook port, verifying the served
// certificate against roots for 127.0.0.1 as the API server does, and returns it.
func servedCertificate(r *stack.Replica, roots []byte) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(roots) {
		return nil, errors.New("no CA certificate to verify with")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+strconv.Itoa(r.WebhookPort),
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Name, err)
	}
	defer func() { _ = conn.Close() }() // only the handshake was needed
	return conn.ConnectionState().PeerCertificates[0], nil
}

// metric is the sum of the samples of a metric family on a /metrics page whose labels include
// every given one ("name=\"value\"").
func metric(ctx context.Context, url, name string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// poll calls cond every interval until it returns true or timeout passes.
func poll(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if detail != last {
			t.Logf("waiting for %s: %s", what, detail)
			last = detail
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, detail)
		}
		time.Sleep(interval)
	}
}

// quietClient is an admin client that does not print admission warnings (a loop of held
// updates would print two per update).
func quietClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg := env.Cluster.RESTConfig()
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
