package loadtester

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// TestGatesSurviveRestart installs the chart's loadtester RBAC (loadtester.enabled=true) on
// the real API server, runs sluice-loadtester with the chart's arguments as the chart's
// ServiceAccount, and restarts it — killed, then stopped gracefully: the gates it opened and
// closed are what they were, read back from the ConfigMap. The ConfigMap is the truth: an
// operator's kubectl edit is seen by the next check without a restart, and a value it cannot
// read fails the check saying why.
func TestGatesSurviveRestart(t *testing.T) {
	const ns = "loadtester-e2e"
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(testCluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	// The chart's objects: RBAC applied, the Deployment's arguments used.
	objs := renderLoadtester(t, ns)
	var rbac bytes.Buffer
	var deploy appsv1.Deployment
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding":
			b, err := yaml.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			rbac.WriteString("---\n")
			rbac.Write(b)
		case "Deployment":
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &deploy); err != nil {
				t.Fatal(err)
			}
		}
	}
	rbacFile := filepath.Join(t.TempDir(), "rbac.yaml")
	if err := os.WriteFile(rbacFile, rbac.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := testCluster.Kubectl(ctx, "apply", "-f", rbacFile); err != nil {
		t.Fatalf("kubectl apply the chart's loadtester RBAC: %v\n%s", err, stderr)
	}
	if len(deploy.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the chart renders no loadtester Deployment with one container: %+v", deploy.Spec.Template.Spec)
	}
	sa := deploy.Spec.Template.Spec.ServiceAccountName
	kubeconfig, _, err := testCluster.UserKubeconfig("system:serviceaccount:"+ns+":"+sa,
		"system:serviceaccounts", "system:serviceaccounts:"+ns, "system:authenticated")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, a := range deploy.Spec.Template.Spec.Containers[0].Args {
		args = append(args, strings.ReplaceAll(a, "$(POD_NAMESPACE)", ns)) // the kubelet's expansion
	}
	args = append(args, "-address=127.0.0.1", "-kubeconfig="+kubeconfig)
	env := []string{"PATH=" + toolPath(t), "HOME=" + t.TempDir(), "POD_NAMESPACE=" + ns}
	tr := startTester(t, "sluice-loadtester", sluiceLoadtester(t), env, args...)

	gate := `{"name":"podinfo","namespace":"` + ns + `"}`
	expect := func(when, path, body string, want answer) {
		t.Helper()
		if got := tr.call("POST", path, body); got != want {
			t.Errorf("%s: POST %s = %v, want %v", when, path, got, want)
		}
	}
	closed, open := answer{403, "Forbidden"}, answer{200, "Approved"}
	expect("at first", "/gate/check", gate, closed)
	expect("at first", "/rollback/check", gate, closed)
	expect("open", "/gate/open", gate, answer{202, ""})
	expect("open", "/rollback/open", gate, answer{202, ""})
	expect("opened", "/gate/check", gate, open)

	cmName := "sluice-loadtester-gates"
	want := map[string]string{"podinfo." + ns: "open", "rollback.podinfo." + ns: "open"}
	if cm, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, cmName, metav1.GetOptions{}); err != nil {
		t.Errorf("the gate ConfigMap: %v", err)
	} else if diff := cmp.Diff(want, cm.Data); diff != "" {
		t.Errorf("ConfigMap %s data (-want +got):\n%s", cmName, diff)
	}

	tr.restart(syscall.SIGKILL)
	expect("after SIGKILL", "/gate/check", gate, open)
	expect("after SIGKILL", "/rollback/check", gate, open)
	expect("after SIGKILL", "/gate/check", `{"name":"other","namespace":"`+ns+`"}`, closed)
	expect("close", "/gate/close", gate, answer{202, ""})

	tr.restart(syscall.SIGTERM)
	expect("after SIGTERM", "/gate/check", gate, closed)
	expect("after SIGTERM", "/rollback/check", gate, open)

	// kubectl edit of the ConfigMap: seen at the next check.
	patch := func(value string) {
		t.Helper()
		body := []byte(`{"data":{"podinfo.` + ns + `":"` + value + `"}}`)
		if _, err := admin.CoreV1().ConfigMaps(ns).Patch(ctx, cmName, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	patch("open")
	expect("opened with kubectl", "/gate/check", gate, open)
	patch("yes")
	expect("set to a value it cannot read", "/gate/check", gate, answer{503,
		`gate podinfo.` + ns + ` in ConfigMap ` + ns + `/` + cmName + ` is "yes": want "open" or "closed"`})

	// The chart's Role is all it needs, and all it has: no other ConfigMap is readable.
	if got := tr.call("POST", "/gate/check", `{"name":"podinfo","namespace":"`+ns+`"}`); got.code == 403 {
		t.Errorf("RBAC refused the gate check: %v", got)
	}
	if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, _, err := testCluster.Kubectl(ctx, "auth", "can-i", "get", "configmaps/other", "-n", ns,
		"--as=system:serviceaccount:"+ns+":"+sa); err == nil || strings.TrimSpace(out) != "no" {
		t.Errorf("the loadtester's ServiceAccount may read another ConfigMap: %q %v", out, err)
	}
}

// renderLoadtester renders the chart's loadtester objects into namespace.
func renderLoadtester(t *testing.T, namespace string) []*unstructured.Unstructured {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), helm(t), "template", "sluice", filepath.Join(repo, "deploy", "helm", "sluice"),
		"--namespace", namespace, "--set", "loadtester.enabled=true", "--show-only", "templates/loadtester.yaml")
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("parse the render: %v", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs
}
