package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/providers/alerts"
	"github.com/sluice-dev/sluice/rollout/spec"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from what the notifiers send")

// failing is a message with everything: a check that failed, at 20 %.
var failing = alerts.Message{
	Text:       "Rolling back web: request-success-rate failed 3 times",
	Deployment: "web", Namespace: "shop", Revision: "5d8c7f9b4a", Image: "ghcr.io/acme/web:v2",
	Phase: "RollingBack", Weight: 20, Check: "request-success-rate", Value: "87.5",
	Severity: spec.SeverityError,
}

// bare has only what every message has; no severity means info.
var bare = alerts.Message{Text: "Promoted web", Deployment: "web", Namespace: "shop"}

// receiver is a local stand-in for a service: it validates every request against the
// service's documented format and answers as the service does.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	shown    [][]string
	problems []error
	auth     []string
	paths    []string
}

func newReceiver(t *testing.T, svc service) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		shown, err := svc.validate(r, body)
		if err == nil && r.Method != http.MethodPost {
			err = errors.New("method " + r.Method)
		}
		rc.mu.Lock()
		rc.bodies, rc.shown, rc.auth, rc.paths = append(rc.bodies, body), append(rc.shown, shown), append(rc.auth, r.Header.Get("Authorization")), append(rc.paths, r.URL.Path)
		if err != nil {
			rc.problems = append(rc.problems, err)
		}
		rc.mu.Unlock()
		if err != nil {
			http.Error(w, `{"error":"invalid_payload"}`, http.StatusBadRequest)
			return
		}
		w.WriteHeader(svc.status)
		_, _ = io.WriteString(w, svc.answer)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// Every provider's message, for a failing check and for a bare message, is accepted by a
// server that checks that service's documented format (required fields, limits, content
// type), and shows the Deployment, the text and every fact.
func TestEachProviderSendsItsServicesFormat(t *testing.T) {
	for typ, svc := range services {
		for name, m := range map[string]alerts.Message{"failing": failing, "bare": bare} {
			t.Run(typ+"/"+name, func(t *testing.T) {
				rc := newReceiver(t, svc)
				cfg := alerts.Config{Type: typ, Address: rc.URL + "/hook/T000/B000/XXXX"}
				if typ == spec.AlertSlack || typ == spec.AlertRocket {
					cfg.Channel = "#deploys"
				}
				n, err := alerts.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := n.Post(t.Context(), m); err != nil {
					t.Fatalf("Post: %v", err)
				}
				if len(rc.problems) > 0 || len(rc.bodies) != 1 {
					t.Fatalf("%d requests, %s refused: %v\n%s", len(rc.bodies), typ, rc.problems, rc.bodies)
				}
				want := []string{"shop/web", m.Text, string(m.Severity)}
				if m.Severity == "" {
					want[2] = "info"
				}
				if m.Weight > 0 {
					want = append(want, m.Phase, "20%", m.Revision, m.Image, m.Check, m.Value)
				}
				for _, w := range want {
					if !shows(rc.shown[0], w) {
						t.Errorf("%s does not show %q:\n%s", typ, w, rc.bodies[0])
					}
				}
				golden(t, typ+"-"+name, rc.bodies[0])
			})
		}
	}
}

func shows(shown []string, want string) bool {
	return slices.ContainsFunc(shown, func(s string) bool { return strings.Contains(s, want) })
}

// golden compares a request body with testdata/NAME.json (rewritten with -update), so every
// change of a wire format shows in review.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(v, "", "  ")
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from what was sent (run go test -update if intended):\n got %s\nwant %s", path, got, want)
	}
}

// Text is text: what a check reason or an image carries cannot become markup, a link or a
// mention in the service.
func TestMessagesAreEscaped(t *testing.T) {
	m := failing
	m.Text = "<!channel> @everyone <b>5 & 6</b> <https://evil.test|click>"
	m.Value = "a<b>&c"
	for typ, svc := range services {
		t.Run(typ, func(t *testing.T) {
			rc := newReceiver(t, svc)
			n, err := alerts.New(alerts.Config{Type: typ, Address: rc.URL})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Post(t.Context(), m); err != nil {
				t.Fatalf("Post: %v (%v)", err, rc.problems)
			}
			if !shows(rc.shown[0], m.Text) || !shows(rc.shown[0], m.Value) {
				t.Errorf("%s does not show the text as written:\n%s", typ, rc.bodies[0])
			}
			if typ == spec.AlertDiscord && !strings.Contains(string(rc.bodies[0]), `"allowed_mentions":{"parse":[]}`) {
				t.Errorf("discord may mention: %s", rc.bodies[0])
			}
		})
	}
}

// Long texts are cut to what every service accepts.
func TestLongMessagesFit(t *testing.T) {
	m := failing
	m.Text = strings.Repeat("x", 5000)
	m.Value = strings.Repeat("é", 3000)
	m.Image = strings.Repeat("i", 3000)
	for typ, svc := range services {
		t.Run(typ, func(t *testing.T) {
			rc := newReceiver(t, svc)
			n, _ := alerts.New(alerts.Config{Type: typ, Address: rc.URL})
			if err := n.Post(t.Context(), m); err != nil {
				t.Errorf("Post: %v", err)
			}
		})
	}
}

// A token goes as a bearer token (slack's chat.postMessage, generic).
func TestToken(t *testing.T) {
	for _, typ := range []string{spec.AlertSlack, spec.AlertGeneric} {
		t.Run(typ, func(t *testing.T) {
			rc := newReceiver(t, services[typ])
			n, err := alerts.New(alerts.Config{Type: typ, Address: rc.URL, Token: "xoxb-123", Channel: "C0123"})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Post(t.Context(), failing); err != nil {
				t.Fatal(err)
			}
			if rc.auth[0] != "Bearer xoxb-123" {
				t.Errorf("Authorization = %q", rc.auth[0])
			}
		})
	}
}

// An address copied from Flagger (Discord's Slack-compatible endpoint, …/slack) is posted to
// Discord's own endpoint, since the message is in Discord's own format.
func TestDiscordSlackSuffix(t *testing.T) {
	rc := newReceiver(t, services[spec.AlertDiscord])
	n, err := alerts.New(alerts.Config{Type: spec.AlertDiscord, Address: rc.URL + "/api/webhooks/1/tok/slack"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Post(t.Context(), failing); err != nil {
		t.Fatalf("Post: %v (%v)", err, rc.problems)
	}
	if rc.paths[0] != "/api/webhooks/1/tok" {
		t.Errorf("posted to %s", rc.paths[0])
	}
}

func TestNewRefuses(t *testing.T) {
	tests := map[string]struct {
		cfg  alerts.Config
		want string
	}{
		"an unknown type": {
			cfg:  alerts.Config{Type: "pagerduty", Address: "https://x.test/"},
			want: `unknown alert provider type "pagerduty": must be one of slack, msteams, discord, rocket, gchat, generic`,
		},
		"no address": {
			cfg:  alerts.Config{Type: "slack"},
			want: "slack: the address is not an http or https URL with a host",
		},
		"an address that is no URL, not quoted": {
			cfg:  alerts.Config{Type: "msteams", Address: "hooks.s3cret.test/x"},
			want: "msteams: the address is not an http or https URL with a host",
		},
		"a token Teams would not use": {
			cfg:  alerts.Config{Type: "msteams", Address: "https://x.test/", Token: "s3cret"},
			want: "msteams: takes no token (only slack and generic send one); remove the key token from the Secret",
		},
		"slack's API without a channel": {
			cfg:  alerts.Config{Type: "slack", Address: "https://x.test/api/chat.postMessage", Token: "s3cret"},
			want: "slack: with a token (the chat.postMessage API) the provider needs a channel",
		},
		"a Discord username Discord refuses": {
			cfg:  alerts.Config{Type: "discord", Address: "https://x.test/", Username: "Discord Bot"},
			want: `discord: username "Discord Bot" is refused by Discord (it may not contain "discord" or "clyde")`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := alerts.New(tc.cfg)
			if err == nil || err.Error() != tc.want {
				t.Errorf("New = %v, %v; want error %s", n, err, tc.want)
			}
		})
	}
}

// A service that refuses, reports failure in a 200, redirects, or is not there is an error
// that says so — quickly, and without the address or the token, which are credentials.
func TestPostErrors(t *testing.T) {
	const secretPath, token = "/services/T000/B000/s3cretpath", "xoxb-s3cret"
	echo := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body+" path="+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		}
	}
	tests := map[string]struct {
		typ     string
		handler http.HandlerFunc
		want    string
	}{
		"a 400 quoting the request": {
			typ: spec.AlertSlack, handler: echo(400, "invalid_payload"),
			want: `slack: HTTP 400 "invalid_payload path=xxxxx auth=Bearer xxxxx"`,
		},
		"slack's API: ok false in a 200": {
			typ: spec.AlertSlack, handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"ok":false,"error":"channel_not_found"}`)
			},
			want: "slack: HTTP 200 but the answer says ok: false (channel_not_found)",
		},
		"rocket: success false": {
			typ: spec.AlertRocket, handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"success":false,"error":"invalid-channel"}`)
			},
			want: "rocket: HTTP 200 but the answer says success: false (invalid-channel)",
		},
		"a redirect is not followed": {
			typ: spec.AlertGeneric, handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://elsewhere.test"+r.URL.Path, http.StatusFound)
			},
			want: "generic: HTTP 302 redirect not followed: set the address to the final URL",
		},
		"a 500": {
			typ: spec.AlertGChat, handler: echo(500, "internal"),
			want: `gchat: HTTP 500 "internal path=xxxxx auth="`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			cfg := alerts.Config{Type: tc.typ, Address: srv.URL + secretPath, Channel: "#c"}
			if tc.typ == spec.AlertSlack || tc.typ == spec.AlertGeneric {
				cfg.Token = token
			}
			n, err := alerts.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = n.Post(t.Context(), failing)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Post = %v\nwant %s", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), srv.URL)) {
				t.Errorf("the error shows a credential: %v", err)
			}
		})
	}
}

// An endpoint that is not there, or never answers, is an error within the post's timeout.
func TestPostUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/services/s3cret"
	l.Close()

	var accepted atomic.Int32
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accepted.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer hang.Close()

	tests := map[string]struct {
		address string
		want    string
	}{
		"connection refused": {address: closed, want: "connection refused"},
		"never answers":      {address: hang.URL + "/services/s3cret", want: "no answer within 300ms"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n, err := alerts.New(alerts.Config{Type: spec.AlertGeneric, Address: tc.address, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = n.Post(t.Context(), failing)
			took := time.Since(start)
			if !errors.Is(err, alerts.ErrUnreachable) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Post = %v, want ErrUnreachable saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the address: %v", err)
			}
			if took > 2*time.Second {
				t.Errorf("Post took %s with a 300ms timeout", took)
			}
		})
	}
	if accepted.Load() != 1 {
		t.Errorf("the hanging server saw %d posts, want 1 (no retries)", accepted.Load())
	}

	// The caller's context bounds a post too.
	n, _ := alerts.New(alerts.Config{Type: spec.AlertSlack, Address: hang.URL})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := n.Post(ctx, failing); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Post under an expiring context = %v", err)
	}
}
