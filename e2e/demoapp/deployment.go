package demoapp

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Annotations a Prometheus scrape job conventionally keys on (see the package documentation).
const (
	ScrapeAnnotation = "prometheus.io/scrape"
	PortAnnotation   = "prometheus.io/port"
)

// ScrapeAnnotations returns the pod-template annotations that ask Prometheus to scrape
// <podIP>:port/metrics.
func ScrapeAnnotations(port int) map[string]string {
	return map[string]string{
		ScrapeAnnotation: "true",
		PortAnnotation:   strconv.Itoa(port),
	}
}

// Deployment returns a demo Deployment whose pods the Fleet serves: label app=<name> on the
// selector and pod template, ScrapeAnnotations(DefaultPort) on the template, and one container
// "app" running image with containerPort DefaultPort named "http".
func Deployment(name, namespace, image string, replicas int32) *appsv1.Deployment {
	podLabels := map[string]string{"app": name}
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: namespace,
			Labels:    map[string]string{"app": name},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      podLabels,
					Annotations: ScrapeAnnotations(DefaultPort),
				},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:  "app",
						Image: image,
						Ports: []corev1.ContainerPort{{
							Name:          "http",
							ContainerPort: DefaultPort,
							Protocol:      corev1.ProtocolTCP,
						}},
					}},
				},
			},
		},
	}
}
