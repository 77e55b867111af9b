package stack

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// APIProxy stands between sluice and kube-apiserver on 127.0.0.1: it terminates sluice's TLS
// and forwards every request with sluice's own client certificate, so the API server sees the
// same identity and RBAC applies as without it. A test can hold one of sluice's writes of a
// release state (HoldStateWrite) to stop sluice at an exact point of a release: the moment it
// has done a step's other writes and is recording the step.
type APIProxy struct {
	// URL is the proxy's https address; Kubeconfig points a client at it (trusting its CA).
	URL        string
	Kubeconfig string

	proxy *httputil.ReverseProxy
	srv   *http.Server
	mu    sync.Mutex
	holds []*Hold
}

// StateWrite is a patch of an opted-in Deployment's release state, as sluice sends it: a JSON
// patch that tests the state it read and sets the next one.
type StateWrite struct {
	Namespace, Name string
	// From is the state the patch tests for (Idle when it tests none), To the state it sets.
	From, To spec.State
}

// Hold is an armed hold on one state write (see HoldStateWrite).
type Hold struct {
	// C receives the write once it is held; the request then waits for Forward or Drop, or
	// until its client goes away (sluice killed).
	C        chan StateWrite
	match    func(StateWrite) bool
	decision chan bool // true: forward it; false: drop it
	once     sync.Once
}

// Forward lets the held write (or the next one matched) through to the API server.
func (h *Hold) Forward() { h.decide(true) }

// Drop answers the held write (or the next one matched) with 503 instead of forwarding it.
func (h *Hold) Drop() { h.decide(false) }

func (h *Hold) decide(forward bool) { h.once.Do(func() { h.decision <- forward }) }

// StartAPIProxy starts a proxy that forwards requests to c's API server as user, and writes a
// kubeconfig for it into c's dir.
func StartAPIProxy(c *cluster.Cluster, user string) (*APIProxy, error) {
	_, cfg, err := c.UserKubeconfig(user)
	if err != nil {
		return nil, err
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("transport for %s: %w", user, err)
	}
	upstream, err := url.Parse(c.Server())
	if err != nil {
		return nil, err
	}
	ca, err := cluster.NewCA("sluice-e2e-apiproxy")
	if err != nil {
		return nil, err
	}
	cert, err := ca.ServingCert("127.0.0.1")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &APIProxy{URL: "https://" + ln.Addr().String()}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Host = upstream.Host
		},
		Transport:     transport,
		FlushInterval: -1, // watches stream
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{
		Handler:   p,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	go func() { _ = p.srv.ServeTLS(ln, "", "") }()

	kc := clientcmdapi.NewConfig()
	kc.Clusters["proxy"] = &clientcmdapi.Cluster{Server: p.URL, CertificateAuthorityData: ca.CertPEM()}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{}
	kc.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: user}
	kc.CurrentContext = "proxy"
	p.Kubeconfig = filepath.Join(c.Dir, "users", strings.ReplaceAll(user, ":", "_")+"-via-proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p.Kubeconfig); err != nil {
		p.srv.Close()
		return nil, err
	}
	return p, nil
}

// Close stops the proxy.
func (p *APIProxy) Close() error { return p.srv.Close() }

// HoldStateWrite arms a hold on the first state write for which match is true: that request is
// not forwarded until the test says so (Forward, Drop) or its client is gone.
func (p *APIProxy) HoldStateWrite(match func(StateWrite) bool) *Hold {
	h := &Hold{C: make(chan StateWrite, 1), match: match, decision: make(chan bool, 1)}
	p.mu.Lock()
	p.holds = append(p.holds, h)
	p.mu.Unlock()
	return h
}

// Disarm removes h if it has not held anything yet.
func (p *APIProxy) Disarm(h *Hold) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.holds {
		if x == h {
			p.holds = append(p.holds[:i], p.holds[i+1:]...)
			return
		}
	}
}

func (p *APIProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, sw := p.held(r); h != nil {
		h.C <- sw
		select {
		case forward := <-h.decision:
			if !forward {
				http.Error(w, "dropped by the e2e API proxy", http.StatusServiceUnavailable)
				return
			}
		case <-r.Context().Done():
			return // the client is gone: the write never reaches the API server
		}
	}
	p.proxy.ServeHTTP(w, r)
}

// held returns the armed hold r's state write matches (and disarms it), or nil. It leaves r's
// body readable.
func (p *APIProxy) held(r *http.Request) (*Hold, StateWrite) {
	ns, name, ok := deploymentPath(r)
	if !ok || r.Method != http.MethodPatch || r.Body == nil {
		return nil, StateWrite{}
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return nil, StateWrite{}
	}
	sw, ok := ParseStateWrite(body)
	if !ok {
		return nil, StateWrite{}
	}
	sw.Namespace, sw.Name = ns, name
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, h := range p.holds {
		if h.match(sw) {
			p.holds = append(p.holds[:i], p.holds[i+1:]...)
			return h, sw
		}
	}
	return nil, StateWrite{}
}

// deploymentPath parses /apis/apps/v1/namespaces/NS/deployments/NAME (not a subresource).
func deploymentPath(r *http.Request) (ns, name string, ok bool) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 7 || parts[0] != "apis" || parts[1] != "apps" || parts[2] != "v1" || parts[3] != "namespaces" || parts[5] != "deployments" {
		return "", "", false
	}
	return parts[4], parts[6], true
}

var stateAnnotationPath = "/metadata/annotations/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(spec.AnnState)

// ParseStateWrite reads a JSON patch of a Deployment: ok when it sets the release state. From
// is the state its test op expects (Idle when it tests none).
func ParseStateWrite(body []byte) (sw StateWrite, ok bool) {
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &ops); err != nil {
		return StateWrite{}, false
	}
	from, to := "", ""
	set := false
	for _, op := range ops {
		if op.Path != stateAnnotationPath {
			continue
		}
		var v string
		if err := json.Unmarshal(op.Value, &v); err != nil {
			continue
		}
		switch op.Op {
		case "test":
			from = v
		case "add", "replace":
			to, set = v, true
		}
	}
	if !set {
		return StateWrite{}, false
	}
	var err error
	if sw.From, err = spec.ReadState(map[string]string{spec.AnnState: from}); err != nil {
		return StateWrite{}, false
	}
	if sw.To, err = spec.ReadState(map[string]string{spec.AnnState: to}); err != nil {
		return StateWrite{}, false
	}
	return sw, true
}
