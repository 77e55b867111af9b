package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// parser collects every problem Parse finds, each naming its annotation, so one admission
// refusal lists them all.
type parser struct {
	ann   map[string]string
	errs  field.ErrorList
	warns []string
}

func (p *parser) invalid(key, value, detail string) {
	p.errs = append(p.errs, field.Invalid(field.NewPath(key), value, detail))
}

// noEffect notes something the configuration says that has no effect, for an admission warning.
func (p *parser) noEffect(msg string) { p.warns = append(p.warns, msg) }

func (p *parser) int(key string, lo, hi int, dst *int) {
	v, ok := p.ann[key]
	if !ok {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		p.invalid(key, v, fmt.Sprintf("must be %d..%d", lo, hi))
		return
	}
	*dst = n
}

// bounded takes an optional number from the analysis block, with the bounds of its flat
// annotation.
func (p *parser) bounded(key string, v *int, lo, hi int, dst *int) {
	if v == nil {
		return
	}
	if *v < lo || *v > hi {
		p.invalid(key, strconv.Itoa(*v), fmt.Sprintf("must be %d..%d", lo, hi))
		return
	}
	*dst = *v
}

func (p *parser) duration(key, v string, lo time.Duration) time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		p.invalid(key, v, "must be a duration such as 30s or 1m")
		return 0
	}
	if d < lo {
		p.invalid(key, v, "must be at least "+lo.String())
		return 0
	}
	return d
}

func (p *parser) name(key string) string {
	v, ok := p.ann[key]
	if !ok {
		return ""
	}
	if !validName(v) {
		p.invalid(key, v, "must be a DNS-1035 name (lower-case letters, digits, '-')")
	}
	return v
}

func (p *parser) weights(key, v string) []int {
	var ws []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			p.invalid(key, v, "must be a comma-separated list of weights such as 1,5,10,25,50")
			return nil
		}
		ws = append(ws, n)
	}
	return p.checkWeights(key, v, ws)
}

func (p *parser) checkWeights(key, v string, ws []int) []int {
	for i, w := range ws {
		if w < 1 || w > 100 {
			p.invalid(key, v, fmt.Sprintf("each weight must be 1..100, got %d", w))
			return nil
		}
		if i > 0 && w <= ws[i-1] {
			p.invalid(key, v, "weights must increase strictly")
			return nil
		}
	}
	return ws
}

// validSubdomain reports whether s is a DNS-1123 subdomain (the names of most objects).
func validSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}

// validName reports whether s is a DNS-1035 label.
func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		case r == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	s = strings.TrimPrefix(s, "error unmarshaling JSON: while decoding JSON: ")
	return s
}
