package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

// RouterCRD is one routing API's CustomResourceDefinitions, as published upstream.
type RouterCRD struct {
	// Module is the Go module (at a pinned version) that ships the manifests; Paths are inside
	// it. A stand-in (no upstream manifest can be had here) names a file of this repository.
	Module string
	Paths  []string
	// Names are the CRDs to wait for.
	Names []string
	// Convert, when set, rewrites a manifest this API server cannot take as published.
	Convert func([]byte) ([]byte, error)
}

// RouterCRDs are the real upstream CRDs of every router Sluice drives. App Mesh's controller
// module is not served here, so its CRDs are a structural stand-in kept in deploy/crds/stand-ins.
var RouterCRDs = []RouterCRD{
	{
		Module: "sigs.k8s.io/gateway-api@v1.6.3",
		Paths: []string{
			"config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
			"config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
			"config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
			"config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml",
			"config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
		},
		Names: []string{"httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io"},
	},
	{
		Module: "istio.io/api@v1.32.0",
		Paths:  []string{"kubernetes/customresourcedefinitions.gen.yaml"},
		Names:  []string{"virtualservices.networking.istio.io", "destinationrules.networking.istio.io"},
	},
	{
		Module: "github.com/projectcontour/contour@v1.33.8",
		Paths:  []string{"examples/contour/01-crds.yaml"},
		Names:  []string{"httpproxies.projectcontour.io"},
	},
	{
		// The SMI spec's TrafficSplit CRD is published as apiextensions.k8s.io/v1beta1, which
		// API servers stopped serving in 1.22: it is converted to v1 field by field, and
		// v1alpha1 and v1alpha2 (the versions Linkerd's SMI extension serves) are marked served.
		Module:  "github.com/servicemeshinterface/smi-sdk-go@v0.5.0",
		Paths:   []string{"crds/split.yaml"},
		Names:   []string{"trafficsplits.split.smi-spec.io"},
		Convert: func(b []byte) ([]byte, error) { return crdV1beta1ToV1(b, "v1alpha1", "v1alpha2") },
	},
	{
		Paths: []string{"deploy/crds/stand-ins/appmesh.k8s.aws.yaml"},
		Names: []string{"virtualrouters.appmesh.k8s.aws", "virtualnodes.appmesh.k8s.aws"},
	},
}

// InstallRouterCRDs applies RouterCRDs to the cluster and waits until they are served.
func InstallRouterCRDs(ctx context.Context, c *cluster.Cluster, repo string) error {
	var names []string
	for _, crd := range RouterCRDs {
		dir := repo
		if crd.Module != "" {
			d, err := moduleDir(ctx, crd.Module)
			if err != nil {
				return err
			}
			dir = d
		}
		for _, p := range crd.Paths {
			path := filepath.Join(dir, p)
			if crd.Convert != nil {
				raw, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if raw, err = crd.Convert(raw); err != nil {
					return fmt.Errorf("convert %s %s: %w", crd.Module, p, err)
				}
				path = filepath.Join(c.Dir, strings.ReplaceAll(filepath.Base(dir)+"-"+filepath.Base(p), "@", "-"))
				if err := os.WriteFile(path, raw, 0o644); err != nil {
					return err
				}
			}
			// Server-side apply: Istio's and Gateway API's CRDs are too large for the
			// last-applied annotation of a client-side apply.
			if _, stderr, err := c.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", path); err != nil {
				return fmt.Errorf("apply %s %s: %w: %s", crd.Module, p, err, stderr)
			}
		}
		names = append(names, crd.Names...)
	}
	args := append([]string{"wait", "--for=condition=Established", "--timeout=60s"}, prefixed("crd/", names)...)
	if _, stderr, err := c.Kubectl(ctx, args...); err != nil {
		return fmt.Errorf("wait for the router CRDs: %w: %s", err, stderr)
	}
	return nil
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// moduleDir downloads module@version (once; the module cache keeps it) and returns its directory.
func moduleDir(ctx context.Context, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("download %s: %w: %s", module, err, strings.TrimSpace(stderr.String()))
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("download %s: decode go mod download output: %w", module, err)
	}
	if mod.Dir == "" {
		return "", fmt.Errorf("download %s: %s", module, mod.Error)
	}
	return mod.Dir, nil
}

// crdV1beta1ToV1 converts an apiextensions.k8s.io/v1beta1 CRD to v1: the shared validation
// schema and printer columns move into every version, and the versions in serve are served.
func crdV1beta1ToV1(raw []byte, serve ...string) ([]byte, error) {
	var crd map[string]any
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		return nil, err
	}
	if crd["apiVersion"] != "apiextensions.k8s.io/v1beta1" {
		return nil, fmt.Errorf("not a v1beta1 CRD: %v", crd["apiVersion"])
	}
	spec, _ := crd["spec"].(map[string]any)
	schema, _ := spec["validation"].(map[string]any)["openAPIV3Schema"].(map[string]any)
	if schema == nil {
		return nil, fmt.Errorf("no validation schema")
	}
	schema["type"] = "object"
	var columns []any
	for _, c := range asList(spec["additionalPrinterColumns"]) {
		col := c.(map[string]any)
		col["jsonPath"] = col["JSONPath"]
		delete(col, "JSONPath")
		columns = append(columns, col)
	}
	for _, v := range asList(spec["versions"]) {
		ver := v.(map[string]any)
		ver["schema"] = map[string]any{"openAPIV3Schema": schema}
		if columns != nil {
			ver["additionalPrinterColumns"] = columns
		}
		for _, s := range serve {
			if ver["name"] == s {
				ver["served"] = true
			}
		}
	}
	delete(spec, "validation")
	delete(spec, "additionalPrinterColumns")
	delete(spec, "version")
	crd["apiVersion"] = "apiextensions.k8s.io/v1"
	return yaml.Marshal(crd)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
