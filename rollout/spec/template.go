package spec

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"maps"
)

// GroupVersion of Sluice's CRDs, MetricTemplate and AlertProvider (deploy/crds).
var GroupVersion = schema.GroupVersion{Group: "sluice.dev", Version: "v1beta1"}

// AddToScheme registers MetricTemplate and AlertProvider.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &MetricTemplate{}, &MetricTemplateList{}, &AlertProvider{}, &AlertProviderList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// MetricTemplate is a reusable check query and the provider it runs on, shaped like Flagger's.
type MetricTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              MetricTemplateSpec `json:"spec"`
}

// MetricTemplateSpec is the template's provider and query.
type MetricTemplateSpec struct {
	Provider ProviderSpec `json:"provider"`
	Query    string       `json:"query"`
}

// ProviderSpec names a metrics backend.
type ProviderSpec struct {
	Type               string     `json:"type"`
	Address            string     `json:"address,omitempty"`
	SecretRef          *SecretRef `json:"secretRef,omitempty"`
	Region             string     `json:"region,omitempty"`
	InsecureSkipVerify bool       `json:"insecureSkipVerify,omitempty"`
	// Headers are added to every query (prometheus).
	Headers map[string]string `json:"headers,omitempty"`
}

// SecretRef names a Secret in the template's namespace.
type SecretRef struct {
	Name string `json:"name"`
}

// TemplateRef points a check at a MetricTemplate; Namespace defaults to the Deployment's.
type TemplateRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// MetricTemplateList is a list of MetricTemplates.
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (t *MetricTemplate) DeepCopyObject() runtime.Object { return t.DeepCopy() }

// DeepCopy copies the template.
func (t *MetricTemplate) DeepCopy() *MetricTemplate {
	if t == nil {
		return nil
	}
	out := *t
	t.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if t.Spec.Provider.SecretRef != nil {
		ref := *t.Spec.Provider.SecretRef
		out.Spec.Provider.SecretRef = &ref
	}
	out.Spec.Provider.Headers = maps.Clone(t.Spec.Provider.Headers)
	return &out
}

// DeepCopyObject implements runtime.Object.
func (l *MetricTemplateList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]MetricTemplate, len(l.Items))
	for i := range l.Items {
		out.Items[i] = *l.Items[i].DeepCopy()
	}
	return &out
}
