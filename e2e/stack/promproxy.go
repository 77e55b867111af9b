package stack

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
	"time"
)

// PromMode is how PrometheusProxy answers the queries of one namespace.
type PromMode string

// Modes of PrometheusProxy.
const (
	// PromPass forwards the query to the real Prometheus.
	PromPass PromMode = "pass"
	// PromSlow forwards it after PrometheusProxy.SlowBy (longer than sluice's --query-timeout).
	PromSlow PromMode = "slow"
	// PromError answers HTTP 500 with a Prometheus error body.
	PromError PromMode = "5xx"
	// PromNaN answers a one-sample vector whose value is NaN.
	PromNaN PromMode = "nan"
)

// PrometheusProxy stands between sluice and the real Prometheus on 127.0.0.1 and answers the
// queries of each namespace in the mode the test chose for it (PromPass by default). A query's
// namespace is its `namespace="…"` matcher, which every builtin check of the replicas router
// has, so tests running in parallel each fault their own namespace only.
type PrometheusProxy struct {
	URL string
	// SlowBy is how long PromSlow waits before forwarding (default 30s).
	SlowBy time.Duration

	srv   *http.Server
	mu    sync.Mutex
	up    *url.URL
	modes map[string]PromMode
	count map[string]map[PromMode]int
}

// StartPrometheusProxy listens on a free loopback port. Queries fail until SetUpstream.
func StartPrometheusProxy() (*PrometheusProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &PrometheusProxy{
		URL: "http://" + ln.Addr().String(), SlowBy: 30 * time.Second,
		modes: map[string]PromMode{}, count: map[string]map[PromMode]int{},
	}
	p.srv = &http.Server{Handler: p, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// SetUpstream sets the real Prometheus's base URL.
func (p *PrometheusProxy) SetUpstream(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.up = u
	p.mu.Unlock()
	return nil
}

// SetMode sets how the queries of namespace are answered from now on.
func (p *PrometheusProxy) SetMode(namespace string, m PromMode) {
	p.mu.Lock()
	p.modes[namespace] = m
	p.mu.Unlock()
}

// Answered returns how many queries of namespace were answered in mode m.
func (p *PrometheusProxy) Answered(namespace string, m PromMode) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count[namespace][m]
}

// Close stops the proxy.
func (p *PrometheusProxy) Close() error { return p.srv.Close() }

var namespaceMatcher = regexp.MustCompile(`namespace="([^"]*)"`)

func (p *PrometheusProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	read := r.Clone(r.Context())
	read.Body = io.NopCloser(bytes.NewReader(body))
	_ = read.ParseForm()
	ns := ""
	if m := namespaceMatcher.FindStringSubmatch(read.Form.Get("query")); m != nil {
		ns = m[1]
	}
	p.mu.Lock()
	mode, up := p.modes[ns], p.up
	if mode == "" {
		mode = PromPass
	}
	if p.count[ns] == nil {
		p.count[ns] = map[PromMode]int{}
	}
	p.count[ns][mode]++
	p.mu.Unlock()

	switch mode {
	case PromError:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"status":"error","errorType":"internal","error":"injected by the e2e Prometheus proxy"}`)
		return
	case PromNaN:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"NaN"]}]}}`, time.Now().Unix())
		return
	case PromSlow:
		select {
		case <-time.After(p.SlowBy):
		case <-r.Context().Done():
			return
		}
	}
	if up == nil {
		http.Error(w, "no upstream Prometheus yet", http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	proxy := &httputil.ReverseProxy{
		Rewrite:  func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.Out.Host = up.Host },
		ErrorLog: log.New(io.Discard, "", 0),
	}
	proxy.ServeHTTP(w, r)
}
