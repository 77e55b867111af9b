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
		Module: "github.com/servicemeshinterface/smi-sdk-go@v0.5.0",
		Paths:  []string{"crds/split.yaml"},
		Names:  []string{"trafficsplits.split.smi-spec.io"},
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
			// Server-side apply: Istio's and Gateway API's CRDs are too large for the
			// last-applied annotation of a client-side apply.
			if _, stderr, err := c.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(dir, p)); err != nil {
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
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("download %s: %s %v", module, mod.Error, err)
	}
	return mod.Dir, nil
}
