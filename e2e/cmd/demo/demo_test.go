package main

import "testing"

// TestDemo runs `make demo`'s scenario so that the demo cannot rot: it boots its own control
// plane, promotes a good release and rolls back a bad one.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo boots a local control plane; run without -short (make e2e)")
	}
	if err := run(t.Context()); err != nil {
		t.Fatal(err)
	}
}
