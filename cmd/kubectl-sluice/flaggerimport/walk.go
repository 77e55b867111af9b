package flaggerimport

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// doc is one input object and what became of each of its fields: every path the conversion
// used is recorded in mapped (with where it went), every path it could not carry over in the
// findings. uncovered lists the leaves that are in neither, which Convert reports as fields this
// version does not know: nothing is dropped silently.
type doc struct {
	// source names the object in findings: "Canary test/podinfo".
	source string
	root   map[string]any

	mapped   map[string]string
	reported map[string]bool
	findings []Finding
}

func newDoc(source string, root map[string]any) *doc {
	return &doc{source: source, root: root, mapped: map[string]string{}, reported: map[string]bool{}}
}

// node is a field of a doc's object, addressed by its path ("spec.analysis.metrics[0].name").
type node struct {
	d    *doc
	path string
	v    any
}

func (d *doc) top() node { return node{d: d, v: d.root} }

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// child joins a map key to a path; a key that is not a plain word is quoted
// (metadata.labels["app.kubernetes.io/name"]).
func child(path, k string) string {
	if !plainKey.MatchString(k) {
		return path + "[" + strconv.Quote(k) + "]"
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// key is the field k of a map node; it does not exist when n is no map or lacks k.
func (n node) key(k string) node {
	c := node{d: n.d, path: child(n.path, k)}
	if m, ok := n.v.(map[string]any); ok {
		c.v = m[k]
	}
	return c
}

func (n node) exists() bool { return n.v != nil }

// keys are the keys of a map node, sorted.
func (n node) keys() []string {
	m, _ := n.v.(map[string]any)
	return slices.Sorted(maps.Keys(m))
}

// items are the elements of a list node.
func (n node) items() []node {
	l, _ := n.v.([]any)
	out := make([]node, len(l))
	for i, v := range l {
		out[i] = node{d: n.d, path: fmt.Sprintf("%s[%d]", n.path, i), v: v}
	}
	return out
}

// str is a scalar's text ("" for none, a map or a list).
func (n node) str() string {
	switch v := n.v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// int is an integer scalar (a number or a string of one); ok is false otherwise.
func (n node) int() (int, bool) {
	switch v := n.v.(type) {
	case float64:
		if v == float64(int(v)) {
			return int(v), true
		}
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(v))
		return i, err == nil
	}
	return 0, false
}

// bool is a boolean scalar ("true" as a string too).
func (n node) bool() bool {
	switch v := n.v.(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// strMap is a map of scalars (labels, metadata, variables).
func (n node) strMap() map[string]string {
	m, ok := n.v.(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = n.key(k).str()
	}
	return out
}

// to records that the field (and everything under it) went to where.
func (n node) to(where string) { n.d.mapped[n.path] = where }

// report records that the field (and everything under it) has no equivalent, and why.
func (n node) report(format string, args ...any) {
	n.d.reported[n.path] = true
	delete(n.d.mapped, n.path)
	n.d.findings = append(n.d.findings, Finding{Source: n.d.source, Field: n.path, Message: fmt.Sprintf(format, args...)})
}

// covered reports whether path or one of its ancestors is mapped or reported.
func (d *doc) covered(path string) bool {
	for p := path; ; {
		if _, ok := d.mapped[p]; ok || d.reported[p] {
			return true
		}
		parent := parentPath(p)
		if parent == p {
			return false
		}
		p = parent
	}
}

// parentPath strips the last segment of a path ("a.b[0]" → "a.b", "a" → "").
func parentPath(p string) string {
	if p == "" {
		return ""
	}
	if strings.HasSuffix(p, "]") {
		// An index or a quoted key: find its opening bracket outside quotes.
		inQuote := false
		for i := len(p) - 2; i >= 0; i-- {
			switch {
			case p[i] == '"' && (i == 0 || p[i-1] != '\\'):
				inQuote = !inQuote
			case p[i] == '[' && !inQuote:
				return p[:i]
			}
		}
		return ""
	}
	if i := strings.LastIndexAny(p, ".]"); i >= 0 {
		if p[i] == ']' {
			return p[:i+1]
		}
		return p[:i]
	}
	return ""
}

// Leaves lists the paths of every leaf of an object decoded from YAML: scalars, empty maps and
// empty lists. A path is written as the conversion writes it (child and items).
func Leaves(root map[string]any) []string {
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch t := v.(type) {
		case map[string]any:
			if len(t) == 0 && path != "" {
				out = append(out, path)
			}
			for _, k := range slices.Sorted(maps.Keys(t)) {
				walk(child(path, k), t[k])
			}
		case []any:
			if len(t) == 0 {
				out = append(out, path)
			}
			for i, e := range t {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		default:
			out = append(out, path)
		}
	}
	walk("", root)
	return out
}

// uncovered are the leaves the conversion neither mapped nor reported.
func (d *doc) uncovered() []string {
	var out []string
	for _, l := range Leaves(d.root) {
		if !d.covered(l) {
			out = append(out, l)
		}
	}
	return out
}

// Covered reports whether leaf of the object traced by tr was mapped or is named (itself or an
// ancestor) by one of findings about that object. It reads only the trace's Mapped set and the
// findings, not the conversion's internal state.
func Covered(tr Trace, leaf string, findings []Finding) bool {
	named := map[string]bool{}
	for _, f := range findings {
		if f.Source == tr.Source {
			named[f.Field] = true
		}
	}
	for p := leaf; ; p = parentPath(p) {
		if _, ok := tr.Mapped[p]; ok || named[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}
