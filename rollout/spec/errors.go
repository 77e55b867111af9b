package spec

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Bounds of what FormatErrors renders, so one huge annotation cannot make a multi-MB denial.
const (
	maxErrorLines = 10
	maxValueLen   = 64
	maxLineLen    = 400
)

// FormatErrors renders validation errors the way users see them at admission, one per line:
// `sluice.dev/max-weight: must be 1..100, got "150"`. At most maxErrorLines are listed (then a
// count of the rest), and a bad value is cut at maxValueLen bytes.
func FormatErrors(errs field.ErrorList) string {
	lines := make([]string, 0, min(len(errs), maxErrorLines)+1)
	for i, e := range errs {
		if i == maxErrorLines {
			lines = append(lines, fmt.Sprintf("and %d more error(s)", len(errs)-maxErrorLines))
			break
		}
		switch e.Type {
		case field.ErrorTypeInvalid:
			if s, ok := e.BadValue.(string); ok && s != "" {
				lines = append(lines, fmt.Sprintf("%s: %s, got %q", e.Field, e.Detail, truncate(s)))
				continue
			}
			lines = append(lines, fmt.Sprintf("%s: %s", e.Field, e.Detail))
		case field.ErrorTypeRequired:
			lines = append(lines, fmt.Sprintf("%s: required: %s", e.Field, e.Detail))
		case field.ErrorTypeDuplicate:
			lines = append(lines, fmt.Sprintf("%s: duplicate check name", e.Field))
		default:
			lines = append(lines, fmt.Sprintf("%s: %s", e.Field, e.Detail))
		}
	}
	for i, l := range lines {
		lines[i] = cut(l, maxLineLen)
	}
	return strings.Join(lines, "; ")
}

// truncate cuts s at maxValueLen bytes (on a rune boundary), saying how long it was.
func truncate(s string) string { return cut(s, maxValueLen) }

// cut shortens s to at most n bytes (on a rune boundary), saying how long it was.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:i], len(s))
}
