package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/providers/builtin"
)

// What the API server and Helm accept is what this binary registers: the MetricTemplate CRD's
// provider types, the chart's default `routers` and the routers its schema allows.
func TestDeployAcceptsTheRegisteredNames(t *testing.T) {
	root := filepath.Join("..", "..")
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Properties struct {
							Spec struct {
								Properties struct {
									Provider struct {
										Properties struct {
											Type struct {
												Enum []string `json:"enum"`
											} `json:"type"`
										} `json:"properties"`
									} `json:"provider"`
								} `json:"properties"`
							} `json:"spec"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	readYAML(t, filepath.Join(root, "deploy", "crds", "metrictemplates.sluice.dev.yaml"), &crd)
	if len(crd.Spec.Versions) == 0 {
		t.Fatal("the MetricTemplate CRD has no versions")
	}
	for _, v := range crd.Spec.Versions {
		got := v.Schema.OpenAPIV3Schema.Properties.Spec.Properties.Provider.Properties.Type.Enum
		if diff := cmp.Diff(builtin.Backends().Types(), got); diff != "" {
			t.Errorf("MetricTemplate provider types (-registered +CRD enum):\n%s", diff)
		}
	}

	names := builtin.Routers().Catalog().Names()
	var values struct {
		Routers []string `json:"routers"`
	}
	readYAML(t, filepath.Join(root, "deploy", "helm", "sluice", "values.yaml"), &values)
	if diff := cmp.Diff(names, values.Routers); diff != "" {
		t.Errorf("the chart's default routers (-registered +values.yaml):\n%s", diff)
	}
	var schema struct {
		Definitions struct {
			Router struct {
				Enum []string `json:"enum"`
			} `json:"router"`
		} `json:"definitions"`
	}
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "helm", "sluice", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(names, schema.Definitions.Router.Enum); diff != "" {
		t.Errorf("routers the chart's schema allows (-registered +values.schema.json):\n%s", diff)
	}
}

// --default-router must name a registered router; the error lists them.
func TestDefaultRouterMustBeRegistered(t *testing.T) {
	o := parse(t, "--default-router=haproxy")
	err := o.Validate()
	want := `--default-router: sluice.dev/router: must be one of replicas, gatewayapi, istio, linkerd, nginx, contour, appmesh, got "haproxy"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Validate() = %v, want it to contain %q", err, want)
	}
	o = parse(t, "--default-router=istio")
	if err := o.Validate(); err != nil {
		t.Errorf("--default-router=istio: %v", err)
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
