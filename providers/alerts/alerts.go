package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/providers/internal/post"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// Message is one alert about a release.
type Message struct {
	// Text says what happened, in one sentence. Keep readings out of it (they go in Value), so
	// that the same alert repeated is recognised as such (Key).
	Text string
	// Deployment and Namespace name the Deployment released.
	Deployment, Namespace string
	// Revision and Image are what is being released.
	Revision, Image string
	// Phase of the release, Weight the canary's share of traffic (shown when above 0).
	Phase  string
	Weight int
	// Check is the failing check, Value its reading or why it has none.
	Check, Value string
	// Severity of the message; empty means info.
	Severity spec.AlertSeverity
}

// Notifier posts messages to one service.
type Notifier interface {
	Post(ctx context.Context, m Message) error
}

// Config is one AlertProvider with its Secret resolved.
type Config struct {
	// Type is one of spec.AlertProviderTypes.
	Type string
	// Address is the service's webhook URL (the AlertProvider's address, or the key address of
	// its Secret). It never appears in an error.
	Address string
	// Token is the key token of the Secret: a bearer token for slack (the chat.postMessage
	// API) and generic; the other services refuse one.
	Token string
	// Channel to post to (slack, rocket); required for slack with a token.
	Channel string
	// Username messages are posted as (slack, discord, rocket); default DefaultUsername.
	Username string
	// Timeout of a post; default DefaultTimeout.
	Timeout time.Duration
}

// Defaults.
const (
	DefaultUsername = "sluice"
	// DefaultTimeout bounds one post (Flagger's): an alert service that hangs costs the
	// release nothing but this.
	DefaultTimeout = 5 * time.Second
)

// Bounds of what a message carries, within every service's limits (Discord's field value,
// 1024, is the tightest).
const (
	maxText  = 1000
	maxValue = 500
)

// ErrUnreachable: the service gave no answer (connection error, timeout).
var ErrUnreachable = post.ErrUnreachable

// shared is the connection pool every notifier posts through.
var shared = sync.OnceValue(post.NewClient)

// New returns the notifier for c. It checks c without ever quoting the address or the token.
func New(c Config) (Notifier, error) {
	who := c.Type
	if !slices.Contains(spec.AlertProviderTypes, c.Type) {
		return nil, fmt.Errorf("unknown alert provider type %q: must be one of %s", c.Type, strings.Join(spec.AlertProviderTypes, ", "))
	}
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%s: the address is not an http or https URL with a host", who)
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	n := &notifier{kind: c.Type, address: c.Address, timeout: c.Timeout, header: http.Header{}}
	if c.Token != "" {
		if c.Type != spec.AlertSlack && c.Type != spec.AlertGeneric {
			return nil, fmt.Errorf("%s: takes no token (only slack and generic send one); remove the key token from the Secret", who)
		}
		n.header.Set("Authorization", "Bearer "+c.Token)
	}
	switch c.Type {
	case spec.AlertSlack:
		if c.Token != "" && c.Channel == "" {
			return nil, errors.New("slack: with a token (the chat.postMessage API) the provider needs a channel")
		}
		n.render = func(m Message) any { return slackMessage(c, m) }
		n.accept = slackAccepted
	case spec.AlertMSTeams:
		n.render = func(m Message) any { return teamsMessage(m) }
	case spec.AlertDiscord:
		if err := discordUsername(c.Username); err != nil {
			return nil, err
		}
		// Flagger posts to Discord's Slack-compatible endpoint (address + "/slack"); Sluice
		// sends Discord's own format, so an address copied from Flagger loses that suffix.
		if p := strings.TrimSuffix(u.Path, "/slack"); p != u.Path {
			u.Path, u.RawPath = p, ""
			n.address = u.String()
		}
		n.render = func(m Message) any { return discordMessage(c, m) }
	case spec.AlertRocket:
		n.render = func(m Message) any { return rocketMessage(c, m) }
		n.accept = rocketAccepted
	case spec.AlertGChat:
		n.header.Set("Content-Type", "application/json; charset=UTF-8")
		n.render = func(m Message) any { return gchatMessage(m) }
	case spec.AlertGeneric:
		n.render = func(m Message) any { return genericMessage(m) }
	}
	// For most services the path (or the query) of the address is the credential, and a
	// service may quote either alone.
	n.secrets = []string{c.Address, n.address, c.Token}
	if p := u.EscapedPath(); len(p) > 1 {
		n.secrets = append(n.secrets, p, u.Path)
	}
	if u.RawQuery != "" {
		n.secrets = append(n.secrets, u.RawQuery)
	}
	if pw, ok := u.User.Password(); ok {
		n.secrets = append(n.secrets, u.User.String(), pw)
	}
	return n, nil
}

type notifier struct {
	kind, address string
	// secrets are scrubbed from every error: the address, the token, the address's path and
	// query.
	secrets []string
	timeout time.Duration
	header  http.Header
	render  func(Message) any
	// accept checks a 2xx answer of a service that reports failures in its body.
	accept func(body []byte) error
}

// Post sends m. Its error says what went wrong without the address or the token.
func (n *notifier) Post(ctx context.Context, m Message) error {
	body, err := json.Marshal(n.render(clipped(m)))
	if err != nil {
		return fmt.Errorf("%s: encode the message: %w", n.kind, err)
	}
	a, err := shared().Send(ctx, post.Request{URL: n.address, Body: body, Header: n.header, Timeout: n.timeout})
	if err != nil {
		return n.errorf("%s: post: %w", n.kind, err)
	}
	switch {
	case a.Status >= 300 && a.Status < 400:
		return n.errorf("%s: HTTP %d redirect not followed: set the address to the final URL", n.kind, a.Status)
	case a.Status < 200 || a.Status > 299:
		return n.errorf("%s: HTTP %d %s", n.kind, a.Status, post.Excerpt(a.Body, a.Truncated))
	}
	if n.accept != nil {
		if err := n.accept(a.Body); err != nil {
			return n.errorf("%s: HTTP %d but %w", n.kind, a.Status, err)
		}
	}
	return nil
}

// errorf is fmt.Errorf with the address and token scrubbed from the text (a service may echo
// either back); errors.Is still sees what it wraps.
func (n *notifier) errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &scrubbed{text: post.Scrub(err.Error(), n.secrets...), err: err}
}

type scrubbed struct {
	text string
	err  error
}

func (e *scrubbed) Error() string { return e.text }
func (e *scrubbed) Unwrap() error { return e.err }

// fact is one labelled value of a message, shown as a field, fact or widget.
type fact struct{ name, value string }

// facts are m's labelled values, in a fixed order, the empty ones left out.
func facts(m Message) []fact {
	var fs []fact
	add := func(name, value string) {
		if value != "" {
			fs = append(fs, fact{name, value})
		}
	}
	add("Phase", m.Phase)
	if m.Weight > 0 {
		add("Weight", strconv.Itoa(m.Weight)+"%")
	}
	add("Revision", m.Revision)
	add("Image", m.Image)
	add("Check", m.Check)
	add("Value", m.Value)
	add("Severity", string(severity(m.Severity)))
	return fs
}

// title names the Deployment: namespace/name.
func title(m Message) string { return m.Namespace + "/" + m.Deployment }

func severity(s spec.AlertSeverity) spec.AlertSeverity {
	if s == "" {
		return spec.SeverityInfo
	}
	return s
}

// clipped is m with its free text cut to the bounds every service accepts.
func clipped(m Message) Message {
	m.Text = clip(m.Text, maxText)
	m.Image, m.Check, m.Value = clip(m.Image, maxValue), clip(m.Check, maxValue), clip(m.Value, maxValue)
	m.Revision, m.Phase = clip(m.Revision, maxValue), clip(m.Phase, maxValue)
	return m
}

// clip cuts s to at most n runes, ending with "…" when cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
