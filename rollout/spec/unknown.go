package spec

import (
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// knownAnnotations are the sluice.dev/* annotations an opted-in Deployment may carry.
var knownAnnotations = func() map[string]bool {
	m := map[string]bool{AnnState: true}
	for _, k := range append(slices.Clone(ConfigAnnotations), ControlAnnotations...) {
		m[k] = true
	}
	return m
}()

// unknownKeys refuses every sluice.dev/* annotation Sluice does not read: a misspelled key
// silently ignored is a release run with settings the user did not choose.
func unknownKeys(ann map[string]string) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(ann)) {
		if !strings.HasPrefix(k, Prefix) || knownAnnotations[k] {
			continue
		}
		detail := "not an annotation Sluice knows"
		switch {
		case k == LabelEnabled:
			detail = "is a label, not an annotation: set it under metadata.labels"
		case suggest(k) != "":
			detail += "; did you mean " + suggest(k) + "?"
		}
		errs = append(errs, &field.Error{Type: field.ErrorTypeNotSupported, Field: k, Detail: detail})
	}
	return errs
}

// suggest returns the known annotation nearest to k when it is near enough to be a typo.
func suggest(k string) string {
	best, bestDist := "", -1
	for _, known := range slices.Sorted(maps.Keys(knownAnnotations)) {
		if known == AnnState {
			continue
		}
		if d := editDistance(k, known); bestDist < 0 || d < bestDist {
			best, bestDist = known, d
		}
	}
	name := strings.TrimPrefix(k, Prefix)
	if bestDist <= max(2, len(name)/3) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
