package demoapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

const (
	// MaxRPS bounds Load.RPS.
	MaxRPS = 1000
	// DefaultTimeout is the per-request timeout when Load.Timeout is zero.
	DefaultTimeout = 2 * time.Second
	// maxTimeout bounds Load.Timeout, and with it the number of requests in flight.
	maxTimeout = time.Minute
)

// Load sends requests to the pods of a Fleet as kube-proxy would send a Service's traffic: each
// request goes to a uniformly random pod among the Fleet's Endpoints(Selector). Set the fields,
// then call Run; Stats may be called at any time.
type Load struct {
	// Fleet serves the pods.
	Fleet *Fleet
	// RPS is the number of requests started per second, 1 to MaxRPS.
	RPS int
	// Selector is the Service's selector; nil sends to every Ready pod of the Fleet.
	Selector labels.Selector
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration

	mu          sync.Mutex
	pods        map[string]*PodStats
	noEndpoints int
	dropped     int
}

// Stats counts what a Load did.
type Stats struct {
	// Pods holds the outcomes of the requests sent to each pod, by pod name.
	Pods map[string]PodStats
	// NoEndpoints counts requests not sent because no pod was eligible, which a client of a
	// Service without endpoints sees as a refused connection.
	NoEndpoints int
	// Dropped counts requests not sent because the most requests Load keeps in flight
	// (RPS × Timeout in seconds) were outstanding.
	Dropped int
}

// PodStats counts the outcomes of the requests sent to one pod.
type PodStats struct {
	// Codes counts responses by HTTP status code.
	Codes map[int]int
	// Errors counts requests that got no response: refused, reset or timed out.
	Errors int
}

// Total returns the number of requests sent to the pod.
func (p PodStats) Total() int {
	n := p.Errors
	for _, c := range p.Codes {
		n += c
	}
	return n
}

// Total returns the number of requests sent to all pods.
func (s Stats) Total() int {
	n := 0
	for _, p := range s.Pods {
		n += p.Total()
	}
	return n
}

// Run sends RPS requests per second until ctx is done, then waits for the requests in flight
// and returns nil; requests cut short by ctx are not counted. It returns an error at once when
// the Load is misconfigured.
func (l *Load) Run(ctx context.Context) error {
	if err := l.validate(); err != nil {
		return err
	}
	timeout := l.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	transport := &http.Transport{
		Proxy:               nil, // straight to the pod, whatever the environment says
		DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: timeout}

	// Requests in flight are bounded by what a full second of timeouts would accumulate.
	inFlight := make(chan struct{}, l.RPS*int((timeout+time.Second-1)/time.Second))
	var wg sync.WaitGroup
	defer wg.Wait()

	tick := time.NewTicker(time.Second / time.Duration(l.RPS))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		eps := l.Fleet.Endpoints(l.Selector)
		if len(eps) == 0 {
			l.recordUnsent(true)
			continue
		}
		ep := eps[rand.IntN(len(eps))]
		select {
		case inFlight <- struct{}{}:
		default:
			l.recordUnsent(false)
			continue
		}
		wg.Go(func() {
			defer func() { <-inFlight }()
			l.send(ctx, client, ep)
		})
	}
}

func (l *Load) validate() error {
	var errs []error
	if l.Fleet == nil {
		errs = append(errs, errors.New("load needs a Fleet"))
	}
	if l.RPS < 1 || l.RPS > MaxRPS {
		errs = append(errs, fmt.Errorf("load RPS %d is not within 1 to %d", l.RPS, MaxRPS))
	}
	if l.Timeout < 0 || l.Timeout > maxTimeout {
		errs = append(errs, fmt.Errorf("load Timeout %v is not within 0 to %v", l.Timeout, maxTimeout))
	}
	return errors.Join(errs...)
}

// send makes one request to ep and records its outcome.
func (l *Load) send(ctx context.Context, client *http.Client, ep Endpoint) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep.Addr+"/", nil)
	if err != nil {
		l.recordPod(ep.Pod, 0)
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // cut short by Run stopping, not by the pod
		}
		l.recordPod(ep.Pod, 0)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // lets the connection be reused
	_ = resp.Body.Close()
	l.recordPod(ep.Pod, resp.StatusCode)
}

// recordPod counts a response with code from pod, or an error when code is 0.
func (l *Load) recordPod(pod string, code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pods == nil {
		l.pods = map[string]*PodStats{}
	}
	p, ok := l.pods[pod]
	if !ok {
		p = &PodStats{Codes: map[int]int{}}
		l.pods[pod] = p
	}
	if code == 0 {
		p.Errors++
		return
	}
	p.Codes[code]++
}

// recordUnsent counts a request that was not sent.
func (l *Load) recordUnsent(noEndpoints bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if noEndpoints {
		l.noEndpoints++
	} else {
		l.dropped++
	}
}

// Stats returns a copy of the counts so far.
func (l *Load) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := Stats{
		Pods:        make(map[string]PodStats, len(l.pods)),
		NoEndpoints: l.noEndpoints,
		Dropped:     l.dropped,
	}
	for name, p := range l.pods {
		out.Pods[name] = PodStats{Codes: maps.Clone(p.Codes), Errors: p.Errors}
	}
	return out
}
