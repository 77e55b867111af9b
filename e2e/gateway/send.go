package gateway

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Tally is where a batch of requests went.
type Tally struct {
	Total, Other int
	ByPod        map[string]int // 200s by the pod that answered (X-Pod)
	Failures     map[int]int    // other responses by status code (0: no response)
}

// Share is the fraction of all requests answered 200 by a pod whose name starts with prefix.
func (c Tally) Share(prefix string) float64 {
	n := 0
	for pod, k := range c.ByPod {
		if strings.HasPrefix(pod, prefix) {
			n += k
		}
	}
	return float64(n) / float64(c.Total)
}

// Senders is how many requests Send keeps in flight: the demo app takes 5–20 ms to answer.
const Senders = 16

// NewClient returns an HTTP client that keeps a connection per sender.
func NewClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: Senders}}
}

// Send makes n GET requests to url with header, Senders at a time, and counts who answered.
func Send(ctx context.Context, client *http.Client, url string, n int, header http.Header) Tally {
	c := Tally{Total: n, ByPod: map[string]int{}, Failures: map[int]int{}}
	var mu sync.Mutex
	requests := make(chan struct{}, n)
	for range n {
		requests <- struct{}{}
	}
	close(requests)
	var wg sync.WaitGroup
	for range Senders {
		wg.Go(func() {
			for range requests {
				pod, code := get(ctx, client, url, header)
				mu.Lock()
				if code == http.StatusOK && pod != "" {
					c.ByPod[pod]++
				} else {
					c.Other++
					c.Failures[code]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return c
}

// get makes one request and returns the pod that answered (X-Pod) and the status code, 0 when
// there was no response.
func get(ctx context.Context, client *http.Client, url string, header http.Header) (pod string, code int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
	if err != nil {
		return "", 0
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-Pod"), resp.StatusCode
}
