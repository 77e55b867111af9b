package demoapp

import (
	"math/rand/v2"
	"strings"
	"time"
)

// Behaviour is what a simulated pod does with each request it serves.
type Behaviour struct {
	// Name is "good", "bad", "broken" or "slow"; it is exported as the behaviour label of
	// demoapp_info.
	Name string
	// Latency is the least time a request takes.
	Latency time.Duration
	// Jitter is the most extra time, drawn uniformly, a request takes on top of Latency.
	Jitter time.Duration
	// FailEvery makes every FailEvery-th request of a pod answer HTTP 500; 0 never fails.
	FailEvery int
}

// The behaviours BehaviourFor chooses from.
var (
	Good   = Behaviour{Name: "good", Latency: 5 * time.Millisecond, Jitter: 15 * time.Millisecond}
	Bad    = Behaviour{Name: "bad", Latency: 5 * time.Millisecond, FailEvery: 2}
	Broken = Behaviour{Name: "broken", Latency: 5 * time.Millisecond, FailEvery: 1}
	Slow   = Behaviour{Name: "slow", Latency: 800 * time.Millisecond}
)

// BehaviourFor returns the behaviour of a pod whose first container runs image, decided by the
// image's tag alone (never its repository or digest):
//
//	tag contains  behaviour
//	"broken"      Broken: every request is HTTP 500, ~5 ms
//	"bad"         Bad:    every second request is HTTP 500, ~5 ms
//	"slow"        Slow:   200 OK, ~800 ms
//	anything else Good:   200 OK, 5–20 ms (also when there is no tag)
//
// The match ignores case; "broken" wins over "bad", and "bad" over "slow".
func BehaviourFor(image string) Behaviour {
	tag := strings.ToLower(imageTag(image))
	switch {
	case strings.Contains(tag, "broken"):
		return Broken
	case strings.Contains(tag, "bad"):
		return Bad
	case strings.Contains(tag, "slow"):
		return Slow
	default:
		return Good
	}
}

// imageTag returns the tag of an image reference such as "registry:5000/demo:v2-bad@sha256:…",
// or "" when it has none.
func imageTag(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	name := image[strings.LastIndexByte(image, '/')+1:]
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return ""
}

// fails reports whether the n-th request (counting from 1) answers HTTP 500.
func (b Behaviour) fails(n uint64) bool {
	return b.FailEvery > 0 && n%uint64(b.FailEvery) == 0
}

// delay returns how long one request takes.
func (b Behaviour) delay() time.Duration {
	if b.Jitter <= 0 {
		return b.Latency
	}
	return b.Latency + rand.N(b.Jitter+1)
}
