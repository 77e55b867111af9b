package redact

import (
	"errors"
	"fmt"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://prometheus:9090":            "http://prometheus:9090",
		"https://user:pass@prom.example/p":  "https://xxxxx@prom.example/p",
		"https://token@prom.example":        "https://xxxxx@prom.example",
		"https://u:p@ss@prom.example/x?q=1": "https://xxxxx@prom.example/x?q=1",
		"user:pass@prom:9090/api":           "xxxxx@prom:9090/api",
		"http://user:pass@prom:9090/%zz":    "http://xxxxx@prom:9090/%zz",
		"http://user:pass@[::1:9090":        "http://xxxxx@[::1:9090",
		"":                                  "",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		`Get "http://user:pass@127.0.0.1:9/api/v1/query?query=up": dial tcp: refused`: `Get "http://xxxxx@127.0.0.1:9/api/v1/query?query=up": dial tcp: refused`,
		`parse "https://u:p@h%zz": invalid URL escape "%zz"`:                          `parse "https://xxxxx@h%zz": invalid URL escape "%zz"`,
		"two: http://a:b@x and https://c@y/z":                                         "two: http://xxxxx@x and https://xxxxx@y/z",
		"no credentials: http://x/a@b and mail@example.com is text":                   "no credentials: http://x/a@b and mail@example.com is text",
		"query returned 2 series":                                                     "query returned 2 series",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	base := errors.New("sentinel")
	err := Error(fmt.Errorf(`Get "http://u:p@h/x": %w`, base))
	if got := err.Error(); got != `Get "http://xxxxx@h/x": sentinel` {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(err, base) {
		t.Error("errors.Is lost the wrapped error")
	}
	if plain := errors.New("plain"); Error(plain) != plain || Error(nil) != nil { //nolint:errorlint // the very same value, not a wrapper, is what Error must return
		t.Error("an error with nothing to redact should be returned as is")
	}
}
