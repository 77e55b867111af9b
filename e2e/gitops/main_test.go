// Package gitops proves Sluice's GitOps claim with the GitOps tools' own code, on the local
// control plane with the real sluice binary (e2e/stack): a release never makes the live objects
// disagree with Git, and the tools see an honest health state while it runs.
//
//   - Flux: the Git manifest applied through github.com/fluxcd/pkg/ssa with kustomize-controller's
//     field manager and apply options, its drift detection (dry-run diff) and its health check
//     (kstatus, github.com/fluxcd/cli-utils), before, during and after a release.
//   - Helm: the helm CLI built from helm.sh/helm/v3 upgrades and rolls back a chart holding an
//     opted-in Deployment; the API server's audit log says which writes Helm sent.
//   - kubectl diff and server-side dry-run of the Git manifest mid-release, for the replicas
//     router and for a Gateway API HTTPRoute, with the ignore settings docs/gitops.md suggests
//     for Flux (ssa drift-ignore rules) and Argo CD (managedFieldsManagers, checked against the
//     managedFields Argo CD would read; Argo CD itself is not run).
//
// docs/gitops.md is the user-facing page of what these tests show.
package gitops

import (
	"context"
	"os"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/stack"
)

var env *stack.Stack

// auditPolicy logs the writes to Deployments (who sent them, with which user agent), so a test
// can tell whether a tool sent a write at all, not only whether the object changed.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete"]
  resources: [{group: "apps", resources: ["deployments"]}]
- level: None
`

func TestMain(m *testing.M) {
	log.SetLogger(logr.Discard())
	// Pod and Service ranges of its own, so that this package's pods never take the addresses of
	// another test binary's control plane running at the same time.
	opts := cluster.Options{PodCIDR: "127.43.0.0/16", ServiceCIDR: "127.44.0.0/16", AuditPolicy: auditPolicy}
	os.Exit(cluster.Main(m, opts, func(c *cluster.Cluster) error {
		s, err := stack.Up(context.Background(), c, stack.Options{})
		env = s
		return err
	}))
}
