package demoapp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestScrapeAnnotations(t *testing.T) {
	want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}
	if diff := cmp.Diff(want, ScrapeAnnotations(9090)); diff != "" {
		t.Errorf("ScrapeAnnotations(9090) (-want +got):\n%s", diff)
	}
}

func TestDeployment(t *testing.T) {
	want := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo", Labels: map[string]string{"app": "web"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      map[string]string{"app": "web"},
					Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
				},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "demo:v1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				}}},
			},
		},
	}
	got := Deployment("web", "demo", "demo:v1", 3)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deployment() (-want +got):\n%s", diff)
	}

	// The selector and the template labels must not share a map: mutating one (as a rollout
	// tool adding a label to the template does) must not change the other.
	got.Spec.Template.Labels["extra"] = "x"
	if _, ok := got.Spec.Selector.MatchLabels["extra"]; ok {
		t.Error("template labels and selector share a map")
	}
}
