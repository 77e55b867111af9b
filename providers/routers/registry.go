package routers

import (
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Registry is the routers a controller offers: each one's description (spec.RouterInfo, which
// admission and analysis read) and its constructor (which the worker calls). cmd/sluice
// registers every router with one line; a name that is not registered is an error, never a
// fallback.
type Registry struct {
	entries []entry
}

type entry struct {
	info spec.RouterInfo
	new  func(Objects) Router
}

// Register adds a router. It panics on a description that fails spec.RouterInfo.Validate or a
// name already registered: both are wiring mistakes, found when the binary starts.
func (r *Registry) Register(info spec.RouterInfo, newRouter func(Objects) Router) {
	if err := info.Validate(); err != nil {
		panic(fmt.Sprintf("routers: register: %v", err))
	}
	if newRouter == nil {
		panic(fmt.Sprintf("routers: register %q: no constructor", info.Name))
	}
	if _, ok := r.Catalog().Lookup(info.Name); ok {
		panic(fmt.Sprintf("routers: register %q: registered twice", info.Name))
	}
	r.entries = append(r.entries, entry{info: info, new: newRouter})
}

// Catalog is the registered routers' descriptions, in registration order (spec.Defaults.Routers,
// and the order admission lists them in).
func (r *Registry) Catalog() spec.Routers {
	if r == nil {
		return nil
	}
	out := make(spec.Routers, len(r.entries))
	for i, e := range r.entries {
		out[i] = e.info
	}
	return out
}

// New builds the router called name on objs.
func (r *Registry) New(name string, objs Objects) (Router, error) {
	if r != nil {
		for _, e := range r.entries {
			if e.info.Name == name {
				return e.new(objs), nil
			}
		}
	}
	return nil, &ErrUnknown{Name: name, Known: r.Catalog().Names()}
}

// ErrUnknown is a router name that is not registered.
type ErrUnknown struct {
	Name  string
	Known []string
}

func (e *ErrUnknown) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("router %q is not available: no router is registered", e.Name)
	}
	return fmt.Sprintf("router %q is not available in this controller (it has %s)", e.Name, strings.Join(e.Known, ", "))
}
