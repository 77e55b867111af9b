package loadtester

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// GateStore keeps the state of the manual gates. A gate never written is closed.
type GateStore interface {
	// IsOpen reports whether the gate key is open.
	IsOpen(ctx context.Context, key string) (bool, error)
	// Set opens or closes the gate key.
	Set(ctx context.Context, key string, open bool) error
}

// ErrBadGateKey is returned for a gate key the store cannot hold (wrapped with the reason).
var ErrBadGateKey = errors.New("invalid gate key")

// Gate values as written to a ConfigMap.
const (
	GateOpen   = "open"
	GateClosed = "closed"
)

// MemoryGates is a GateStore in memory, as Flagger's tester keeps its gates: every gate is
// closed again after a restart.
type MemoryGates struct {
	mu    sync.Mutex
	gates map[string]bool
}

// IsOpen implements GateStore.
func (m *MemoryGates) IsOpen(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gates[key], nil
}

// Set implements GateStore.
func (m *MemoryGates) Set(_ context.Context, key string, open bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gates == nil {
		m.gates = map[string]bool{}
	}
	m.gates[key] = open
	return nil
}

// ConfigMapGates keeps the gates in one ConfigMap, one data key per gate (`podinfo.test:
// open`, `rollback.podinfo.test: closed`), so they survive a restart or a reschedule onto
// another node without a volume, several replicas see the same gates, and an operator can
// read or set one with kubectl. Every check reads the ConfigMap (a check comes once per
// analysis interval per release, and a read-through cache cannot miss an edit made with
// kubectl); every change is a merge patch of that one key, so concurrent changes of different
// gates never conflict. The ConfigMap is created on the first change when it is missing.
type ConfigMapGates struct {
	Client    corev1client.ConfigMapsGetter
	Namespace string
	Name      string
}

// IsOpen implements GateStore.
func (c *ConfigMapGates) IsOpen(ctx context.Context, key string) (bool, error) {
	if err := checkGateKey(key); err != nil {
		return false, err
	}
	cm, err := c.Client.ConfigMaps(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read gates from ConfigMap %s/%s: %w", c.Namespace, c.Name, err)
	}
	switch v, ok := cm.Data[key]; {
	case !ok || v == GateClosed:
		return false, nil
	case v == GateOpen:
		return true, nil
	default:
		return false, fmt.Errorf("gate %s in ConfigMap %s/%s is %q: want %q or %q", key, c.Namespace, c.Name, v, GateOpen, GateClosed)
	}
}

// Set implements GateStore.
func (c *ConfigMapGates) Set(ctx context.Context, key string, open bool) error {
	if err := checkGateKey(key); err != nil {
		return err
	}
	value := GateClosed
	if open {
		value = GateOpen
	}
	patch, err := json.Marshal(map[string]any{"data": map[string]string{key: value}})
	if err != nil {
		return err
	}
	cms := c.Client.ConfigMaps(c.Namespace)
	for range 3 {
		_, err = cms.Patch(ctx, c.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "sluice-loadtester"})
		if !apierrors.IsNotFound(err) {
			break
		}
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: map[string]string{
				"app.kubernetes.io/managed-by": "sluice-loadtester",
			}},
			Data: map[string]string{key: value},
		}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: "sluice-loadtester"})
		if !apierrors.IsAlreadyExists(err) {
			break // created, or failed for another reason
		}
		// Created by someone else since the patch: patch that one.
	}
	if err != nil {
		return fmt.Errorf("write gate %s to ConfigMap %s/%s: %w", key, c.Namespace, c.Name, err)
	}
	return nil
}

// checkGateKey refuses a key a ConfigMap cannot hold. Gate keys are name.namespace of a
// Deployment or Canary, which always fit; a payload with another name is told so.
func checkGateKey(key string) error {
	if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
		return fmt.Errorf("%w %q: %s", ErrBadGateKey, key, strings.Join(errs, "; "))
	}
	return nil
}
