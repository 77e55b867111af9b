package demoapp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/types"
)

// shutdownTimeout bounds how long a stopped server waits for its in-flight requests (the
// slowest of which takes ~800 ms) before closing their connections.
const shutdownTimeout = 5 * time.Second

// podServer is the process a pod would run: one HTTP server on the pod's address.
type podServer struct {
	// What the server was started for; any change means a new server.
	uid   types.UID
	ip    string
	image string

	addr      string
	behaviour Behaviour
	srv       *http.Server
	ln        net.Listener
	served    chan struct{} // closed when Serve has returned

	// Refreshed on every sync, read by Fleet.Endpoints under the Fleet's lock.
	ready  bool
	labels map[string]string
}

// workload names the Deployment a pod belongs to, as a mesh sidecar would report it.
type workload struct{ namespace, name string }

// startServer binds addr and serves the simulated app there until stop is called.
func startServer(name, addr, image string, b Behaviour, w workload) (*podServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &podServer{
		addr:      addr,
		image:     image,
		behaviour: b,
		ln:        ln,
		served:    make(chan struct{}),
		srv: &http.Server{
			Handler:           newPodHandler(name, image, b, w),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       time.Minute,
		},
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln) // returns when the listener is closed; nothing to report
	}()
	return s, nil
}

// stop releases the address at once, then lets in-flight requests finish in the background,
// tracked by wg.
func (s *podServer) stop(wg *sync.WaitGroup) {
	_ = s.ln.Close() // Shutdown closes it too; closing here frees the address before returning
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		<-s.served
	})
}

// newPodHandler returns the handler of one simulated pod: the app on every path, instrumented
// on a registry of its own (the app's own series, and those an Istio sidecar would report for the
// requests the pod served), and that registry on /metrics.
func newPodHandler(pod, image string, b Behaviour, w workload) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total",
		Help: "Total number of HTTP requests by status code and method.",
	}, []string{"code", "method"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "Duration of HTTP requests in seconds by status code and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"code", "method"})
	inFlight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "http_requests_in_flight",
		Help: "Number of HTTP requests being served.",
	})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "demoapp_info",
		Help: "Always 1; labels describe the simulated app.",
	}, []string{"behaviour", "image"})
	info.WithLabelValues(b.Name, image).Set(1)

	// The server side of an Istio sidecar (reporter="destination"): what the istio router's
	// builtin checks read.
	sidecarLabels := prometheus.Labels{"reporter": "destination", "destination_workload": w.name, "destination_workload_namespace": w.namespace}
	istioRequests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "istio_requests_total", Help: "Requests served, as an Istio sidecar reports them.", ConstLabels: sidecarLabels,
	}, []string{"response_code"})
	istioDuration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "istio_request_duration_milliseconds", Help: "Request duration in ms, as an Istio sidecar reports it.", ConstLabels: sidecarLabels,
		Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
	}, []string{"response_code"})

	reg := prometheus.NewRegistry()
	reg.MustRegister(requests, duration, inFlight, info, istioRequests, istioDuration)

	mux := http.NewServeMux()
	mux.Handle("/", sidecar(istioRequests, istioDuration, promhttp.InstrumentHandlerInFlight(inFlight,
		promhttp.InstrumentHandlerDuration(duration,
			promhttp.InstrumentHandlerCounter(requests, &app{pod: pod, behaviour: b})))))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// sidecar counts each request next's answer as the server side of an Istio sidecar would.
func sidecar(requests *prometheus.CounterVec, duration *prometheus.HistogramVec, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		code := strconv.Itoa(rec.code)
		requests.WithLabelValues(code).Inc()
		duration.WithLabelValues(code).Observe(float64(time.Since(start)) / float64(time.Millisecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// app answers like the simulated application would.
type app struct {
	pod       string
	behaviour Behaviour
	requests  atomic.Uint64
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := a.requests.Add(1)
	t := time.NewTimer(a.behaviour.delay())
	select {
	case <-t.C:
	case <-r.Context().Done():
		// The client gave up; answer anyway (into the void), as a real app would, so that the
		// metrics count what the app did rather than what the client saw.
		t.Stop()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Pod", a.pod)
	if a.behaviour.fails(n) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprintf(w, "%s: simulated failure of request %d\n", a.pod, n)
		return
	}
	_, _ = fmt.Fprintf(w, "%s: hello (%s, request %d)\n", a.pod, a.behaviour.Name, n)
}
