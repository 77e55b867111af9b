package routers

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// MaxCookies bounds the cookies one match may test (admission refuses more).
const MaxCookies = spec.MaxCookiesPerMatch

// CookieRegex matches a whole Cookie header (Envoy matches regular expressions against the whole
// value) that carries every cookie of cookies with a matching value, in any order.
func CookieRegex(cookies map[string]spec.StringMatch) (string, error) {
	if len(cookies) > MaxCookies {
		return "", fmt.Errorf("a match tests %d cookies; a route can test at most %d in one match", len(cookies), MaxCookies)
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(cookies)) {
		sm := cookies[name]
		value := ""
		switch sm.Kind() {
		case "exact":
			value = regexp.QuoteMeta(sm.Exact)
		case "prefix":
			value = regexp.QuoteMeta(sm.Prefix) + "[^;]*"
		default:
			value = "(" + strings.TrimSuffix(strings.TrimPrefix(sm.Regex, "^"), "$") + ")"
		}
		parts = append(parts, regexp.QuoteMeta(name)+"="+value)
	}
	var alts []string
	for _, p := range permutations(parts) {
		alts = append(alts, `(.*;\s*)?`+strings.Join(p, `;\s*(.*;\s*)?`)+`(;.*)?`)
	}
	if len(alts) == 1 {
		return "^" + alts[0] + "$", nil
	}
	return "^(" + strings.Join(alts, "|") + ")$", nil
}

func permutations(s []string) [][]string {
	if len(s) <= 1 {
		return [][]string{s}
	}
	var out [][]string
	for i := range s {
		rest := append(append([]string{}, s[:i]...), s[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]string{s[i]}, p...))
		}
	}
	return out
}
