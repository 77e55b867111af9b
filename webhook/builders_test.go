package webhook_test

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluice-dev/sluice/providers/catalogtest"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// now is the admission time of every test request.
var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// deployment is a small builder for the Deployments the webhook sees.
type deployment struct{ d *appsv1.Deployment }

// testDeployment is an opted-in Deployment as the API server hands it to a webhook: defaulted,
// three replicas of ghcr.io/x/app:v1.
func testDeployment(name string) *deployment {
	labels := map[string]string{"app": name}
	return &deployment{&appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "shop", UID: "7c1d6a3e-0000-4000-8000-000000000001",
			ResourceVersion: "1234", Generation: 7,
			CreationTimestamp: metav1.NewTime(now.Add(-24 * time.Hour)),
			Labels:            map[string]string{"app": name, spec.LabelEnabled: spec.ValueEnabled},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "app", Image: "ghcr.io/x/app:v1",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
						Env:   []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}},
							PeriodSeconds: 5, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
						},
						TerminationMessagePath:   corev1.TerminationMessagePathDefault,
						TerminationMessagePolicy: corev1.TerminationMessageReadFile,
						ImagePullPolicy:          corev1.PullIfNotPresent,
					}},
					RestartPolicy:                 corev1.RestartPolicyAlways,
					TerminationGracePeriodSeconds: ptr(int64(30)),
					DNSPolicy:                     corev1.DNSClusterFirst,
					SchedulerName:                 corev1.DefaultSchedulerName,
					SecurityContext:               &corev1.PodSecurityContext{},
				},
			},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr(intstr.FromString("25%")), MaxSurge: ptr(intstr.FromString("25%")),
				},
			},
			RevisionHistoryLimit:    ptr(int32(10)),
			ProgressDeadlineSeconds: ptr(int32(600)),
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 7, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
		},
	}}
}

func ptr[T any](v T) *T { return &v }

// Image sets the app container's image tag.
func (b *deployment) Image(tag string) *deployment {
	b.d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/x/app:" + tag
	return b
}

func (b *deployment) Annotate(k, v string) *deployment {
	if b.d.Annotations == nil {
		b.d.Annotations = map[string]string{}
	}
	b.d.Annotations[k] = v
	return b
}

func (b *deployment) Unannotate(k string) *deployment { delete(b.d.Annotations, k); return b }

// OptOut removes the opt-in label.
func (b *deployment) OptOut() *deployment { delete(b.d.Labels, spec.LabelEnabled); return b }

func (b *deployment) Label(k, v string) *deployment { b.d.Labels[k] = v; return b }

func (b *deployment) Paused(p bool) *deployment { b.d.Spec.Paused = p; return b }

func (b *deployment) Replicas(n int32) *deployment { b.d.Spec.Replicas = &n; return b }

// Restarted sets what `kubectl rollout restart` writes.
func (b *deployment) Restarted(at string) *deployment {
	if b.d.Spec.Template.Annotations == nil {
		b.d.Spec.Template.Annotations = map[string]string{}
	}
	b.d.Spec.Template.Annotations[spec.AnnRestartedAt] = at
	return b
}

// State writes Sluice's release record.
func (b *deployment) State(st spec.State) *deployment { return b.Annotate(spec.AnnState, st.Encode()) }

func (b *deployment) Obj() *appsv1.Deployment { return b.d.DeepCopy() }

// hashOf is the revision of a template with the given image tag.
func hashOf(tag string) string {
	return spec.TemplateHash(&testDeployment("web").Image(tag).d.Spec.Template)
}

// release is the record of a release of v2 from stable v1, in phase p.
func release(p spec.Phase, mods ...func(*spec.State)) spec.State {
	cfg, errs := spec.Parse(nil, catalogtest.Defaults())
	if len(errs) > 0 {
		panic(spec.FormatErrors(errs))
	}
	st := spec.State{
		Phase: p, Revision: hashOf("v2"), Stable: hashOf("v1"), Image: "app=ghcr.io/x/app:v2",
		Step: 1, Weight: 20, CanaryReady: true, StartedAt: now.Add(-time.Hour), StepAt: now.Add(-10 * time.Minute),
		LastRunAt: now.Add(-time.Minute), Plan: &cfg, Message: "analysis passed; weight 20%",
	}
	for _, m := range mods {
		m(&st)
	}
	return st
}
