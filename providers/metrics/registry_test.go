package metrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/providers/metrics"
)

type constant float64

func (c constant) Query(context.Context, string) (float64, error) { return float64(c), nil }

func backend(typ string, httpOptions bool, keys ...string) metrics.Backend {
	return metrics.Backend{
		Type: typ,
		New: func(_ context.Context, s metrics.Source) (metrics.Provider, error) {
			return constant(len(s.Key("k"))), nil
		},
		CredentialKeys: keys,
		HTTPOptions:    httpOptions,
	}
}

// A registered backend is built from the Source; an unknown type and HTTP options given to a
// backend that does not take them are errors saying so (and naming what would work).
func TestRegistryNew(t *testing.T) {
	var r metrics.Registry
	r.Register(backend("alpha", true, "token"))
	r.Register(backend("beta", false, "key"))
	p, err := r.New(t.Context(), "beta", metrics.Source{Secret: map[string][]byte{"k": []byte("abc")}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := p.Query(t.Context(), "q"); v != 3 {
		t.Errorf("the backend did not get the Secret: %v", v)
	}
	for name, tc := range map[string]struct {
		typ  string
		src  metrics.Source
		want string
	}{
		"unknown type": {"gamma", metrics.Source{}, `provider type "gamma" is not available in this version of Sluice (it has alpha, beta)`},
		"headers":      {"beta", metrics.Source{Headers: map[string]string{"X": "y"}}, "the beta provider does not take insecureSkipVerify or headers (only alpha does)"},
		"insecure":     {"beta", metrics.Source{InsecureSkipVerify: true}, "the beta provider does not take insecureSkipVerify or headers (only alpha does)"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.New(t.Context(), tc.typ, tc.src); err == nil || err.Error() != tc.want {
				t.Errorf("New(%s) error = %v, want %q", tc.typ, err, tc.want)
			}
		})
	}
	if _, err := r.New(t.Context(), "alpha", metrics.Source{Headers: map[string]string{"X": "y"}, InsecureSkipVerify: true}); err != nil {
		t.Errorf("alpha takes HTTP options: %v", err)
	}
	if got := strings.Join(r.CredentialKeys("beta"), ","); got != "key" {
		t.Errorf("CredentialKeys(beta) = %s", got)
	}
}

func TestRegisterRefusesWiringMistakes(t *testing.T) {
	for name, b := range map[string]metrics.Backend{
		"twice":          backend("alpha", false),
		"no type":        backend("", false),
		"no constructor": {Type: "gamma"},
	} {
		t.Run(name, func(t *testing.T) {
			var r metrics.Registry
			r.Register(backend("alpha", false))
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%+v) did not panic", b)
				}
			}()
			r.Register(b)
		})
	}
}
