package gitops

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/jsondiff"
	"github.com/itchyny/gojq"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/providers/routers"
	"github.com/sluice-dev/sluice/providers/routers/gatewayapi"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// userRoute is an HTTPRoute as a user keeps it in Git: a rule for the app's Service (index 0)
// and one for another Service.
const userRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /static}}]
    backendRefs: [{name: static, port: 8080}]
`

// sluiceManager is the field manager of Sluice's writes: the controller's binary name, which
// client-go puts in the user agent.
const sluiceManager = "sluice"

// Settings docs/gitops.md suggests for an HTTPRoute that Sluice routes.
var (
	// fluxIgnoreWeights is a Kustomization's spec.ignore for the canary strategy: the
	// backendRefs of the rule that sends to the Service (rule 0 of userRoute).
	fluxIgnoreWeights = jsondiff.IgnoreRule{Paths: []string{"/spec/rules/0/backendRefs"},
		Selector: &jsondiff.Selector{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute", Name: "web"}}
	// fluxIgnoreRules is the spec.ignore for every strategy (A/B and session-affinity rules
	// are inserted before the user's, mirror adds a filter).
	fluxIgnoreRules = jsondiff.IgnoreRule{Paths: []string{"/spec/rules"},
		Selector: &jsondiff.Selector{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute", Name: "web"}}
	// argoJQ are an Argo CD Application's ignoreDifferences jqPathExpressions for the route.
	argoJQ = []string{
		`.spec.rules[].backendRefs`,
		`.spec.rules[] | select(.name // "" | startswith("sluice-ab-"))`,
		`.spec.rules[].filters[]? | select(.type == "RequestMirror")`,
	}
)

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

func (a *app) route() *unstructured.Unstructured {
	a.t.Helper()
	dyn, err := dynamic.NewForConfig(env.Cluster.RESTConfig())
	if err != nil {
		a.t.Fatal(err)
	}
	u, err := dyn.Resource(httpRoutes).Namespace(a.ns).Get(a.t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		a.t.Fatalf("get HTTPRoute: %v", err)
	}
	return u
}

func (a *app) observeRoute() routers.Observed {
	return gatewayapi.Observe(a.route().Object, routers.Target{Namespace: a.ns, Service: "web", Port: 80, Route: "web"})
}

// waitRouteWeighted waits until the route sends the canary a share.
func (a *app) waitRouteWeighted(timeout time.Duration) routers.Observed {
	a.t.Helper()
	var o routers.Observed
	a.poll(timeout, "the route sending the canary a share", func() (bool, string) {
		o = a.observeRoute()
		return o.Managed && o.Weight > 0, fmt.Sprintf("%+v", o)
	})
	return o
}

// object parses one YAML document and sets its namespace to the app's.
func (a *app) object(doc string) *unstructured.Unstructured {
	a.t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		a.t.Fatalf("parse %s: %v", doc, err)
	}
	u.SetNamespace(a.ns)
	return u
}

// wantNoKubectlDiff checks what a user (or a GitOps tool's diff) sees of the manifest at path:
// `kubectl diff` (client-side, three-way with the last applied configuration), `kubectl diff
// --server-side --force-conflicts`, and the object a `kubectl apply --server-side
// --force-conflicts --dry-run=server` would store, which must be the live object exactly. The
// conflicts are forced as Flux and Argo CD's server-side apply force them. kubectl's own
// bookkeeping is no difference: the field managers, and the last-applied-configuration
// annotation, which a server-side apply rewrites in its own serialization when the object was
// applied client-side.
func (a *app) wantNoKubectlDiff(what, path string) {
	a.t.Helper()
	for _, args := range [][]string{{"diff"}, {"diff", "--server-side", "--force-conflicts"}} {
		a.workerRace(what+": kubectl "+strings.Join(args, " "), func() string {
			out, stderr, err := a.tryKubectl(append(args, "-f", path)...)
			// kubectl diff exits 1 when it found differences, above 1 on an error.
			var exit *exec.ExitError
			if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1 || !onlyLastApplied(out)) {
				return fmt.Sprintf("%v\n%s%s", err, out, stderr)
			}
			return ""
		})
	}
	a.workerRace(what+": kubectl apply --server-side --dry-run=server", func() string {
		out, _ := a.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-o", "json", "-f", path)
		live, _ := a.kubectl("get", "-o", "json", "-f", path)
		dry, got := items(a.t, out), items(a.t, live)
		if len(dry) != len(got) {
			return fmt.Sprintf("%d objects from the dry run, %d live", len(dry), len(got))
		}
		var diffs []string
		for i := range dry {
			if d, l := comparable(dry[i]), comparable(got[i]); !reflect.DeepEqual(d, l) {
				diffs = append(diffs, fmt.Sprintf("%s/%s:\ndry run %s\nlive    %s", dry[i].GetKind(), dry[i].GetName(), mustJSON(d), mustJSON(l)))
			}
		}
		return strings.Join(diffs, "\n")
	})
}

// onlyLastApplied reports whether every changed line of a `kubectl diff` output is kubectl's
// last-applied-configuration annotation (or there is no change).
func onlyLastApplied(diff string) bool {
	for _, line := range strings.Split(diff, "\n") {
		if strings.HasPrefix(line, "+++") || strings.HasPrefix(line, "---") {
			continue
		}
		if (strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-")) && !strings.Contains(line, `{"apiVersion":`) {
			return false
		}
	}
	return true
}

// items decodes kubectl's JSON output: one object or a List.
func items(t *testing.T, out string) []*unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal([]byte(out), &u.Object); err != nil {
		t.Fatalf("decode kubectl output: %v\n%s", err, out)
	}
	if !u.IsList() {
		return []*unstructured.Unstructured{u}
	}
	list, err := u.ToList()
	if err != nil {
		t.Fatal(err)
	}
	var out2 []*unstructured.Unstructured
	for i := range list.Items {
		out2 = append(out2, &list.Items[i])
	}
	return out2
}

// comparable is an object without what a dry run or a read legitimately changes: the
// field-manager bookkeeping, the resourceVersion and the status (the Deployment controller's).
func comparable(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(c.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(c.Object, "status")
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations", corev1.LastAppliedConfigAnnotation)
	return c.Object
}

// Acceptance 3, replicas router: during a release, `kubectl diff` and a server-side dry-run of
// the Git manifest (Deployment and Service) show no difference.
func TestKubectlDiffDuringAReplicasRelease(t *testing.T) {
	t.Parallel()
	a := newApp(t, "web", annotations(passing, spec.AnnStepWeights, "10,20,30,40,50,60,70,80"))
	svc := mustJSON(a.service())
	a.kubectl("apply", "-f", a.file("v1.yaml", a.manifest("demo:v1", svc)))
	a.waitAvailable(60 * time.Second)
	v2 := a.file("v2.yaml", a.manifest("demo:v2", svc))
	if _, stderr := a.kubectl("apply", "-f", v2); !strings.Contains(stderr, "sluice: held app=demo:v2") {
		t.Fatalf("kubectl apply of v2 printed %q, want the hold's warning", stderr)
	}
	a.waitFor(60*time.Second, "a weighted step", func(d *appsv1.Deployment) (bool, string) {
		st := stateOf(t, d)
		return st.Phase == spec.PhaseProgressing && st.Weight > 0, fmt.Sprintf("phase=%s weight=%d", st.Phase, st.Weight)
	})
	a.wantNoKubectlDiff("during the release", v2)
	if st := stateOf(t, a.get()); st.Phase != spec.PhaseProgressing {
		t.Errorf("the release is %s after the diffs, want still Progressing", st.Phase)
	}
}

// Acceptance 3, routing object (Gateway API) under Flux: during a release the Deployment and the
// Service show no drift; the HTTPRoute drifts only in the backendRefs Sluice owns, and with the
// Kustomization's spec.ignore docs/gitops.md suggests, Flux's drift detection is empty and its
// reconciliation leaves Sluice's weights alone. After the release the route is the user's again.
func TestGatewayAPIRouteUnderFlux(t *testing.T) {
	t.Parallel()
	a := newApp(t, "web", annotations(passing, spec.AnnRouter, spec.RouterGatewayAPI, spec.AnnRoute, "web",
		spec.AnnStepWeights, "20,40,60"))
	f := newFlux(t)
	svc := mustJSON(a.service())
	v1, v2 := a.manifest("demo:v1", svc, userRoute), a.manifest("demo:v2", svc, userRoute)
	wantActions(t, "first apply", f.apply(v1), ssa.CreatedAction)
	a.waitAvailable(60 * time.Second)
	got := f.apply(v2)
	if d := "Deployment/" + a.ns + "/web"; got[d] != ssa.ConfiguredAction {
		t.Fatalf("apply of v2: %v, want %s configured", got, d)
	}
	o := a.waitRouteWeighted(60 * time.Second)
	t.Logf("route during the release: %+v", o)

	// Without ignore rules, Flux's drift detection finds the route, and only its rule 0's
	// backendRefs.
	routeSubject := "HTTPRoute/" + a.ns + "/web"
	a.workerRace("flux diff without ignore rules", func() string {
		actions, drifted := f.diff(v2)
		var out []string
		for subject, action := range actions {
			if want := map[bool]ssa.Action{true: ssa.ConfiguredAction, false: ssa.UnchangedAction}[subject == routeSubject]; action != want {
				out = append(out, fmt.Sprintf("%s %s, want %s", subject, action, want))
			}
		}
		if objs, ok := drifted[routeSubject]; ok {
			live, merged := objs[0].DeepCopy(), objs[1].DeepCopy()
			for _, u := range []*unstructured.Unstructured{live, merged} {
				rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
				delete(rules[0].(map[string]any), "backendRefs")
				_ = unstructured.SetNestedSlice(u.Object, rules, "spec", "rules")
			}
			if !reflect.DeepEqual(live.Object["spec"], merged.Object["spec"]) {
				out = append(out, fmt.Sprintf("the route drifted beyond rule 0's backendRefs:\nlive   %s\nmerged %s", mustJSON(objs[0].Object["spec"]), mustJSON(objs[1].Object["spec"])))
			}
		}
		return strings.Join(out, "; ")
	})

	for _, rule := range []jsondiff.IgnoreRule{fluxIgnoreWeights, fluxIgnoreRules} {
		f.ignore = []jsondiff.IgnoreRule{rule}
		at := fmt.Sprintf("ignoring %v", rule.Paths)
		a.workerRace("flux diff "+at, func() string { return f.drift(v2) })
		a.workerRace("flux reconcile "+at, func() string { return notAll(f.apply(v2), ssa.UnchangedAction) })
		if o := a.observeRoute(); !o.Managed || o.Weight == 0 {
			t.Errorf("%s: after Flux's reconcile the route is %+v, want Sluice's split kept", at, o)
		}
	}
	for _, name := range []string{spec.StableServiceName("web"), spec.CanaryServiceName("web")} {
		s, err := env.Client.CoreV1().Services(a.ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("Service %s: %v", name, err)
			continue
		}
		if owner := metav1.GetControllerOf(s); owner == nil || owner.Name != "web" || owner.Kind != "Deployment" {
			t.Errorf("Service %s is controlled by %v, want the Deployment web", name, owner)
		}
		for k := range s.Labels {
			if strings.HasPrefix(k, fluxGroup) {
				t.Errorf("Service %s carries Flux's label %s", name, k)
			}
		}
	}

	// After the release the route is exactly the user's: no drift even without ignore rules.
	a.waitPhase(2*time.Minute, spec.PhaseSucceeded)
	a.waitAvailable(60 * time.Second)
	f.ignore = nil
	f.wantNoDrift("after the release", v2)
	wantActions(t, "reconcile after the release", f.apply(v2), ssa.UnchangedAction)
}

// Acceptance 3, routing object (Gateway API) under kubectl and Argo CD, with session affinity
// (Sluice adds a rule as well as weights): during a release `kubectl diff` of the Deployment and
// Service is empty; the route's diff shows Sluice's fields, and a server-side apply of it
// conflicts with Sluice's field manager. With Argo CD's ignoreDifferences that docs/gitops.md
// suggests — managedFieldsManagers [sluice], or the jqPathExpressions — applied as Argo CD
// applies them (the same structured-merge-diff intersection of the manager's managedFields; the
// jq expressions run by gojq, the library Argo CD evaluates them with), every field of the Git
// route equals the live one. Argo CD itself is not run.
func TestGatewayAPIRouteUnderKubectlAndArgoCD(t *testing.T) {
	t.Parallel()
	a := newApp(t, "web", annotations(passing, spec.AnnRouter, spec.RouterGatewayAPI, spec.AnnRoute, "web",
		spec.AnnStepWeights, "20,40,60", spec.AnnSessionAffinity, "canary-session"))
	svc := mustJSON(a.service())
	routeDoc := a.object(userRoute)
	routeFile := a.file("route.json", []byte(mustJSON(routeDoc.Object)))
	a.kubectl("apply", "-f", a.file("v1.yaml", a.manifest("demo:v1", svc)), "-f", routeFile)
	a.waitAvailable(60 * time.Second)
	v2 := a.file("v2.yaml", a.manifest("demo:v2", svc))
	a.kubectl("apply", "-f", v2, "-f", routeFile)
	o := a.waitRouteWeighted(60 * time.Second)
	if o.MatchRules == 0 || !o.Sticky {
		t.Errorf("route during the release %+v, want the session-affinity rule and cookie", o)
	}

	a.wantNoKubectlDiff("Deployment and Service during the release", v2)

	// The route: kubectl diff shows Sluice's split, and a server-side apply names Sluice as the
	// owner it would take the rules from.
	out, _, err := a.tryKubectl("diff", "-f", routeFile)
	if err == nil || !strings.Contains(out, spec.CanaryServiceName("web")) {
		t.Errorf("kubectl diff of the route during the release: %v\n%s", err, out)
	}
	t.Logf("kubectl diff of the route during the release:\n%s", out)
	_, stderr, err := a.tryKubectl("apply", "--server-side", "--dry-run=server", "-f", routeFile)
	if err == nil || !strings.Contains(stderr, `conflicts with "`+sluiceManager+`"`) || !strings.Contains(stderr, ".spec.rules") {
		t.Errorf("server-side apply of the route during the release: %v\n%s", err, stderr)
	}

	live := a.route()
	if why := gitFieldsDiffer(routeDoc.Object, live.Object); why == "" {
		t.Fatal("the Git route equals the live one during the release: nothing for an ignore setting to prove")
	}
	ownsRules(t, live, "during the release")
	normLive, normGit := argoManagedFieldsNormalize(t, live, routeDoc, sluiceManager)
	if why := gitFieldsDiffer(normGit, normLive); why != "" {
		t.Errorf("Argo CD managedFieldsManagers [%s]: the route still differs: %s", sluiceManager, why)
	}
	jqLive, jqGit := argoJQNormalize(t, live.Object, argoJQ), argoJQNormalize(t, routeDoc.Object, argoJQ)
	if why := gitFieldsDiffer(jqGit, jqLive); why != "" {
		t.Errorf("Argo CD jqPathExpressions %q: the route still differs: %s", argoJQ, why)
	}

	// After the release: the route is the user's again; Sluice's manager still owns spec.rules
	// (what managedFieldsManagers would keep ignoring).
	a.waitPhase(2*time.Minute, spec.PhaseSucceeded)
	a.poll(30*time.Second, "the route as the user wrote it", func() (bool, string) {
		o := a.observeRoute()
		return !o.Managed && o.MatchRules == 0, fmt.Sprintf("%+v", o)
	})
	a.wantNoKubectlDiff("route after the release", routeFile)
	ownsRules(t, a.route(), "after the release")
}

// ownsRules checks that Sluice's field manager owns the route's spec.rules (an atomic list:
// Sluice's update of any part of it takes the whole list).
func ownsRules(t *testing.T, route *unstructured.Unstructured, when string) {
	t.Helper()
	for _, mf := range route.GetManagedFields() {
		if mf.Manager != sluiceManager {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(mf.FieldsV1.GetRawReader()); err != nil {
			t.Fatal(err)
		}
		if set.Has(fieldpath.MakePathOrDie("spec", "rules")) {
			t.Logf("%s: field manager %s (%s) owns .spec.rules", when, mf.Manager, mf.Operation)
			return
		}
	}
	t.Errorf("%s: field manager %s does not own .spec.rules: %s", when, sluiceManager, mustJSON(route.GetManagedFields()))
}

// argoManagedFieldsNormalize is what Argo CD does with ignoreDifferences.managedFieldsManagers
// (util/argo/managedfields.Normalize): the fields where live and Git differ and that the
// manager owns in the live object's managedFields are removed from both.
func argoManagedFieldsNormalize(t *testing.T, live, git *unstructured.Unstructured, manager string) (map[string]any, map[string]any) {
	t.Helper()
	pt := &typed.DeducedParseableType
	tl, err := pt.FromUnstructured(live.Object)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := pt.FromUnstructured(git.Object)
	if err != nil {
		t.Fatal(err)
	}
	cmp, err := tl.Compare(tg)
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range live.GetManagedFields() {
		if mf.Manager != manager {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(mf.FieldsV1.GetRawReader()); err != nil {
			t.Fatal(err)
		}
		if both := set.Intersection(cmp.Modified); !both.Empty() {
			tl, tg = tl.RemoveItems(both), tg.RemoveItems(both)
		}
	}
	l, _ := tl.AsValue().Unstructured().(map[string]any)
	g, _ := tg.AsValue().Unstructured().(map[string]any)
	return l, g
}

// argoJQNormalize is what Argo CD does with ignoreDifferences.jqPathExpressions
// (util/argo/normalizers): each expression runs as del(EXPR) over the object.
func argoJQNormalize(t *testing.T, obj map[string]any, exprs []string) map[string]any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(mustJSON(obj)), &v); err != nil {
		t.Fatal(err)
	}
	for _, e := range exprs {
		q, err := gojq.Parse("del(" + e + ")")
		if err != nil {
			t.Fatalf("jq %s: %v", e, err)
		}
		code, err := gojq.Compile(q)
		if err != nil {
			t.Fatalf("jq %s: %v", e, err)
		}
		out, ok := code.Run(v).Next()
		if !ok {
			t.Fatalf("jq %s returned nothing", e)
		}
		if err, isErr := out.(error); isErr {
			t.Fatalf("jq %s: %v", e, err)
		}
		v = out
	}
	m, _ := v.(map[string]any)
	return m
}

// gitFieldsDiffer says where a field of the Git object's spec differs from the live object's
// ("" when every one equals): fields the API server defaulted, or that are missing from Git,
// are not differences (Argo CD compares what Git says).
func gitFieldsDiffer(git, live map[string]any) string {
	return subset(".spec", git["spec"], live["spec"])
}

func subset(path string, git, live any) string {
	switch g := git.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return path + ": not an object live"
		}
		for k, v := range g {
			if why := subset(path+"."+k, v, l[k]); why != "" {
				return why
			}
		}
		return ""
	case []any:
		l, ok := live.([]any)
		if !ok || len(l) != len(g) {
			return fmt.Sprintf("%s: %d items in Git, live %s", path, len(g), mustJSON(live))
		}
		for i := range g {
			if why := subset(fmt.Sprintf("%s[%d]", path, i), g[i], l[i]); why != "" {
				return why
			}
		}
		return ""
	default:
		if mustJSON(git) != mustJSON(live) {
			return fmt.Sprintf("%s: %s in Git, %s live", path, mustJSON(git), mustJSON(live))
		}
		return ""
	}
}
