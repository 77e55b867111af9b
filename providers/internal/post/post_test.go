package post

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExcerpt(t *testing.T) {
	tests := map[string]struct {
		body      string
		truncated bool
		want      string
	}{
		"trimmed and quoted":         {body: "  gate closed\n", want: `"gate closed"`},
		"empty":                      {body: "", want: `""`},
		"user info masked":           {body: "see http://bot:s3cret@x.test/", want: `"see http://xxxxx@x.test/"`},
		"cut at the cap, marked":     {body: strings.Repeat("a", MaxExcerpt+10), want: `"` + strings.Repeat("a", MaxExcerpt) + `…"`},
		"cut on a rune boundary":     {body: "a" + strings.Repeat("é", MaxExcerpt), want: `"a` + strings.Repeat("é", (MaxExcerpt-1)/2) + `…"`},
		"a truncated read is marked": {body: "abc", truncated: true, want: `"abc…"`},
		"control characters escaped": {body: "a\x00b", want: `"a\x00b"`},
		"exactly the cap is not cut": {body: strings.Repeat("b", MaxExcerpt), want: `"` + strings.Repeat("b", MaxExcerpt) + `"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Excerpt([]byte(tc.body), tc.truncated); got != tc.want {
				t.Errorf("Excerpt = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	got := Scrub("bad token xoxb-123 for https://hooks.test/T/B/secret", "xoxb-123", "https://hooks.test/T/B/secret", "")
	if want := "bad token xxxxx for xxxxx"; got != want {
		t.Errorf("Scrub = %q, want %q", got, want)
	}
}

func TestSend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "text/plain" || r.Header.Get("X-A") != "b" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(strings.Repeat("z", MaxAnswer+1)))
	}))
	defer srv.Close()
	c := NewClient()
	a, err := c.Send(t.Context(), Request{URL: srv.URL, Body: []byte("x"), Timeout: time.Second,
		Header: http.Header{"Content-Type": {"text/plain"}, "X-A": {"b"}}})
	if err != nil || a.Status != 200 || len(a.Body) != MaxAnswer || !a.Truncated {
		t.Errorf("Send = %d, %d bytes, truncated %v, %v; want 200, MaxAnswer bytes, truncated", a.Status, len(a.Body), a.Truncated, err)
	}
	if _, err := c.Send(t.Context(), Request{URL: srv.URL}); err == nil {
		t.Error("a request without a timeout was sent")
	}
	_, err = c.Send(t.Context(), Request{URL: "http://user:pw@[::1:80/", Timeout: time.Second})
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "user") {
		t.Errorf("a bad URL: %v, want ErrUnreachable without the URL", err)
	}
}
