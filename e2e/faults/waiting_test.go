package faults

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// gateServer is a hook target: /gate answers 403 until opened, /post records post-rollout
// calls (and holds each for a while, so a kill can land during one).
type gateServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	open bool
	gate int
	post int
}

func newGateServer(t *testing.T, postDelay time.Duration) *gateServer {
	g := &gateServer{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		switch r.URL.Path {
		case "/gate":
			g.gate++
			open := g.open
			g.mu.Unlock()
			if !open {
				w.WriteHeader(http.StatusForbidden)
			}
			return
		case "/post":
			g.post++
		}
		g.mu.Unlock()
		select {
		case <-time.After(postDelay):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateServer) counts() (gate, post int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gate, g.post
}

func (g *gateServer) setOpen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
}

// SIGKILL in Waiting: a release waiting at a closed confirm-promotion gate is still waiting
// there after sluice is killed and restarted (same gate, same "since"), asks the gate again,
// and promotes once it opens; a kill while its post-rollout hook is being called leaves the
// call to be made again after the restart (state.postRollout), so it is never lost.
func TestKillInWaiting(t *testing.T) {
	t.Parallel()
	disruptive.Lock()
	defer disruptive.Unlock()
	g := newGateServer(t, 3*time.Second)
	hooks := fmt.Sprintf("- name: approval\n  type: confirm-promotion\n  url: %s/gate\n- name: notify\n  type: post-rollout\n  url: %s/post\n  timeout: 10s\n", g.srv.URL, g.srv.URL)
	a := newApp(t, "web", fastAnnotations(spec.AnnMetrics, passing, spec.AnnWebhooks, hooks))
	a.deploy("demo:v1")
	func() {
		down.RLock()
		defer down.RUnlock()
		a.kubectl("set", "image", "deployment/web", "app=demo:v2")
	}()
	var before spec.State
	a.waitFor(2*time.Minute, "Waiting at confirm-promotion", func(d *appsv1.Deployment) (bool, string) {
		before = stateOf(t, d)
		return before.Phase == spec.PhaseWaiting && before.Gate != nil && before.Gate.Type == spec.HookConfirmPromotion, before.Message
	})

	func() {
		down.Lock()
		defer down.Unlock()
		if err := env.KillSluice(); err != nil {
			t.Fatal(err)
		}
		asked, _ := g.counts()
		time.Sleep(6 * time.Second) // more than an interval: nobody asks the gate while sluice is down
		if now, _ := g.counts(); now != asked {
			t.Errorf("the gate was asked %d times while sluice was down", now-asked)
		}
		restartSluice(t)
	}()
	asked, _ := g.counts()
	deadline := time.Now().Add(30 * time.Second)
	for n, _ := g.counts(); n < asked+2; n, _ = g.counts() {
		if time.Now().After(deadline) {
			t.Fatalf("the gate was asked %d times in 30 s after the restart, want 2", n-asked)
		}
		time.Sleep(200 * time.Millisecond)
	}
	st := a.state()
	if st.Phase != spec.PhaseWaiting || st.Gate == nil || !st.Gate.Since.Equal(before.Gate.Since) || st.Revision != before.Revision {
		t.Fatalf("after the restart: %s, gate %+v; before: gate %+v", st.Phase, st.Gate, before.Gate)
	}

	g.setOpen()
	a.waitFor(time.Minute, "Succeeded, post-rollout being called", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		_, post := g.counts()
		return st.Phase == spec.PhaseSucceeded && post >= 1, fmt.Sprintf("%s, post-rollout called %d times", st.Phase, post)
	})
	func() {
		down.Lock()
		defer down.Unlock()
		if err := env.KillSluice(); err != nil { // during the post-rollout call (it takes 3 s)
			t.Fatal(err)
		}
		if st := a.state(); !st.PostRollout {
			t.Errorf("killed during the post-rollout call, the state says it was made: %s", st.Encode())
		}
		restartSluice(t)
	}()
	a.waitFor(time.Minute, "post-rollout answered", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return !st.PostRollout, fmt.Sprintf("postRollout %v", st.PostRollout)
	})
	if _, post := g.counts(); post < 2 {
		t.Errorf("post-rollout called %d times, want again after the restart", post)
	}
	if st := a.state(); st.Phase != spec.PhaseSucceeded {
		t.Errorf("ended %s", st.Phase)
	}
}
