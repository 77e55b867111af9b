package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Endpoint is one pod a backend sends traffic to.
type Endpoint struct {
	// Pod is the pod's name; Addr is <pod IP>:<target port>.
	Pod, Addr string
	// Weight is the weight of the pod's upstream in Caddy's weighted_round_robin.
	Weight int
}

// serviceEndpoints returns the endpoints a Service port has: its selector's pods that are Ready
// and not terminating (all Running pods with publishNotReadyAddresses), at the port's
// targetPort, sorted by pod name. This is what the EndpointSlice controller would publish; it
// is computed here because EndpointSlices refuse the loopback pod IPs of the local control
// plane. svc is nil when the Service does not exist.
func serviceEndpoints(svc *corev1.Service, port int32, pods []corev1.Pod) ([]Endpoint, error) {
	if svc == nil {
		return nil, errors.New("no such Service")
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, errors.New("the Service is of type ExternalName, which is not supported")
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, errors.New("the Service has no selector (manually managed endpoints are not supported)")
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port })
	if i < 0 {
		return nil, fmt.Errorf("the Service has no port %d", port)
	}
	target := svc.Spec.Ports[i].TargetPort
	selector := labels.SelectorFromValidatedSet(svc.Spec.Selector)
	var eps []Endpoint
	for _, pod := range pods {
		if pod.Namespace != svc.Namespace || !selector.Matches(labels.Set(pod.Labels)) || pod.Status.PodIP == "" ||
			pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
			continue
		}
		if !svc.Spec.PublishNotReadyAddresses && !podReady(&pod) {
			continue
		}
		p, ok := targetPort(&pod, target, port)
		if !ok {
			continue // as the EndpointSlice controller does with a named port the pod lacks
		}
		eps = append(eps, Endpoint{Pod: pod.Name, Addr: net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(p)))})
	}
	slices.SortFunc(eps, func(a, b Endpoint) int { return cmp.Compare(a.Pod, b.Pod) })
	return eps, nil
}

// targetPort resolves a Service port's targetPort on pod: a number, a container port name, or
// (unset) the Service port itself.
func targetPort(pod *corev1.Pod, target intstr.IntOrString, port int32) (int32, bool) {
	switch {
	case target.Type == intstr.String && target.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == target.StrVal && cp.Protocol != corev1.ProtocolUDP && cp.Protocol != corev1.ProtocolSCTP {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case target.Type == intstr.Int && target.IntVal != 0:
		return target.IntVal, true
	}
	return port, true
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
