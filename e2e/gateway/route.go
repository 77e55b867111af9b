package gateway

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// httpRoute is the part of a gateway.networking.k8s.io/v1 HTTPRoute the gateway reads. Fields
// it does not model are not decoded; parse refuses the ones that would change where a request
// goes if ignored.
type httpRoute struct {
	Spec struct {
		Rules []struct {
			Matches []struct {
				Path *struct {
					Type  string `json:"type"`
					Value string `json:"value"`
				} `json:"path"`
				Headers []struct {
					Type  string `json:"type"`
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"headers"`
				QueryParams []any  `json:"queryParams"`
				Method      string `json:"method"`
			} `json:"matches"`
			Filters []struct {
				Type string `json:"type"`
			} `json:"filters"`
			BackendRefs []struct {
				Group     *string `json:"group"`
				Kind      *string `json:"kind"`
				Name      string  `json:"name"`
				Namespace *string `json:"namespace"`
				Port      *int32  `json:"port"`
				Weight    *int32  `json:"weight"`
				Filters   []any   `json:"filters"`
			} `json:"backendRefs"`
		} `json:"rules"`
	} `json:"spec"`
}

// route is an HTTPRoute reduced to what the gateway implements.
type route struct {
	ResourceVersion string
	Rules           []rule
}

// rule is one HTTPRoute rule: requests matching any of Matches (every request when there is
// none) are split between Backends by weight.
type rule struct {
	Matches  [][]HeaderMatch
	Backends []backendRef
}

// backendRef is a Service port of the route's namespace and its weight.
type backendRef struct {
	Service string
	Port    int32
	Weight  int32
}

// HeaderMatch is one header condition of a rule: the request has header Name with a value equal
// to Value, or, with Regex, a value that Value matches in full (RE2 syntax).
type HeaderMatch struct {
	Name  string
	Value string
	Regex bool
}

func (h HeaderMatch) String() string {
	if h.Regex {
		return fmt.Sprintf("%s~%q", h.Name, h.Value)
	}
	return fmt.Sprintf("%s=%q", h.Name, h.Value)
}

// parseRoute reduces an HTTPRoute to a route. It refuses what it cannot honour (path matches
// other than PathPrefix "/", method and query matches, filters other than RequestMirror,
// backends that are not Services of the route's own namespace) rather than route requests
// somewhere the route does not send them.
func parseRoute(obj *unstructured.Unstructured) (route, error) {
	var hr httpRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &hr); err != nil {
		return route{}, fmt.Errorf("decode HTTPRoute: %w", err)
	}
	r := route{ResourceVersion: obj.GetResourceVersion()}
	for i, hrRule := range hr.Spec.Rules {
		at := fmt.Sprintf("spec.rules[%d]", i)
		var ru rule
		for j, m := range hrRule.Matches {
			at := fmt.Sprintf("%s.matches[%d]", at, j)
			if m.Path != nil && (m.Path.Type != "PathPrefix" || m.Path.Value != "/") {
				return route{}, fmt.Errorf("%s.path: only PathPrefix \"/\" is supported, not %s %q", at, m.Path.Type, m.Path.Value)
			}
			if len(m.QueryParams) > 0 {
				return route{}, fmt.Errorf("%s.queryParams: query matches are not supported", at)
			}
			if m.Method != "" {
				return route{}, fmt.Errorf("%s.method: method matches are not supported", at)
			}
			headers := make([]HeaderMatch, 0, len(m.Headers))
			for k, h := range m.Headers {
				hm := HeaderMatch{Name: h.Name, Value: h.Value}
				switch h.Type {
				case "", "Exact":
				case "RegularExpression":
					hm.Regex = true
					if _, err := regexp.Compile(h.Value); err != nil {
						return route{}, fmt.Errorf("%s.headers[%d]: %w", at, k, err)
					}
				default:
					return route{}, fmt.Errorf("%s.headers[%d]: match type %q is not supported", at, k, h.Type)
				}
				// "If multiple entries specify equivalent header names, only the first entry
				// with an equivalent name MUST be considered" (Gateway API).
				if !slices.ContainsFunc(headers, func(o HeaderMatch) bool { return strings.EqualFold(o.Name, h.Name) }) {
					headers = append(headers, hm)
				}
			}
			ru.Matches = append(ru.Matches, headers)
		}
		for j, f := range hrRule.Filters {
			if f.Type != "RequestMirror" {
				return route{}, fmt.Errorf("%s.filters[%d]: filter %q is not supported", at, j, f.Type)
			}
		}
		for j, b := range hrRule.BackendRefs {
			at := fmt.Sprintf("%s.backendRefs[%d]", at, j)
			if (b.Group != nil && *b.Group != "") || (b.Kind != nil && *b.Kind != "Service") {
				return route{}, fmt.Errorf("%s: only Services are supported as backends", at)
			}
			if b.Namespace != nil && *b.Namespace != obj.GetNamespace() {
				return route{}, fmt.Errorf("%s: backends in other namespaces are not supported", at)
			}
			if len(b.Filters) > 0 {
				return route{}, fmt.Errorf("%s.filters: backend filters are not supported", at)
			}
			if b.Port == nil {
				return route{}, fmt.Errorf("%s.port: a Service backend needs a port", at)
			}
			weight := int32(1) // the API's default
			if b.Weight != nil {
				weight = *b.Weight
			}
			ru.Backends = append(ru.Backends, backendRef{Service: b.Name, Port: *b.Port, Weight: weight})
		}
		r.Rules = append(r.Rules, ru)
	}
	return r, nil
}
