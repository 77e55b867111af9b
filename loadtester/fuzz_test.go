package loadtester

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseLoad: any metadata either parses into a spec within the documented limits or is
// refused with errors that each name a metadata key; never a panic.
func FuzzParseLoad(f *testing.F) {
	f.Add("http://podinfo-canary.test:9898/", "200", "45s", "20", "1", "500ms", "Host: a\nX-B: c", "POST")
	f.Add("ftp://x", "0", "-1s", "5000", "150", "fast", "no colon", "get")
	f.Add("http:///p", "abc", "2m", "", "1%", "", "", "")
	f.Fuzz(func(t *testing.T, url, rate, duration, concurrency, maxErrorRate, maxP99, headers, method string) {
		meta := map[string]string{"type": "load", "url": url}
		for k, v := range map[string]string{"rate": rate, "duration": duration, "concurrency": concurrency,
			"maxErrorRate": maxErrorRate, "maxP99": maxP99, "headers": headers, "method": method} {
			if v != "" {
				meta[k] = v
			}
		}
		s, err := ParseLoad(meta, time.Minute)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "metadata.") {
					t.Fatalf("error line %q names no metadata key", line)
				}
			}
			return
		}
		if s.URL == nil || (s.URL.Scheme != "http" && s.URL.Scheme != "https") || s.URL.Host == "" ||
			s.Rate < 1 || s.Rate > MaxLoadRate || s.Concurrency < 1 || s.Concurrency > MaxLoadConcurrency ||
			s.Duration <= 0 || s.Duration > time.Minute || s.RequestTimeout <= 0 || s.MaxP99 < 0 ||
			s.MaxErrorRate < 0 || s.MaxErrorRate > 100 || s.Method == "" {
			t.Fatalf("ParseLoad accepted a spec outside its limits: %+v", s)
		}
	})
}
