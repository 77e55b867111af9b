package install

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Acceptance 7: the first section of README.md shows the one-command install, and that
// command, run as written, installs Sluice; the uninstall of docs/install.md (webhook
// configuration first) then leaves the MetricTemplate CRD and nothing else of the chart.
func TestReadmeInstallCommand(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	first := firstSection(string(raw))
	var command string
	for _, line := range strings.Split(first, "\n") {
		if strings.HasPrefix(line, "helm install ") {
			command = line
		}
	}
	if command == "" {
		t.Fatalf("README.md's first section shows no `helm install` command:\n%s", first)
	}
	fields := strings.Fields(command)
	args := fields[1:]
	for i, a := range args {
		if a == "deploy/helm/sluice" {
			args[i] = chartDir()
		}
	}
	helm(t, args...)
	release, ns := fields[2], flagIn(fields, "--namespace", "-n")
	t.Logf("installed: %s (release %s in %s)", command, release, ns)

	ctx := t.Context()
	admin := adminClient(t)
	if _, err := admin.AppsV1().Deployments(ns).Get(ctx, release, metav1.GetOptions{}); err != nil {
		t.Errorf("the controller Deployment: %v", err)
	}
	mwcs := admin.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := mwcs.Get(ctx, release, metav1.GetOptions{}); err != nil {
		t.Errorf("the webhook configuration: %v", err)
	}
	if status := helm(t, "status", release, "-n", ns); !strings.Contains(status, "STATUS: deployed") {
		t.Errorf("helm status:\n%s", status)
	}

	// docs/install.md's uninstall: the webhook configuration first, then the release.
	if err := mwcs.Delete(ctx, release, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	helm(t, "uninstall", release, "-n", ns, "--wait")
	deadline := time.Now().Add(time.Minute)
	for {
		_, errD := admin.AppsV1().Deployments(ns).Get(ctx, release, metav1.GetOptions{})
		_, errR := admin.RbacV1().ClusterRoles().Get(ctx, release, metav1.GetOptions{})
		if apierrors.IsNotFound(errD) && apierrors.IsNotFound(errR) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after helm uninstall: Deployment %v, ClusterRole %v", errD, errR)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, name := range []string{"metrictemplates.sluice.dev", "alertproviders.sluice.dev"} {
		crd, _, err := testCluster.Kubectl(ctx, "get", "crd", name, "-o", "name")
		if err != nil || strings.TrimSpace(crd) == "" {
			t.Errorf("the CRD %s is not kept after uninstall: %v", name, err)
		}
	}
	deleteCRD(t)
}

// deleteCRD removes the CRDs a chart install keeps (MetricTemplate, AlertProvider), so the next
// test finds the cluster as it was.
func deleteCRD(t *testing.T) {
	t.Helper()
	if _, stderr, err := testCluster.Kubectl(context.Background(), "delete", "crd", "metrictemplates.sluice.dev", "alertproviders.sluice.dev",
		"--ignore-not-found", "--wait"); err != nil {
		t.Errorf("delete the kept CRDs: %v\n%s", err, stderr)
	}
}

// firstSection returns README text from the first "## " heading to the next one.
func firstSection(readme string) string {
	_, rest, found := strings.Cut(readme, "\n## ")
	if !found {
		return ""
	}
	section, _, _ := strings.Cut(rest, "\n## ")
	return section
}

func flagIn(fields []string, names ...string) string {
	for i, f := range fields {
		for _, n := range names {
			if f == n && i+1 < len(fields) {
				return fields[i+1]
			}
			if v, ok := strings.CutPrefix(f, n+"="); ok {
				return v
			}
		}
	}
	return "default"
}
