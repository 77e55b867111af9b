package flaggerimport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/cmd/kubectl-sluice/flaggerimport"
	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/providers/builtin"
)

// defaultNamespace holds the objects of Canaries that name no namespace.
const defaultNamespace = "flagger-import"

// tally is what the test prints at the end.
type tally struct {
	canaries, snippets, notYAML        int
	clean, withReport, notConverted    int
	objects, dryRunOK, refusedReported int
	notServed                          map[string]int
	reportLines                        int
}

// TestImportEveryPublishedCanary (issue 12, acceptance 1): every Canary manifest in Flagger's
// module imports. For each YAML stream holding a Canary the real `kubectl sluice import` runs
// (with a Deployment for the Canary's target, Flagger's podinfo renamed, as --deployment); it
// must exit 0 and write objects, unless the report says why a Canary has no equivalent (not a
// Deployment, no target at all); every object is then created with server-side dry-run on the
// API server, where Sluice's webhook validates the Deployment's annotations and the routers'
// CRDs the routing objects. An object the API server refuses must be explained by a report
// line naming the input field (Sluice's own admission message, which import predicts); hooks
// and alerts are counted apart while the release does not run them yet. Independently of the
// plugin's own bookkeeping, every leaf of every Flagger object must be mapped or reported, and
// none may be a field the converter does not know.
func TestImportEveryPublishedCanary(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	repo, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	modDir, version, err := moduleDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	var exist, missing []string
	for _, d := range append(slices.Clone(publishedDirs), "README.md") {
		if _, err := os.Stat(filepath.Join(modDir, d)); err == nil {
			exist = append(exist, d)
		} else {
			missing = append(missing, d)
		}
	}
	t.Logf("flagger %s module %s: present %v, absent %v", version, modDir, exist, missing)

	helm, err := cluster.EnsureHelm(ctx, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	render := func(chart string) ([]byte, error) {
		out, err := exec.CommandContext(ctx, helm, "template", "podinfo", chart, "--namespace", "test",
			"--set", "canary.enabled=true,canary.istioIngress.enabled=true,canary.istioIngress.host=podinfo.example.com,canary.loadtest.enabled=true").Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return out, err
	}
	snippets, files, err := findSnippets(modDir, render)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("files read per directory: %v", files)
	podinfo, err := os.ReadFile(filepath.Join(modDir, "kustomize", "podinfo", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	dyn, err := dynamic.NewForConfig(env.Cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.Cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	namespaces := map[string]bool{}
	ensureNamespace := func(ns string) error {
		if namespaces[ns] {
			return nil
		}
		_, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		namespaces[ns] = true
		return nil
	}

	tl := tally{notServed: map[string]int{}}
	dir := t.TempDir()
	for i, s := range snippets {
		tl.snippets++
		if s.err != nil {
			tl.notYAML++
			t.Logf("%s: not YAML, a documentation fragment (excluded): %v", s.where, s.err)
			continue
		}
		objs, _ := parseStream(s.yaml)
		in := filepath.Join(dir, fmt.Sprintf("snippet-%d.yaml", i))
		if err := os.WriteFile(in, s.yaml, 0o600); err != nil {
			t.Fatal(err)
		}
		dep := filepath.Join(dir, fmt.Sprintf("deployments-%d.yaml", i))
		deployments := targetDeployments(t, objs, podinfo)
		if err := os.WriteFile(dep, deployments, 0o600); err != nil {
			t.Fatal(err)
		}

		// The real plugin.
		cmd := exec.CommandContext(ctx, env.PluginBinary, "import", "--deployment", dep, in)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%s: kubectl sluice import failed (%v) on readable input:\n%s", s.where, err, stderr.String())
			continue
		}
		report := stderr.String()

		// The same conversion in process, for its trace: every leaf mapped or reported.
		res, err := flaggerimport.Convert(s.yaml, flaggerimport.Options{Deployments: deployments, Routers: builtin.Routers().Catalog()})
		if err != nil {
			t.Fatalf("%s: Convert: %v", s.where, err)
		}
		tl.canaries += res.Canaries
		for _, tr := range res.Traces {
			for _, leaf := range flaggerimport.Leaves(tr.Object) {
				if !flaggerimport.Covered(tr, leaf, res.Findings) {
					t.Errorf("%s: %s: %s silently dropped (neither mapped nor reported)", s.where, tr.Source, leaf)
				}
			}
			if len(tr.Unknown) > 0 {
				t.Errorf("%s: %s: fields Flagger publishes that import does not know: %q", s.where, tr.Source, tr.Unknown)
			}
		}
		var lines []string
		for _, f := range res.Findings {
			if !strings.Contains(f.Message, "not a Flagger object") {
				lines = append(lines, f.String())
			}
		}
		tl.reportLines += len(lines)

		out, err := parseStream(stdout.Bytes())
		if err != nil {
			t.Errorf("%s: output is not YAML: %v", s.where, err)
			continue
		}
		if len(out) == 0 {
			if !strings.Contains(report, "spec.targetRef.kind:") && !strings.Contains(report, "spec.targetRef.name:") {
				t.Errorf("%s: empty output and no report line says why:\n%s", s.where, report)
			}
			tl.notConverted += res.Canaries
			continue
		}
		if len(lines) == 0 {
			tl.clean++
		} else {
			tl.withReport++
		}

		for _, o := range out {
			tl.objects++
			u := &unstructured.Unstructured{Object: o}
			ns := u.GetNamespace()
			if ns == "" {
				ns = defaultNamespace
				u.SetNamespace(ns)
			}
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				t.Errorf("%s: %s %s: namespace %q: %v", s.where, u.GetKind(), u.GetName(), ns, errs)
				continue
			}
			gvk := u.GroupVersionKind()
			mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if meta.IsNoMatchError(err) {
				tl.notServed[gvk.String()]++
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := ensureNamespace(ns); err != nil {
				t.Fatal(err)
			}
			_, err = dyn.Resource(mapping.Resource).Namespace(ns).Create(ctx, u, metav1.CreateOptions{
				DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict})
			if err == nil {
				tl.dryRunOK++
				continue
			}
			if unexplained := explain(err.Error(), report); len(unexplained) > 0 {
				t.Errorf("%s: %s %s/%s refused by the API server and no report line names why:\n  %s\nreport:\n%s",
					s.where, u.GetKind(), ns, u.GetName(), strings.Join(unexplained, "\n  "), report)
			} else {
				tl.refusedReported++
			}
		}
	}
	t.Logf("flagger %s: %d Canary manifests in %d YAML streams (%d more streams are documentation fragments that are not YAML); "+
		"%d converted without a report line, %d with report lines (%d lines), %d Canaries not convertible (reported: not a Deployment, or no target)",
		version, tl.canaries, tl.snippets-tl.notYAML, tl.notYAML, tl.clean, tl.withReport, tl.reportLines, tl.notConverted)
	t.Logf("objects written: %d; server-side dry-run: %d accepted, %d refused for a reason the report names, not served by this API server: %v",
		tl.objects, tl.dryRunOK, tl.refusedReported, tl.notServed)
	if tl.canaries == 0 || tl.dryRunOK == 0 {
		t.Errorf("found %d Canaries, %d objects accepted: the scan or the dry-run found nothing", tl.canaries, tl.dryRunOK)
	}
}

// explain matches an API server refusal against import's report: every error of a denial by
// Sluice's webhook (one per field, joined by "; ") must be quoted by a report line (import runs
// the same parser and reports its message against the input field). It returns what of the
// denial no report line quotes.
func explain(msg, report string) (unexplained []string) {
	_, denial, ok := strings.Cut(msg, "denied the request: ")
	if !ok {
		return []string{msg}
	}
	for _, line := range strings.Split(report, "\n") {
		if _, quoted, ok := strings.Cut(line, "Sluice would refuse this at kubectl apply: "); ok {
			denial = strings.ReplaceAll(denial, strings.TrimSpace(quoted), "")
		}
	}
	for _, rest := range strings.Split(denial, "\n") {
		if rest = strings.Trim(rest, "; \t"); rest != "" && !strings.Contains(report, rest) {
			unexplained = append(unexplained, rest)
		}
	}
	return unexplained
}

// targetDeployments is a Deployment for every Canary target of objs: Flagger's podinfo,
// renamed, in the Canary's namespace, selecting its own name as app.
func targetDeployments(t *testing.T, objs []map[string]any, podinfo []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, o := range objs {
		u := unstructured.Unstructured{Object: o}
		if u.GroupVersionKind().Group != "flagger.app" || u.GetKind() != "Canary" {
			continue
		}
		name, _, _ := unstructured.NestedString(o, "spec", "targetRef", "name")
		if name == "" {
			continue
		}
		var d map[string]any
		if err := yaml.Unmarshal(podinfo, &d); err != nil {
			t.Fatal(err)
		}
		dep := unstructured.Unstructured{Object: d}
		dep.SetName(name)
		if ns := u.GetNamespace(); ns != "" {
			dep.SetNamespace(ns)
		}
		labels := map[string]any{"app": name}
		_ = unstructured.SetNestedMap(d, labels, "spec", "selector", "matchLabels")
		_ = unstructured.SetNestedMap(d, labels, "spec", "template", "metadata", "labels")
		dep.SetLabels(map[string]string{"app": name})
		b, err := yaml.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.Bytes()
}
