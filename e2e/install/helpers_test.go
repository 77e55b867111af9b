package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// helm runs the built helm CLI with its state in a temporary dir (nothing in $HOME) and the
// admin kubeconfig, and returns its stdout.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := tryHelm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func tryHelm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return tryHelmCtx(t.Context(), t, args...)
}

// tryHelmCtx is tryHelm under ctx (t.Context() is already cancelled in a cleanup).
func tryHelmCtx(ctx context.Context, t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := filepath.Join(testCluster.Dir, "helm-home")
	cmd := exec.CommandContext(ctx, helmBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+testCluster.Kubeconfig,
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// rendered is a chart or kustomize render: the raw manifest and its objects in order.
type rendered struct {
	raw     []byte
	objects []*unstructured.Unstructured
}

// renderChart runs `helm template` of the chart as release in namespace with the --set values.
func renderChart(t *testing.T, release, namespace string, sets ...string) rendered {
	t.Helper()
	args := []string{"template", release, chartDir(), "--namespace", namespace}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return parseManifest(t, []byte(helm(t, args...)))
}

// renderKustomize runs `kubectl kustomize deploy/kustomize` with the cached kubectl.
func renderKustomize(t *testing.T) rendered {
	t.Helper()
	out, stderr, err := testCluster.Kubectl(t.Context(), "kustomize", filepath.Join(repo, "deploy", "kustomize"))
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/kustomize: %v\n%s", err, stderr)
	}
	return parseManifest(t, []byte(out))
}

func parseManifest(t *testing.T, raw []byte) rendered {
	t.Helper()
	r := rendered{raw: raw}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("parse rendered manifest: %v\n%s", err, raw)
		}
		if len(m) == 0 {
			continue
		}
		r.objects = append(r.objects, &unstructured.Unstructured{Object: m})
	}
	if len(r.objects) == 0 {
		t.Fatalf("the render holds no objects:\n%s", raw)
	}
	return r
}

// kinds returns the sorted, distinct kinds of the render.
func (r rendered) kinds() []string {
	var out []string
	for _, o := range r.objects {
		if !slices.Contains(out, o.GetKind()) {
			out = append(out, o.GetKind())
		}
	}
	slices.Sort(out)
	return out
}

// all returns the objects of kind, in render order.
func (r rendered) all(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of kind named name (any name when name is empty).
func (r rendered) one(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range r.all(kind) {
		if name == "" || o.GetName() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q in the render, found %d (kinds: %v)", kind, name, len(found), r.kinds())
	}
	return found[0]
}

// into converts a rendered object into its typed form, refusing fields the type does not
// know (so a misspelled field in a template fails here, not silently in a cluster).
func into[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := yaml.UnmarshalStrict(b, out); err != nil {
		t.Fatalf("%s %s does not decode into %T: %v", o.GetKind(), o.GetName(), out, err)
	}
	return out
}

// deployment returns the render's only Deployment.
func (r rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	return into[appsv1.Deployment](t, r.one(t, "Deployment", ""))
}

// args returns the controller container's flags as name → value (flags without a value map
// to ""), failing on a flag given twice.
func args(t *testing.T, d *appsv1.Deployment) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		name, value, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if _, dup := out[name]; dup {
			t.Fatalf("flag --%s rendered twice: %v", name, d.Spec.Template.Spec.Containers[0].Args)
		}
		out[name] = value
	}
	return out
}

// dryRun applies the manifest with server-side apply in server dry-run mode: every object is
// validated, defaulted and admitted by the API server, and nothing is stored.
func dryRun(t *testing.T, name string, raw []byte) {
	t.Helper()
	// Not t.TempDir(): its name comes from the subtest's, and kubectl splits -f at commas.
	dir, err := os.MkdirTemp(testCluster.Dir, "render-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := testCluster.Kubectl(t.Context(), "apply", "--server-side", "--dry-run=server", "--field-manager=install-test", "-f", path)
	if err != nil {
		t.Fatalf("server-side dry-run of %s: %v\n%s", name, err, stderr)
	}
	t.Logf("server-side dry-run of %s:\n%s", name, out)
}

func asYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
