package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/certs"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Acceptance 3 (issue 10): self-managed webhook certificates. Two replicas start at once with
// no Secret: one Secret is created, both serve certificates of its CA, the CA bundle is
// injected into the webhook configuration and admissions pass through the API server. Then the
// certificate (2 minutes' validity, so rotated after 80 s) is rotated while `kubectl set
// image`-equivalent updates of an opted-in Deployment run in a loop through the API server:
// not one fails, and neither replica restarts.
//
// The replicas are local processes behind a loopback load balancer standing in for the
// sluice-webhook Service (kwok pods run nothing); the webhook configuration calls that by URL
// 127.0.0.1, so the certificate carries the IP SAN 127.0.0.1 (--cert-extra-sans) besides the
// Service's DNS names. The load balancer closes its connections every few seconds between two
// updates, so the API server keeps doing new TLS handshakes, before, during and after the
// rotation, instead of reusing one connection for the whole test.
//
// Not parallel: the stack's sluice is taken away for the test.
func TestSelfManagedCertificates(t *testing.T) {
	rs := takeOverSluice(t)
	ctx := t.Context()
	const secretName = "sluice-webhook-cert"
	secrets := env.Client.CoreV1().Secrets(stack.Namespace)
	if err := secrets.Delete(ctx, secretName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	lb := startLoadBalancer(t)
	pointWebhook(t, lb.URL(), nil) // as a chart installs it: no caBundle
	a := newApp(t, "certs", fastAnnotations())

	flags := []string{
		"--cert-secret=" + secretName, "--namespace=" + stack.Namespace,
		"--webhook-configuration=" + webhookConfigName, "--webhook-service=sluice-webhook",
		"--cert-extra-sans=127.0.0.1", "--cert-validity=2m", "--cert-refresh-interval=2s",
		"--disable-reconciler", // the webhook is under test; the held releases need no worker
	}
	// Readiness waits for the certificate: a replica that cannot write its Secret (Sluice has
	// no Role in that namespace) is alive but serves no certificate, so it is never ready.
	blocked := rs.start("sluice-certs-blocked", append(slices.Clone(flags), "--namespace=default")...)
	poll(t, time.Minute, 500*time.Millisecond, blocked.Name+" to fail making its Secret", func() (bool, string) {
		return countLogLines(t, []*stack.Replica{blocked}, `cannot create resource \"secrets\"`) > 0, "no forbidden Secret creation yet"
	})
	if code, body := probe(t, strings.Replace(blocked.ReadyURL, "/readyz", "/healthz", 1)); code != http.StatusOK {
		t.Fatalf("%s is not alive: %d %s", blocked.Name, code, body)
	}
	if code, body := probe(t, blocked.ReadyURL+"?verbose"); code == http.StatusOK || !strings.Contains(body, "[-]webhook failed") {
		t.Errorf("%s is ready without a certificate: %d %s", blocked.Name, code, body)
	}
	rs.kill(blocked)

	// B re-reads the Secret only every 30 s: after A rotates, B keeps serving the old
	// certificate for several seconds while the API server already has the new bundle, the
	// case the bundle's previous CA is there for.
	replicas := []*stack.Replica{
		rs.start("sluice-certs-a", flags...),
		rs.start("sluice-certs-b", append(slices.Clone(flags), "--cert-refresh-interval=30s")...),
	}
	stale := replicas[1]
	lb.setBackends(replicas...)
	for _, r := range replicas {
		if err := env.WaitReady(ctx, r, 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	// One Secret, one CA, served by both, injected.
	first := readCertSecret(t, secretName)
	bundle := injectedBundle(t)
	if string(bundle) != string(first.Data[certs.KeyCABundle]) {
		t.Fatalf("caBundle of the webhook configuration is not the Secret's bundle")
	}
	firstCert := parsePEM(t, first.Data[certs.KeyTLSCert])
	ca := parsePEM(t, first.Data[certs.KeyCACert])
	for _, r := range replicas {
		served, err := servedCertificate(r, bundle)
		if err != nil {
			t.Fatalf("the served certificate is not trusted by the injected bundle: %v", err)
		}
		if served.SerialNumber.Cmp(firstCert.SerialNumber) != 0 {
			t.Errorf("%s serves serial %s, the Secret holds %s", r.Name, served.SerialNumber, firstCert.SerialNumber)
		}
		if err := served.CheckSignatureFrom(ca); err != nil {
			t.Errorf("%s serves a certificate not signed by the Secret's CA: %v", r.Name, err)
		}
	}
	if n := countLogLines(t, replicas, "created the webhook certificate Secret"); n != 1 {
		t.Errorf("%d replicas created the Secret, want exactly one (the other reads the winner's)", n)
	}
	t.Logf("Secret created with CA %s, serving certificate %s valid until %s", ca.SerialNumber, firstCert.SerialNumber, firstCert.NotAfter)

	// Admissions pass through the API server: a CREATE, and a template change that is held.
	a.deploy("demo:v1")
	a.kubectl("set", "image", "deployment/"+a.name, "app=demo:v2")
	if st := a.state(); st.Phase != spec.PhaseProgressing || !a.get().Spec.Paused {
		t.Fatalf("set image was not held by the webhook: phase %s paused %v", st.Phase, a.get().Spec.Paused)
	}

	// Rotation under load.
	pids := map[string]int{}
	for _, r := range replicas {
		pids[r.Name] = r.PID
	}
	loop := startImageLoop(t, lb, a)
	var rotated *x509.Certificate
	staleFrom, staleTo := -1, -1 // connections to the stale replica when the window was first and last seen
	poll(t, 4*time.Minute, 500*time.Millisecond, "the certificate to be rotated and served by both replicas", func() (bool, string) {
		s := readCertSecret(t, secretName)
		cur := parsePEM(t, s.Data[certs.KeyTLSCert])
		if cur.SerialNumber.Cmp(firstCert.SerialNumber) == 0 {
			return false, "not rotated yet"
		}
		if got := injectedBundle(t); string(got) != string(s.Data[certs.KeyCABundle]) {
			return false, "the new bundle is not injected yet"
		}
		old := 0
		for _, r := range replicas {
			served, err := servedCertificate(r, s.Data[certs.KeyCABundle])
			if err != nil {
				return false, err.Error()
			}
			if served.SerialNumber.Cmp(cur.SerialNumber) != 0 {
				old++
				if r == stale {
					if staleFrom < 0 {
						staleFrom = lb.connections(r)
					}
					staleTo = lb.connections(r)
				}
			}
		}
		if old > 0 {
			return false, fmt.Sprintf("%d replica(s) still serve the old certificate", old)
		}
		rotated = cur
		return true, ""
	})
	t.Logf("rotated to %s (valid until %s) after %d updates", rotated.SerialNumber, rotated.NotAfter, loop.total())
	// Keep going for a while: the API server now handshakes with the new certificate.
	afterRotation := loop.total()
	poll(t, time.Minute, time.Second, "15 more seconds of updates after the rotation", func() (bool, string) {
		return loop.recycles() >= 8 && loop.total() >= afterRotation+50, "updating"
	})
	loop.stop()

	// The API server dialled the replica that still served the old certificate after the new
	// bundle was injected (each load-balancer connection is one of its TLS handshakes).
	t.Logf("%s served the old certificate under the new bundle while the API server opened connections %d..%d to it", stale.Name, staleFrom, staleTo)
	if staleFrom < 0 || staleTo <= staleFrom {
		t.Errorf("the API server made no new connection to %s while it served the old certificate (connections %d..%d)", stale.Name, staleFrom, staleTo)
	}
	if n := countLogLines(t, []*stack.Replica{replicas[0]}, "updated the webhook certificate Secret"); n != 1 {
		t.Errorf("%s rotated %d times, want once", replicas[0].Name, n)
	}

	ok, failed := loop.count()
	t.Logf("updates through the API server: %d ok, %d failed; connections per replica: %s %d, %s %d",
		ok, failed, replicas[0].Name, lb.connections(replicas[0]), replicas[1].Name, lb.connections(replicas[1]))
	if failed != 0 {
		t.Errorf("%d admissions failed during the rotation, want 0; first errors: %v", failed, loop.errors())
	}
	if ok < 100 {
		t.Errorf("only %d updates went through; the loop did not exercise the webhook enough", ok)
	}
	for _, r := range replicas {
		if lb.connections(r) == 0 {
			t.Errorf("the API server never reached %s", r.Name)
		}
		if pid := r.PID; pids[r.Name] != pid || syscall.Kill(pid, 0) != nil {
			t.Errorf("%s (pid %d) is no longer running", r.Name, pid)
		}
		if n := countLogLines(t, []*stack.Replica{r}, `"msg":"starting"`); n != 1 {
			t.Errorf("%s started %d times, want once (no restart)", r.Name, n)
		}
		if n := countLogLines(t, []*stack.Replica{r}, "serving the webhook certificate"); n < 2 {
			t.Errorf("%s loaded %d certificates, want the first and the rotated one", r.Name, n)
		}
	}
	// The webhook handled the last update: its image is the one held.
	if st, last := a.state(), loop.lastImage(); !strings.Contains(st.Image, last) {
		t.Errorf("held image %q, want the last one set, %q", st.Image, last)
	}
}

// imageLoop sets a new image on the app's Deployment every 200 ms through the API server (a
// strategic merge patch of the container's image, as `kubectl set image` sends) and counts
// the outcomes. Every 2 s, between two updates, it has the load balancer close its
// connections, so the next call makes a new TLS handshake.
type imageLoop struct {
	mu                  sync.Mutex
	ok, failed, recycle int
	errs                []string
	last                string
	cancel              context.CancelFunc
	done                chan struct{}
}

func startImageLoop(t *testing.T, lb *loadBalancer, a *app) *imageLoop {
	cs := quietClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	l := &imageLoop{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(l.stop)
	go func() {
		defer close(l.done)
		lastRecycle := time.Now()
		for i := 0; ctx.Err() == nil; i++ {
			if time.Since(lastRecycle) > 2*time.Second {
				lb.recycle()
				lastRecycle = time.Now()
				l.mu.Lock()
				l.recycle++
				l.mu.Unlock()
				time.Sleep(200 * time.Millisecond) // let the API server see the closed connection
			}
			image := fmt.Sprintf("demo:r%d", i)
			patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
			_, err := cs.AppsV1().Deployments(a.ns).Patch(ctx, a.name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
			if ctx.Err() != nil {
				return
			}
			l.record(err, image)
			time.Sleep(200 * time.Millisecond) // pace: about four updates a second
		}
	}()
	return l
}

// record counts one write's outcome (image: what it set, "" for none).
func (l *imageLoop) record(err error, image string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		if len(l.errs) < 5 {
			l.errs = append(l.errs, fmt.Sprintf("%s: %v", time.Now().Format(time.TimeOnly), err))
		}
		return
	}
	l.ok++
	if image != "" {
		l.last = image
	}
}

func (l *imageLoop) stop() {
	l.cancel()
	<-l.done
}

func (l *imageLoop) count() (ok, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.failed
}

func (l *imageLoop) total() int {
	ok, failed := l.count()
	return ok + failed
}

func (l *imageLoop) recycles() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recycle
}

func (l *imageLoop) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

func (l *imageLoop) lastImage() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

func readCertSecret(t *testing.T, name string) *corev1.Secret {
	t.Helper()
	s, err := env.Client.CoreV1().Secrets(stack.Namespace).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the certificate Secret: %v", err)
	}
	return s
}

// injectedBundle is the caBundle of the webhook configuration (the same in every webhook).
func injectedBundle(t *testing.T) []byte {
	t.Helper()
	cfg, err := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), webhookConfigName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range cfg.Webhooks[1:] {
		if string(w.ClientConfig.CABundle) != string(cfg.Webhooks[0].ClientConfig.CABundle) {
			t.Fatalf("webhook %s has another caBundle than %s", w.Name, cfg.Webhooks[0].Name)
		}
	}
	return cfg.Webhooks[0].ClientConfig.CABundle
}

func parsePEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countLogLines counts the lines of the replicas' logs that contain s.
func countLogLines(t *testing.T, replicas []*stack.Replica, s string) int {
	t.Helper()
	n := 0
	for _, r := range replicas {
		b, err := os.ReadFile(filepath.Join(env.Cluster.Dir, "logs", r.Name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(b), s)
	}
	return n
}

// probe GETs a health endpoint and returns its status and body.
func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Files mode (no --cert-secret, cert-manager's path): the certificate files in --cert-dir are
// served again when they change, without a restart. The replica serves only its webhook port
// here (no webhook configuration points at it), so the test can run alongside others.
func TestFilesModeReloadsCertificates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	first, err := certs.Generate([]string{"127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := first.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("sluice-files-%d", time.Now().UnixNano()%100000)
	r, err := env.StartReplica(name, "--cert-dir="+dir, "--disable-reconciler")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Cluster.KillProcess(name) })
	if err := env.WaitReady(ctx, r, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	served, err := servedCertificate(r, first.CACert)
	if err != nil {
		t.Fatal(err)
	}
	if want := parsePEM(t, first.Cert); served.SerialNumber.Cmp(want.SerialNumber) != 0 {
		t.Fatalf("serves serial %s, the files hold %s", served.SerialNumber, want.SerialNumber)
	}

	second, err := certs.Generate([]string{"127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := second.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	want := parsePEM(t, second.Cert)
	poll(t, time.Minute, 500*time.Millisecond, "the new files to be served", func() (bool, string) {
		served, err := servedCertificate(r, second.CACert)
		if err != nil {
			return false, err.Error()
		}
		return served.SerialNumber.Cmp(want.SerialNumber) == 0, "old serial " + served.SerialNumber.String()
	})
	if syscall.Kill(r.PID, 0) != nil || countLogLines(t, []*stack.Replica{r}, `"msg":"starting"`) != 1 {
		t.Errorf("%s restarted to serve the new files", r.Name)
	}
}
