package routers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Labels on every object a router creates.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "sluice"
)

// Objects reads and writes routing objects as unstructured data: routers depend on no mesh's Go
// types, only on the shape of its objects, and read through the informer cache.
type Objects struct {
	Client client.Client
}

// Get reads one object; found is false when it does not exist (or its kind is not served).
func (o Objects) Get(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (u *unstructured.Unstructured, found bool, err error) {
	u = &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	err = o.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, u)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get %s %s/%s: %w", gvk.Kind, namespace, name, err)
	}
	return u, true, nil
}

// Edit lets mutate change a copy of obj and updates obj when the copy differs. The update
// carries obj's resourceVersion, so a concurrent edit makes it fail with a conflict and the
// step is retried on fresh data.
func (o Objects) Edit(ctx context.Context, obj *unstructured.Unstructured, mutate func(u *unstructured.Unstructured) error) error {
	u := obj.DeepCopy()
	if err := mutate(u); err != nil {
		return fmt.Errorf("%s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	if equality.Semantic.DeepEqual(u.Object, obj.Object) {
		return nil
	}
	if err := o.Client.Update(ctx, u); err != nil {
		return fmt.Errorf("update %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// Ensure creates want, or updates the existing object's labels, annotations and spec to want's.
// An existing object of that name that Sluice did not create is left alone and reported.
func (o Objects) Ensure(ctx context.Context, want *unstructured.Unstructured) error {
	labels := want.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManagedBy] = ManagedBy
	want.SetLabels(labels)
	have, found, err := o.Get(ctx, want.GroupVersionKind(), want.GetNamespace(), want.GetName())
	if err != nil {
		return err
	}
	if !found {
		if err := o.Client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s/%s: %w", want.GetKind(), want.GetNamespace(), want.GetName(), err)
		}
		return nil
	}
	if !Owned(have) {
		return fmt.Errorf("%s %s/%s exists and was not created by Sluice; rename it or point %s elsewhere",
			have.GetKind(), have.GetNamespace(), have.GetName(), spec.AnnRoute)
	}
	return o.Edit(ctx, have, func(u *unstructured.Unstructured) error {
		u.SetLabels(want.GetLabels())
		u.SetAnnotations(want.GetAnnotations())
		u.SetOwnerReferences(want.GetOwnerReferences())
		u.Object["spec"] = want.Object["spec"]
		return nil
	})
}

// Delete removes a Sluice-created object; a missing one is fine, a foreign one is kept.
func (o Objects) Delete(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) error {
	u, found, err := o.Get(ctx, gvk, namespace, name)
	if err != nil || !found || !Owned(u) {
		return err
	}
	uid := u.GetUID()
	if err := o.Client.Delete(ctx, u, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %s %s/%s: %w", gvk.Kind, namespace, name, err)
	}
	return nil
}

// Owned reports whether Sluice created the object.
func Owned(u *unstructured.Unstructured) bool { return u.GetLabels()[LabelManagedBy] == ManagedBy }

// New is an empty object of kind gvk owned by t's owner.
func New(gvk schema.GroupVersionKind, t Target, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(t.Namespace)
	u.SetName(name)
	u.SetLabels(map[string]string{LabelManagedBy: ManagedBy})
	if t.Owner.UID != "" {
		u.SetOwnerReferences([]metav1.OwnerReference{t.Owner})
	}
	return u
}

// Maps returns the list at fields as maps, skipping entries of another type.
func Maps(obj map[string]any, fields ...string) []map[string]any {
	l, _, _ := unstructured.NestedFieldNoCopy(obj, fields...)
	items, _ := l.([]any)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// SetMaps stores ms as the list at fields.
func SetMaps(obj map[string]any, ms []map[string]any, fields ...string) {
	_ = unstructured.SetNestedField(obj, List(ms), fields...)
}

// List converts maps to the []any an unstructured object holds.
func List(ms []map[string]any) []any {
	l := make([]any, len(ms))
	for i, m := range ms {
		l[i] = m
	}
	return l
}

// Replace puts with in place of the first item of l that matches and drops the other matching
// items, so entries keep the order the user wrote.
func Replace(l []map[string]any, match func(map[string]any) bool, with ...map[string]any) []any {
	var out []any
	done := false
	for _, it := range l {
		if !match(it) {
			out = append(out, it)
			continue
		}
		if !done {
			for _, w := range with {
				out = append(out, w)
			}
			done = true
		}
	}
	return out
}

// Rules walks the list of rules (routes) at fields of obj, the shape the Gateway API, Istio
// and Contour routers share: the rules Sluice added (ours) are dropped, each rule the router
// manages is replaced by what edit returns (at is where it lands in the new list), the others
// stay as they are. It returns how many rules were managed.
func Rules(obj map[string]any, fields []string, ours, managed func(map[string]any) bool,
	edit func(rule map[string]any, at int) ([]map[string]any, error)) (int, error) {
	var out []map[string]any
	n := 0
	for _, rule := range Maps(obj, fields...) {
		switch {
		case ours(rule):
		case !managed(rule):
			out = append(out, rule)
		default:
			n++
			edited, err := edit(rule, len(out))
			if err != nil {
				return n, err
			}
			out = append(out, edited...)
		}
	}
	SetMaps(obj, out, fields...)
	return n, nil
}

// Str reads a string field ("" when absent).
func Str(obj map[string]any, fields ...string) string {
	s, _, _ := unstructured.NestedString(obj, fields...)
	return s
}

// Int reads a number field (JSON numbers decode as int64 or float64).
func Int(obj map[string]any, fields ...string) (int64, bool) {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, fields...)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		return int64(n), true
	case int:
		return int64(n), true
	}
	return 0, false
}

// Copy deep-copies a JSON-shaped map.
func Copy(m map[string]any) map[string]any { return runtimeDeepCopy(m) }

func runtimeDeepCopy(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}
