package demoapp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// DefaultPort is the port every simulated pod serves on, app and /metrics alike.
const DefaultPort = 8080

// retryPeriod is how often the Fleet re-examines all pods even without a pod event, so that a
// server whose address could not be bound is tried again.
const retryPeriod = time.Second

// Fleet serves a real HTTP server on <podIP>:<Port> for every Running pod it watches, for as
// long as the pod runs with that IP. Set the fields, then call Run once; the other methods are
// safe to call concurrently with Run.
type Fleet struct {
	// Client reads and watches pods.
	Client kubernetes.Interface
	// Namespace holds the pods; it must be set.
	Namespace string
	// Selector chooses the pods to serve; nil means every pod of the namespace.
	Selector labels.Selector
	// Port is the port each server listens on; 0 means DefaultPort.
	Port int

	mu       sync.RWMutex
	running  bool
	servers  map[string]*podServer // by pod name
	failures map[string]string     // last error per pod, so that a retry is not logged again
}

// Endpoint is one pod the Fleet serves.
type Endpoint struct {
	// Pod is the pod's name.
	Pod string
	// Addr is the host:port the pod's server listens on.
	Addr string
	// Behaviour is what the server does, from the pod's image.
	Behaviour Behaviour
	// Ready is true when the pod's Ready condition is True and it is not terminating: the pods
	// a Service would send traffic to.
	Ready bool
	// Labels are the pod's labels.
	Labels labels.Set
}

// Run watches the pods and keeps one server per Running pod until ctx is done; it then shuts
// every server down, waits for their in-flight requests and returns nil. It returns an error at
// once when the Fleet is misconfigured or already running.
func (f *Fleet) Run(ctx context.Context) error {
	if err := f.validate(); err != nil {
		return err
	}
	f.mu.Lock()
	if f.running {
		f.mu.Unlock()
		return errors.New("fleet is already running")
	}
	f.running = true
	f.servers = map[string]*podServer{}
	f.failures = map[string]string{}
	f.mu.Unlock()

	selector := f.selector()
	informer := coreinformers.NewFilteredPodInformer(f.Client, f.Namespace, 0, cache.Indexers{},
		func(opts *metav1.ListOptions) { opts.LabelSelector = selector.String() })
	// Every event makes the loop below look at all pods again: level-based, and cheap at the
	// sizes of a demo.
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return fmt.Errorf("watch pods in namespace %s: %w", f.Namespace, err)
	}

	var informerDone, draining sync.WaitGroup
	informerDone.Go(func() { informer.RunWithContext(ctx) })
	defer func() {
		f.stopAll(&draining)
		draining.Wait()
		informerDone.Wait()
		f.mu.Lock()
		f.running = false
		f.mu.Unlock()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil // ctx ended first; the informer has logged why it could not list
	}

	retry := time.NewTicker(retryPeriod)
	defer retry.Stop()
	for {
		f.sync(ctx, informer.GetStore().List(), selector, &draining)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retry.C:
		}
	}
}

func (f *Fleet) validate() error {
	var errs []error
	if f.Client == nil {
		errs = append(errs, errors.New("fleet needs a Client"))
	}
	if f.Namespace == "" {
		errs = append(errs, errors.New("fleet needs a Namespace"))
	}
	if f.Port < 0 || f.Port > 65535 {
		errs = append(errs, fmt.Errorf("fleet Port %d is not a TCP port", f.Port))
	}
	return errors.Join(errs...)
}

func (f *Fleet) selector() labels.Selector {
	if f.Selector == nil {
		return labels.Everything()
	}
	return f.Selector
}

func (f *Fleet) port() int {
	if f.Port == 0 {
		return DefaultPort
	}
	return f.Port
}

// sync makes the running servers match pods: it stops the servers of pods that are gone or
// changed and starts servers for pods that have none.
func (f *Fleet) sync(ctx context.Context, pods []any, selector labels.Selector, draining *sync.WaitGroup) {
	logger := klog.FromContext(ctx)
	want := map[string]*corev1.Pod{}
	for _, obj := range pods {
		pod, ok := obj.(*corev1.Pod)
		// The selector was sent with the watch; checking it again costs nothing and keeps
		// clients that ignore it honest.
		if !ok || !selector.Matches(labels.Set(pod.Labels)) {
			continue
		}
		if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" {
			want[pod.Name] = pod
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	for name, s := range f.servers {
		pod, ok := want[name]
		if ok && pod.UID == s.uid && pod.Status.PodIP == s.ip && firstImage(pod) == s.image {
			continue
		}
		s.stop(draining)
		delete(f.servers, name)
		logger.V(1).Info("Stopped pod server", "pod", klog.KRef(f.Namespace, name), "addr", s.addr)
	}
	for name := range f.failures {
		if _, ok := want[name]; !ok {
			delete(f.failures, name)
		}
	}
	for name, pod := range want {
		if s, ok := f.servers[name]; ok {
			s.ready = isReady(pod)
			s.labels = pod.Labels
			continue
		}
		s, err := f.start(pod)
		if err != nil {
			for other, o := range f.servers {
				if o.ip == pod.Status.PodIP {
					err = fmt.Errorf("%w (pod %s already serves on that IP: the control plane gave two pods one IP)", err, other)
				}
			}
			if f.failures[name] != err.Error() {
				f.failures[name] = err.Error()
				logger.Error(err, "Cannot serve pod; retrying", "pod", klog.KObj(pod))
			}
			continue
		}
		delete(f.failures, name)
		f.servers[name] = s
		logger.V(1).Info("Serving pod", "pod", klog.KObj(pod), "addr", s.addr, "behaviour", s.behaviour.Name)
	}
}

// start binds the server of a Running pod, refusing any address that is not loopback.
func (f *Fleet) start(pod *corev1.Pod) (*podServer, error) {
	ip := net.ParseIP(pod.Status.PodIP)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("pod IP %q is not a loopback address; only loopback is ever bound", pod.Status.PodIP)
	}
	image := firstImage(pod)
	s, err := startServer(pod.Name, net.JoinHostPort(ip.String(), strconv.Itoa(f.port())), image, BehaviourFor(image),
		workload{namespace: pod.Namespace, name: deploymentOf(pod)})
	if err != nil {
		return nil, err
	}
	s.uid = pod.UID
	s.ip = pod.Status.PodIP
	s.ready = isReady(pod)
	s.labels = pod.Labels
	return s, nil
}

// deploymentOf names the Deployment that owns pod through its ReplicaSet
// (`<deployment>-<pod-template-hash>`), or the pod's own name when it has none.
func deploymentOf(pod *corev1.Pod) string {
	for _, ref := range pod.OwnerReferences {
		if ref.Kind == "ReplicaSet" {
			if hash := pod.Labels["pod-template-hash"]; hash != "" {
				return strings.TrimSuffix(ref.Name, "-"+hash)
			}
		}
	}
	return pod.Name
}

func (f *Fleet) stopAll(draining *sync.WaitGroup) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, s := range f.servers {
		s.stop(draining)
		delete(f.servers, name)
	}
}

// Serving returns every pod the Fleet serves right now, Ready or not, sorted by pod name.
func (f *Fleet) Serving() []Endpoint {
	return f.endpoints(func(*podServer) bool { return true })
}

// Endpoints returns the pods a Service with selector would send traffic to: served, Ready, not
// terminating and matched by selector (nil matches every pod). They are sorted by pod name.
func (f *Fleet) Endpoints(selector labels.Selector) []Endpoint {
	if selector == nil {
		selector = labels.Everything()
	}
	return f.endpoints(func(s *podServer) bool {
		return s.ready && selector.Matches(labels.Set(s.labels))
	})
}

func (f *Fleet) endpoints(keep func(*podServer) bool) []Endpoint {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var eps []Endpoint
	for name, s := range f.servers {
		if keep(s) {
			eps = append(eps, Endpoint{
				Pod:       name,
				Addr:      s.addr,
				Behaviour: s.behaviour,
				Ready:     s.ready,
				Labels:    labels.Set(maps.Clone(s.labels)),
			})
		}
	}
	slices.SortFunc(eps, func(a, b Endpoint) int { return strings.Compare(a.Pod, b.Pod) })
	return eps
}

// firstImage returns the image of the pod's first container, which decides its behaviour.
func firstImage(pod *corev1.Pod) string {
	if len(pod.Spec.Containers) == 0 {
		return ""
	}
	return pod.Spec.Containers[0].Image
}

// isReady reports whether a Service would route to the pod: Ready condition True and not
// terminating.
func isReady(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
