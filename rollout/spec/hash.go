package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// TemplateHash identifies a pod template: the first 10 hex digits of the SHA-256 of its JSON
// form. The API server hands admission webhooks defaulted objects, so the same manifest always
// hashes the same.
func TemplateHash(t *corev1.PodTemplateSpec) string {
	b, err := json.Marshal(t)
	if err != nil {
		panic("marshal pod template: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:5])
}

// OnlyRestarted reports whether a and b differ in nothing but the restartedAt annotation that
// `kubectl rollout restart` writes.
func OnlyRestarted(a, b *corev1.PodTemplateSpec) bool {
	if a.Annotations[AnnRestartedAt] == b.Annotations[AnnRestartedAt] {
		return false
	}
	return TemplateHash(withoutRestart(a)) == TemplateHash(withoutRestart(b))
}

func withoutRestart(t *corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
	c := t.DeepCopy()
	delete(c.Annotations, AnnRestartedAt)
	if len(c.Annotations) == 0 {
		c.Annotations = nil
	}
	return c
}

// Images summarises a template's container images, e.g. "app=ghcr.io/x/app:v2".
func Images(t *corev1.PodTemplateSpec) string {
	parts := make([]string, 0, len(t.Spec.Containers))
	for _, c := range t.Spec.Containers {
		parts = append(parts, c.Name+"="+c.Image)
	}
	return strings.Join(parts, ",")
}
