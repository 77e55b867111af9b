// Package redact keeps credentials out of what Sluice prints. A metric backend's address can
// carry user info (https://user:token@host), and errors from net/http and net/url quote the
// URL they failed on; check reasons end up in the sluice.dev/state annotation, in Events and
// in logs, all readable by far more people than the Secret the credentials belong in. Every
// address Sluice prints goes through URL, every error text through Text.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces user info.
const Mask = "xxxxx"

// URL renders an address with its user info (name and password alike, a bare token is often
// the name) replaced by Mask. A string url.Parse refuses is masked by hand, since its error
// would quote it whole.
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return Text(s)
	}
	if u.User == nil {
		return s
	}
	u.User = url.User(Mask)
	return u.String()
}

// userInfo matches the user info of URLs in free text: after "scheme://", everything up to
// the last "@" before the host ends (at "/", "?", "#", white space or a quote).
var userInfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s"'@]*(?:@[^/?#\s"'@]*)*@`)

// Text masks the user info of every URL in s, and of an address written without a scheme
// ("user:pass@host:9090/…") when s is nothing but that address.
func Text(s string) string {
	s = userInfo.ReplaceAllString(s, "${1}"+Mask+"@")
	if strings.Contains(s, "://") || strings.ContainsAny(s, " \t\n\"'") {
		return s
	}
	authority, rest, hasRest := strings.Cut(s, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		s = Mask + authority[i:]
		if hasRest {
			s += "/" + rest
		}
	}
	return s
}

// Error is err with its text passed through Text; errors.Is and errors.As still see err.
func Error(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if r := Text(s); r != s {
		return &redacted{text: r, err: err}
	}
	return err
}

type redacted struct {
	text string
	err  error
}

func (e *redacted) Error() string { return e.text }
func (e *redacted) Unwrap() error { return e.err }
