package spec_test

import (
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// template is a small pod template builder.
type template struct{ corev1.PodTemplateSpec }

func podTemplate(image string) *template {
	return &template{corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: image,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}}
}

func (t *template) Annotate(k, v string) *template {
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	t.Annotations[k] = v
	return t
}

func (t *template) Label(k, v string) *template { t.Labels[k] = v; return t }

func (t *template) Env(k, v string) *template {
	t.Spec.Containers[0].Env = append(t.Spec.Containers[0].Env, corev1.EnvVar{Name: k, Value: v})
	return t
}

func (t *template) Sidecar(name, image string) *template {
	t.Spec.Containers = append(t.Spec.Containers, corev1.Container{Name: name, Image: image})
	return t
}

func (t *template) CPU(q string) *template {
	t.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(q)}
	return t
}

func (t *template) T() *corev1.PodTemplateSpec { return &t.PodTemplateSpec }

func TestTemplateHashStable(t *testing.T) {
	h := spec.TemplateHash(podTemplate("app:v1").T())
	if !regexp.MustCompile(`^[0-9a-f]{10}$`).MatchString(h) {
		t.Fatalf("TemplateHash = %q, want 10 hex digits", h)
	}
	// Same content built independently, map keys inserted in another order: same hash.
	a := podTemplate("app:v1").Label("tier", "front").Label("zone", "a").Annotate("x", "1").Annotate("y", "2").T()
	b := podTemplate("app:v1").Annotate("y", "2").Annotate("x", "1").Label("zone", "a").Label("tier", "front").T()
	if ha, hb := spec.TemplateHash(a), spec.TemplateHash(b); ha != hb {
		t.Errorf("equal templates hash differently: %s vs %s", ha, hb)
	}
	// A deep copy and a second call agree.
	if h2 := spec.TemplateHash(podTemplate("app:v1").T().DeepCopy()); h2 != h {
		t.Errorf("TemplateHash not stable: %s then %s", h, h2)
	}
	// Quantities are hashed in canonical form: 1000m is 1 CPU.
	if ha, hb := spec.TemplateHash(podTemplate("app:v1").CPU("1000m").T()), spec.TemplateHash(podTemplate("app:v1").CPU("1").T()); ha != hb {
		t.Errorf("1000m and 1 CPU hash differently: %s vs %s", ha, hb)
	}
	// Nil and empty annotation maps are the same template.
	e := podTemplate("app:v1").T()
	e.Annotations = map[string]string{}
	if he := spec.TemplateHash(e); he != h {
		t.Errorf("empty annotations hash %s, nil annotations %s", he, h)
	}
}

func TestTemplateHashSensitive(t *testing.T) {
	base := spec.TemplateHash(podTemplate("app:v1").T())
	tests := map[string]*corev1.PodTemplateSpec{
		"image":             podTemplate("app:v2").T(),
		"env":               podTemplate("app:v1").Env("LOG", "debug").T(),
		"pod label":         podTemplate("app:v1").Label("tier", "front").T(),
		"pod annotation":    podTemplate("app:v1").Annotate("x", "1").T(),
		"restartedAt":       podTemplate("app:v1").Annotate(spec.AnnRestartedAt, "2026-01-01T00:00:00Z").T(),
		"sidecar":           podTemplate("app:v1").Sidecar("proxy", "envoy:1").T(),
		"resource requests": podTemplate("app:v1").CPU("100m").T(),
	}
	seen := map[string]string{base: "base"}
	for name, tmpl := range tests {
		h := spec.TemplateHash(tmpl)
		if prev, ok := seen[h]; ok {
			t.Errorf("%s: hash %s equals that of %s", name, h, prev)
		}
		seen[h] = name
	}
}

func TestOnlyRestarted(t *testing.T) {
	const r1, r2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
	tests := map[string]struct {
		a, b *corev1.PodTemplateSpec
		want bool
	}{
		"first restart (no annotations before)": {
			a: podTemplate("app:v1").T(), b: podTemplate("app:v1").Annotate(spec.AnnRestartedAt, r1).T(), want: true,
		},
		"second restart": {
			a: podTemplate("app:v1").Annotate(spec.AnnRestartedAt, r1).T(), b: podTemplate("app:v1").Annotate(spec.AnnRestartedAt, r2).T(), want: true,
		},
		"restart next to other annotations": {
			a: podTemplate("app:v1").Annotate("x", "1").T(), b: podTemplate("app:v1").Annotate("x", "1").Annotate(spec.AnnRestartedAt, r1).T(), want: true,
		},
		"restartedAt removed": {
			a: podTemplate("app:v1").Annotate(spec.AnnRestartedAt, r1).T(), b: podTemplate("app:v1").T(), want: true,
		},
		"identical templates are not a restart": {
			a: podTemplate("app:v1").T(), b: podTemplate("app:v1").T(), want: false,
		},
		"same restartedAt, other change": {
			a: podTemplate("app:v1").Annotate(spec.AnnRestartedAt, r1).T(), b: podTemplate("app:v2").Annotate(spec.AnnRestartedAt, r1).T(), want: false,
		},
		"restart together with a new image": {
			a: podTemplate("app:v1").T(), b: podTemplate("app:v2").Annotate(spec.AnnRestartedAt, r1).T(), want: false,
		},
		"restart together with another annotation": {
			a: podTemplate("app:v1").T(), b: podTemplate("app:v1").Annotate("x", "1").Annotate(spec.AnnRestartedAt, r1).T(), want: false,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, b := tc.a.DeepCopy(), tc.b.DeepCopy()
			if got := spec.OnlyRestarted(tc.a, tc.b); got != tc.want {
				t.Errorf("OnlyRestarted() = %v, want %v", got, tc.want)
			}
			if got := spec.OnlyRestarted(tc.b, tc.a); got != tc.want {
				t.Errorf("OnlyRestarted() is not symmetric: reversed = %v, want %v", got, tc.want)
			}
			if diff := cmp.Diff(a, tc.a); diff != "" {
				t.Errorf("OnlyRestarted modified its first argument (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(b, tc.b); diff != "" {
				t.Errorf("OnlyRestarted modified its second argument (-want +got):\n%s", diff)
			}
		})
	}
}

func TestImages(t *testing.T) {
	got := spec.Images(podTemplate("ghcr.io/x/app:v2").Sidecar("proxy", "envoy:1.30").T())
	if want := "app=ghcr.io/x/app:v2,proxy=envoy:1.30"; got != want {
		t.Errorf("Images() = %q, want %q", got, want)
	}
}
