package main

import (
	"slices"
	"strings"
	"testing"
)

// --watch-namespaces takes a comma-separated list of namespace names and refuses anything
// that cannot be one (it would scope the cache to nothing the RBAC granted).
func TestWatchNamespaces(t *testing.T) {
	o := parse(t, "--watch-namespaces=shop,payments")
	if err := o.Validate(); err != nil {
		t.Fatalf("valid namespaces refused: %v", err)
	}
	if !slices.Equal(o.WatchNamespaces, []string{"shop", "payments"}) {
		t.Errorf("WatchNamespaces = %v", o.WatchNamespaces)
	}
	if o := parse(t); len(o.WatchNamespaces) != 0 {
		t.Errorf("default WatchNamespaces = %v, want none (the whole cluster)", o.WatchNamespaces)
	}
	o = parse(t, "--watch-namespaces=shop,Team_A")
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), `"Team_A" is not a namespace name`) {
		t.Errorf("Validate() = %v, want Team_A refused", err)
	}
}
