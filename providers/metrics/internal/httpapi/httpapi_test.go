package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// The cap is exact: a body of MaxBody bytes is read whole, one byte more is refused, with or
// without a declared length; an error body is cut at MaxErrBody, never refused.
func TestBodyCapBoundaries(t *testing.T) {
	for name, tc := range map[string]struct {
		status  int
		size    int
		declare bool
		wantLen int
		refused bool
	}{
		"MaxBody, declared":        {http.StatusOK, MaxBody, true, MaxBody, false},
		"MaxBody, chunked":         {http.StatusOK, MaxBody, false, MaxBody, false},
		"MaxBody+1, declared":      {http.StatusOK, MaxBody + 1, true, 0, true},
		"MaxBody+1, chunked":       {http.StatusOK, MaxBody + 1, false, 0, true},
		"empty":                    {http.StatusOK, 0, false, 0, false},
		"error body cut":           {http.StatusBadGateway, MaxErrBody * 3, false, MaxErrBody, false},
		"error body cut, declared": {http.StatusBadGateway, MaxErrBody * 3, true, MaxErrBody, false},
		"small error body":         {http.StatusBadGateway, 10, true, 10, false},
	} {
		t.Run(name, func(t *testing.T) {
			body := bytes.Repeat([]byte("y"), tc.size)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.declare {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				w.WriteHeader(tc.status)
				if !tc.declare { // make it chunked: two writes with a flush between
					_, _ = w.Write(body[:len(body)/2])
					w.(http.Flusher).Flush()
					body = body[len(body)/2:]
				}
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			resp, err := NewClient().Do(req)
			var refused *RefusedError
			if tc.refused {
				if !errors.As(err, &refused) || refused.Redirect {
					t.Fatalf("err = %v, want an oversize RefusedError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			if len(got) != tc.wantLen || resp.StatusCode != tc.status {
				t.Errorf("got HTTP %d with %d bytes, want HTTP %d with %d", resp.StatusCode, len(got), tc.status, tc.wantLen)
			}
		})
	}
}

func TestParseAddress(t *testing.T) {
	for addr, want := range map[string]string{
		"http://a:b@h:9090":  `"http://xxxxx@h:9090": must not carry user info; put credentials in the provider's Secret`,
		"https://h?x=1":      `"https://h?x=1": must not carry a query or fragment`,
		"https://h?":         `"https://h?": must not carry a query or fragment`,
		"https://h#f":        `"https://h#f": must not carry a query or fragment`,
		"unix:///run/p.sock": `"unix:///run/p.sock": scheme must be http or https`,
		"http:///path":       `"http:///path": no host`,
		"http://a:b@h:9/%zz": `"http://xxxxx@h:9/%zz" is not a URL: invalid URL escape "%zz"`,
	} {
		_, err := ParseAddress(addr)
		if err == nil || err.Error() != want {
			t.Errorf("ParseAddress(%q) = %v, want %s", addr, err, want)
		}
	}
	if u, err := ParseAddress("https://prom.example:9090/prefix/"); err != nil || u.Host != "prom.example:9090" {
		t.Errorf("a good address: %v, %v", u, err)
	}
}
