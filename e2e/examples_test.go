package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// TestExamplesRelease keeps the README's router examples true: each file of examples/ is
// applied as a user would on `make up`'s control plane, and a new image is released through
// it to the end.
func TestExamplesRelease(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, "shop", nil)
			content, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			// App Mesh discovers a node by DNS name; the example is written for "default".
			path := filepath.Join(t.TempDir(), name+".yaml")
			writeFile(t, path, []byte(strings.ReplaceAll(string(content), ".default.svc", "."+a.ns+".svc")))
			a.kubectl("apply", "-f", path)
			a.waitFor(60*time.Second, "3 available replicas", func(d *appsv1.Deployment) (bool, string) {
				return d.Status.AvailableReplicas == 3, fmt.Sprintf("available=%d", d.Status.AvailableReplicas)
			})
			a.kubectl("set", "image", "deployment/shop", "app=demo:v2")
			a.waitFor(3*time.Minute, "the release to succeed", func(d *appsv1.Deployment) (bool, string) {
				st := stateOf(t, d)
				if st.Phase == spec.PhaseFailed {
					t.Fatalf("release failed: %s\nevents %v", st.Message, a.events())
				}
				return st.Phase == spec.PhaseSucceeded && d.Status.UpdatedReplicas == 3, fmt.Sprintf("%s: %s", st.Phase, st.Message)
			})
		})
	}
}
