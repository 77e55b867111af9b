package metrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Source is what a backend client is built from: a MetricTemplate's provider fields, the Secret
// it names, and the controller's settings.
type Source struct {
	// Address is the backend's API address; empty means the backend's default.
	Address string
	Region  string
	// InsecureSkipVerify and Headers are honoured only by backends that take them
	// (Backend.HTTPOptions); the registry refuses them for the others.
	InsecureSkipVerify bool
	Headers            map[string]string
	// Secret is the data of the Secret the template names (empty without one).
	Secret map[string][]byte
	// Namespace is the template's, named in messages that tell where credentials belong.
	Namespace string
	// Timeout bounds one query.
	Timeout time.Duration
	// AllowControllerCloudIdentity lets a cloud backend without keys in the Secret use the
	// controller's own identity (--allow-controller-cloud-identity).
	AllowControllerCloudIdentity bool
}

// Key is the Secret's value for key k ("" when absent).
func (s Source) Key(k string) string { return string(s.Secret[k]) }

// Backend is one metric backend type as a MetricTemplate's `provider.type` names it. Each
// backend package declares its own; cmd/sluice registers every one with one line.
type Backend struct {
	// Type is the value of `provider.type`.
	Type string
	// New builds a client. Secret keys follow Flagger's, so a Flagger template's Secret works
	// unchanged.
	New func(ctx context.Context, s Source) (Provider, error)
	// CredentialKeys are the Secret keys whose values must never appear in what Sluice prints
	// (a backend may echo a key back in an error).
	CredentialKeys []string
	// HTTPOptions: the backend honours insecureSkipVerify and headers.
	HTTPOptions bool
}

// Registry is the metric backends a controller offers. A type that is not registered is an
// error, never a fallback to Prometheus.
type Registry struct {
	backends []Backend
}

// Register adds a backend. It panics on an empty type, a missing constructor or a type already
// registered: wiring mistakes, found when the binary starts.
func (r *Registry) Register(b Backend) {
	if b.Type == "" || b.New == nil {
		panic(fmt.Sprintf("metrics: register %q: a backend needs a type and a constructor", b.Type))
	}
	if _, ok := r.Lookup(b.Type); ok {
		panic(fmt.Sprintf("metrics: register %q: registered twice", b.Type))
	}
	r.backends = append(r.backends, b)
}

// Lookup finds the backend of type typ.
func (r *Registry) Lookup(typ string) (Backend, bool) {
	if r != nil {
		for _, b := range r.backends {
			if b.Type == typ {
				return b, true
			}
		}
	}
	return Backend{}, false
}

// Types lists the registered types in registration order.
func (r *Registry) Types() []string {
	if r == nil {
		return nil
	}
	types := make([]string, len(r.backends))
	for i, b := range r.backends {
		types[i] = b.Type
	}
	return types
}

// New builds a client of backend type typ from s. An unknown type, or insecureSkipVerify or
// headers given to a backend that does not take them, is an error saying so.
func (r *Registry) New(ctx context.Context, typ string, s Source) (Provider, error) {
	b, ok := r.Lookup(typ)
	if !ok {
		return nil, fmt.Errorf("provider type %q is not available in this version of Sluice (it has %s)", typ, strings.Join(r.Types(), ", "))
	}
	if !b.HTTPOptions && (s.InsecureSkipVerify || len(s.Headers) > 0) {
		var takers []string
		for _, o := range r.backends {
			if o.HTTPOptions {
				takers = append(takers, o.Type)
			}
		}
		does := "does"
		if len(takers) > 1 {
			does = "do"
		}
		return nil, fmt.Errorf("the %s provider does not take insecureSkipVerify or headers (only %s %s)", typ, strings.Join(takers, ", "), does)
	}
	return b.New(ctx, s)
}

// CredentialKeys are the Secret keys of backend type typ whose values must never be printed.
func (r *Registry) CredentialKeys(typ string) []string {
	b, _ := r.Lookup(typ)
	return slices.Clone(b.CredentialKeys)
}
