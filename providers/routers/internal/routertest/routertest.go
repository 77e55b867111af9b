// Package routertest holds what the routers' tests share: objects written as YAML, and a
// normal form to compare them in.
package routertest

import (
	"testing"

	"sigs.k8s.io/yaml"
)

// Parse reads an object's content from YAML.
func Parse(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Norm round-trips m through YAML, so that objects built in Go (int64, []any of maps) and
// parsed ones (float64, …) compare equal when they say the same.
func Norm(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(t, string(b))
}
