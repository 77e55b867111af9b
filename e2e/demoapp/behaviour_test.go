package demoapp

import (
	"testing"
	"time"
)

func TestBehaviourFor(t *testing.T) {
	tests := map[string]struct {
		image string
		want  string
	}{
		"plain tag":                  {image: "demo:v1", want: "good"},
		"no tag":                     {image: "demo", want: "good"},
		"empty":                      {image: "", want: "good"},
		"bad tag":                    {image: "demo:v2-bad", want: "bad"},
		"bad tag upper case":         {image: "demo:V2-BAD", want: "bad"},
		"slow tag":                   {image: "demo:slow", want: "slow"},
		"bad wins over slow":         {image: "demo:slow-and-bad", want: "bad"},
		"broken tag":                 {image: "demo:v2-broken", want: "broken"},
		"broken wins over bad":       {image: "demo:bad-and-broken", want: "broken"},
		"registry with port":         {image: "registry.local:5000/team/demo:v3-slow", want: "slow"},
		"registry port without tag":  {image: "registry.local:5000/team/demo", want: "good"},
		"bad only in repository":     {image: "bad/slow-demo:v1", want: "good"},
		"tag and digest":             {image: "demo:v2-bad@sha256:0123abcd", want: "bad"},
		"bad only in digest":         {image: "demo@sha256:00bad00", want: "good"},
		"slow only in registry host": {image: "slow.example:5000/demo:v1", want: "good"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := BehaviourFor(tc.image).Name; got != tc.want {
				t.Errorf("BehaviourFor(%q) = %q, want %q", tc.image, got, tc.want)
			}
		})
	}
}

func TestBehaviourFails(t *testing.T) {
	tests := map[string]struct {
		b    Behaviour
		want []bool // requests 1, 2, 3, 4
	}{
		"good never fails":              {b: Good, want: []bool{false, false, false, false}},
		"slow never fails":              {b: Slow, want: []bool{false, false, false, false}},
		"bad fails every other request": {b: Bad, want: []bool{false, true, false, true}},
		"broken fails every request":    {b: Broken, want: []bool{true, true, true, true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for i, want := range tc.want {
				if got := tc.b.fails(uint64(i + 1)); got != want {
					t.Errorf("request %d: fails = %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

func TestBehaviourDelay(t *testing.T) {
	tests := map[string]struct {
		b        Behaviour
		min, max time.Duration
	}{
		"good": {b: Good, min: 5 * time.Millisecond, max: 20 * time.Millisecond},
		"bad":  {b: Bad, min: 5 * time.Millisecond, max: 5 * time.Millisecond},
		"slow": {b: Slow, min: 800 * time.Millisecond, max: 800 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for range 1000 {
				if d := tc.b.delay(); d < tc.min || d > tc.max {
					t.Fatalf("delay() = %v, want within [%v, %v]", d, tc.min, tc.max)
				}
			}
		})
	}
}
