package install

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
)

// The namespace the docs install into, and the watched namespaces of the scoped renders.
const (
	sluiceNS = "sluice-system"
	teamA    = "team-a"
	teamB    = "team-b"
)

// certManagerModule is the cert-manager module go.mod requires: its CRDs (deploy/crds in the
// module) are installed for the dry-run of the Issuer and Certificate, and its Go API types
// check the rendered objects.
const certManagerModule = "github.com/cert-manager/cert-manager"

// Acceptance 1: `helm lint` is clean for the default values and every mode the tests render.
func TestHelmLint(t *testing.T) {
	for name, sets := range map[string][]string{
		"default values":     nil,
		"cert-manager":       {"certManager.enabled=true"},
		"watched namespaces": {"watchNamespaces={" + teamA + "," + teamB + "}"},
		"everything on": {"namespace.create=true", "metrics.serviceMonitor.enabled=true",
			"secrets.namespaces={monitoring}", "secrets.names={datadog}", "routers={replicas,istio}",
			"loadtester.enabled=true", "loadtester.allowedNamespaces={test}", "loadtester.namespaceRegexp=^team-",
			"controller.defaultAlerts[0].name=ops", "controller.defaultAlerts[0].severity=error",
			"controller.defaultAlerts[0].providerRef.name=ops-slack", "controller.defaultAlerts[0].providerRef.namespace=monitoring"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir(), "--namespace", sluiceNS}
			for _, s := range sets {
				args = append(args, "--set", s)
			}
			out, stderr, err := tryHelm(t, args...)
			if err != nil || !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint: %v\n%s%s", err, out, stderr)
			}
			if strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Errorf("helm lint is not clean:\n%s", out)
			}
		})
	}
	// The schema refuses what the controller would refuse.
	for _, bad := range []string{"webhook.failurePolicy=Sometimes", "routers={replicas,envoy}", "certs.validity=1year", "watchNamespaces={Team_A}", "loadtester.timeout=forever",
		// A default alert names its AlertProvider's namespace (there is no Deployment's).
		"controller.defaultAlerts[0].name=ops,controller.defaultAlerts[0].providerRef.name=p", "controller.alertDedupeWindow=hourly"} {
		if out, stderr, err := tryHelm(t, "lint", chartDir(), "--set", bad); err == nil {
			t.Errorf("helm lint --set %s passed, want a schema error:\n%s", bad, out)
		} else if !strings.Contains(out+stderr, "schema") {
			t.Errorf("helm lint --set %s failed without naming the schema:\n%s%s", bad, out, stderr)
		}
	}
}

// Acceptance 1: the chart (default values, cert-manager on, watched namespaces set) and the
// kustomize base are accepted by the real API server in a server-side dry-run.
func TestRendersPassServerSideDryRun(t *testing.T) {
	admin := adminClient(t)
	for _, ns := range []string{sluiceNS, teamA, teamB} {
		createNamespace(t, admin, ns)
	}
	installCertManagerCRDs(t)
	installServiceMonitorCRD(t)

	for name, r := range map[string]rendered{
		"chart, default values": renderChart(t, "sluice", sluiceNS),
		"chart, cert-manager":   renderChart(t, "sluice", sluiceNS, "certManager.enabled=true"),
		"chart, watched namespaces": renderChart(t, "sluice", sluiceNS,
			"watchNamespaces={"+teamA+","+teamB+"}"),
		"kustomize base": renderKustomize(t),
		// The optional objects and the other scopes too.
		"chart, every option": renderChart(t, "sluice", sluiceNS, "namespace.create=true",
			"metrics.serviceMonitor.enabled=true", "secrets.namespaces={"+teamA+"}", "secrets.names={datadog}",
			"webhook.excludeNamespaces={legacy}", "podAntiAffinity=hard", "routers={replicas,istio}", "dashboard.enabled=true",
			"loadtester.enabled=true", "controller.defaultAlerts[0].name=ops", "controller.defaultAlerts[0].providerRef.name=ops-slack",
			"controller.defaultAlerts[0].providerRef.namespace="+teamB),
	} {
		t.Run(name, func(t *testing.T) {
			dryRun(t, strings.NewReplacer(" ", "-", ",", "").Replace(name), r.raw)
		})
	}
}

// Acceptance 1: the chart and the kustomize base render the same kinds (the base is the
// chart's render with default values plus its Namespace: `kubectl apply -k` cannot create it).
func TestChartAndKustomizeRenderTheSameKinds(t *testing.T) {
	chartKinds := append(renderChart(t, "sluice", sluiceNS).kinds(), "Namespace")
	slices.Sort(chartKinds)
	if diff := cmp.Diff(chartKinds, renderKustomize(t).kinds()); diff != "" {
		t.Errorf("kinds differ (-chart +kustomize):\n%s", diff)
	}
	want := []string{"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment",
		"FlowSchema", "MutatingWebhookConfiguration", "Namespace", "PodDisruptionBudget", "Role", "RoleBinding",
		"Service", "ServiceAccount", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
	if diff := cmp.Diff(want, chartKinds); diff != "" {
		t.Errorf("chart kinds (-want +got):\n%s", diff)
	}
}

// The e2e stack's FlowSchema (stack.LeaseFlowSchema, for its user) is the chart's, for the
// chart's ServiceAccount: the benches run with what an install gets.
func TestStackFlowSchemaIsTheChart(t *testing.T) {
	r := renderChart(t, "sluice", sluiceNS)
	got := into[flowcontrolv1.FlowSchema](t, r.one(t, "FlowSchema", ""))
	sa := r.one(t, "ServiceAccount", "").GetName()
	want := stack.LeaseFlowSchema(flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindServiceAccount,
		ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Name: sa, Namespace: sluiceNS}}, sluiceNS)
	if got.Name != want.Name {
		t.Errorf("chart's FlowSchema is %s, the stack's %s", got.Name, want.Name)
	}
	if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
		t.Errorf("the stack's FlowSchema differs from the chart's (-stack +chart):\n%s", diff)
	}
}

// The kustomize base is the chart's render (default values, namespace.create=true) without
// Helm's own labels, so both install the same objects. `make kustomize` (this test with
// -update) regenerates it after a chart change.
func TestKustomizeBaseIsTheChartRender(t *testing.T) {
	want := kustomizeBase(t, renderChart(t, "sluice", sluiceNS, "namespace.create=true"))
	path := filepath.Join(repo, "deploy", "kustomize", "sluice.yaml")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("deploy/kustomize/sluice.yaml is not the chart's render; run `make kustomize` (-chart +file):\n%s", diff)
	}
	// And kustomize renders the base unchanged.
	k := renderKustomize(t)
	if diff := cmp.Diff(kustomizeBase(t, k), want); diff != "" {
		t.Errorf("kubectl kustomize changes the base (-kustomize +file):\n%s", diff)
	}
}

// kustomizeBase renders objects as the kustomize base file: Helm's own labels and annotations
// dropped, keys sorted, one document per object.
func kustomizeBase(t *testing.T, r rendered) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("# Generated from deploy/helm/sluice with default values (and its Namespace) by\n" +
		"# `make kustomize`; do not edit: change the chart, or patch this base in an overlay.\n")
	// In a canonical order (kustomize reorders by kind when it renders).
	objects := slices.Clone(r.objects)
	slices.SortStableFunc(objects, func(a, b *unstructured.Unstructured) int {
		return strings.Compare(a.GetKind()+"/"+a.GetNamespace()+"/"+a.GetName(), b.GetKind()+"/"+b.GetNamespace()+"/"+b.GetName())
	})
	for _, o := range objects {
		o = o.DeepCopy()
		labels := o.GetLabels()
		delete(labels, "helm.sh/chart")
		delete(labels, "app.kubernetes.io/managed-by")
		o.SetLabels(labels)
		ann := o.GetAnnotations()
		for k := range ann {
			if strings.HasPrefix(k, "helm.sh/") {
				delete(ann, k)
			}
		}
		if len(ann) == 0 {
			ann = nil
		}
		o.SetAnnotations(ann)
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes()
}

// The chart's copies of the CRDs (MetricTemplate, AlertProvider) and of the Grafana dashboard
// are the files in deploy/ (`make chart-sync` copies them), and the dashboard ConfigMap carries
// that JSON.
func TestChartCopiesAreCurrent(t *testing.T) {
	rendered := renderChart(t, "sluice", sluiceNS)
	for _, name := range []string{"metrictemplates.sluice.dev", "alertproviders.sluice.dev"} {
		src, err := os.ReadFile(filepath.Join(repo, "deploy", "crds", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		cp, err := os.ReadFile(filepath.Join(chartDir(), "files", name+".yaml"))
		if err != nil || !bytes.Equal(src, cp) {
			t.Errorf("deploy/helm/sluice/files/%s.yaml differs from deploy/crds (run `make chart-sync`): %v", name, err)
		}
		crd := rendered.one(t, "CustomResourceDefinition", name)
		var want map[string]any
		if err := yaml.Unmarshal(src, &want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want["spec"], crd.Object["spec"]); diff != "" {
			t.Errorf("rendered CRD %s spec differs from deploy/crds (-want +got):\n%s", name, diff)
		}
		if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("the CRD %s is not kept on uninstall: annotations %v", name, crd.GetAnnotations())
		}
	}

	dash, srcErr := os.ReadFile(filepath.Join(repo, "deploy", "dashboards", "sluice.json"))
	chartDash, cpErr := os.ReadFile(filepath.Join(chartDir(), "files", "dashboards", "sluice.json"))
	switch {
	case srcErr != nil && cpErr != nil:
		// No dashboard yet: enabling it must fail loudly, not render an empty ConfigMap.
		_, stderr, err := tryHelm(t, "template", "sluice", chartDir(), "--set", "dashboard.enabled=true")
		if err == nil || !strings.Contains(stderr, "files/dashboards/sluice.json") {
			t.Errorf("dashboard.enabled without a dashboard: err %v, stderr %s", err, stderr)
		}
	case srcErr != nil || cpErr != nil || !bytes.Equal(dash, chartDash):
		t.Errorf("deploy/helm/sluice/files/dashboards/sluice.json differs from deploy/dashboards/sluice.json (run `make chart-sync`): %v %v", srcErr, cpErr)
	default:
		cm := into[corev1.ConfigMap](t, renderChart(t, "sluice", sluiceNS, "dashboard.enabled=true").one(t, "ConfigMap", ""))
		if cm.Data["sluice.json"] != strings.TrimSuffix(string(dash), "\n") || !json.Valid([]byte(cm.Data["sluice.json"])) {
			t.Errorf("dashboard ConfigMap does not carry deploy/dashboards/sluice.json")
		}
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("dashboard ConfigMap labels %v, want grafana_dashboard=1 for Grafana's sidecar", cm.Labels)
		}
	}
}

// The chart version and the image tag follow the release.
func TestChartVersionFollowsTheRelease(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir(), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Version, AppVersion string }
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.Version == "" || c.Version != c.AppVersion {
		t.Errorf("Chart.yaml version %q, appVersion %q: want both the release", c.Version, c.AppVersion)
	}
	d := renderChart(t, "sluice", sluiceNS).deployment(t)
	if got, want := d.Spec.Template.Spec.Containers[0].Image, "ghcr.io/sluice-dev/sluice:"+c.AppVersion; got != want {
		t.Errorf("image %s, want %s", got, want)
	}
}

// The Deployment, Service, PodDisruptionBudget and webhook configuration with default values:
// the operating requirements of SPEC §8 and the flag contract with the controller.
func TestChartDefaults(t *testing.T) {
	r := renderChart(t, "sluice", sluiceNS)
	d := r.deployment(t)
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	if pod.ServiceAccountName != "sluice" {
		t.Errorf("serviceAccountName %q", pod.ServiceAccountName)
	}
	aa := pod.Affinity
	if aa == nil || aa.PodAntiAffinity == nil || len(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("pod anti-affinity %s", asYAML(aa))
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes: liveness %s readiness %s", asYAML(c.LivenessProbe), asYAML(c.ReadinessProbe))
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("no %s limit", res)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %s", asYAML(sc))
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %s", asYAML(psc))
	}

	// The flag contract: self-managed TLS names this chart's Secret, webhook configuration and
	// Service; the identity the webhook lets through is this ServiceAccount.
	mwc := into[admissionregistrationv1.MutatingWebhookConfiguration](t, r.one(t, "MutatingWebhookConfiguration", ""))
	svc := r.one(t, "Service", "sluice-webhook")
	flags := args(t, d)
	for flag, want := range map[string]string{
		"namespace":                 "$(POD_NAMESPACE)",
		"controller-identity":       "system:serviceaccount:sluice-system:sluice",
		"cert-secret":               "sluice-webhook-tls",
		"webhook-configuration":     mwc.Name,
		"webhook-service":           svc.GetName(),
		"cert-validity":             "8760h",
		"cert-dir":                  "/tmp/k8s-webhook-server/serving-certs",
		"health-probe-bind-address": ":8081",
		"metrics-bind-address":      ":8080",
		"webhook-port":              "9443",
		"leader-elect":              "true",
		"leader-election-namespace": "$(POD_NAMESPACE)",
		"default-router":            "replicas",
		"excluded-namespaces":       "kube-system,sluice-system",
		// Off unless asked for: a template elsewhere, or the controller's own cloud identity,
		// widens what a Deployment's annotations can reach.
		"allow-cross-namespace-templates": "false",
		"allow-controller-cloud-identity": "false",
		"hook-concurrency":                "64",
		"alert-dedupe-window":             "1h",
	} {
		if got, ok := flags[flag]; !ok || got != want {
			t.Errorf("--%s=%q (rendered: %v), want %q", flag, got, ok, want)
		}
	}
	if _, ok := flags["watch-namespaces"]; ok {
		t.Error("--watch-namespaces rendered without watchNamespaces")
	}
	if _, ok := flags["default-alerts"]; ok {
		t.Error("--default-alerts rendered without controller.defaultAlerts")
	}
	if env := c.Env; len(env) != 1 || env[0].Name != "POD_NAMESPACE" || env[0].ValueFrom == nil ||
		env[0].ValueFrom.FieldRef == nil || env[0].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("env %s, want POD_NAMESPACE from the downward API", asYAML(env))
	}
	if d.Namespace != sluiceNS || pod.ServiceAccountName != "sluice" {
		t.Errorf("Deployment in %s as %s", d.Namespace, pod.ServiceAccountName)
	}

	// The write guard matches exactly the controller's identity.
	vap := into[admissionregistrationv1.ValidatingAdmissionPolicy](t, r.one(t, "ValidatingAdmissionPolicy", ""))
	if len(vap.Spec.MatchConditions) != 1 || vap.Spec.MatchConditions[0].Expression != `request.userInfo.username == "`+flags["controller-identity"]+`"` {
		t.Errorf("write guard matchConditions %s, want the controller identity %s", asYAML(vap.Spec.MatchConditions), flags["controller-identity"])
	}
	vapb := into[admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, r.one(t, "ValidatingAdmissionPolicyBinding", ""))
	if vapb.Spec.PolicyName != vap.Name || !slices.Equal(vapb.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) {
		t.Errorf("write guard binding %s", asYAML(vapb.Spec))
	}

	pdb := into[policyv1.PodDisruptionBudget](t, r.one(t, "PodDisruptionBudget", ""))
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 ||
		!cmp.Equal(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget %s", asYAML(pdb.Spec))
	}

	// The webhook configuration is deploy/webhook.yaml's (which the e2e suite runs), with the
	// chart's Service, and no caBundle: the controller injects it.
	raw, err := os.ReadFile(filepath.Join(repo, "deploy", "webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ref admissionregistrationv1.MutatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(mwc.Webhooks) != 1 {
		t.Fatalf("webhooks: %s", asYAML(mwc.Webhooks))
	}
	wh := mwc.Webhooks[0]
	if wh.ClientConfig.CABundle != nil || mwc.Annotations[cmapi.WantInjectAnnotation] != "" {
		t.Errorf("the chart renders a caBundle or a cert-manager injection without cert-manager: %s", asYAML(mwc))
	}
	if s := wh.ClientConfig.Service; s == nil || s.Name != svc.GetName() || s.Namespace != sluiceNS || s.Path == nil ||
		*s.Path != *ref.Webhooks[0].ClientConfig.Service.Path || s.Port == nil || *s.Port != 443 {
		t.Errorf("clientConfig %s", asYAML(wh.ClientConfig))
	}
	wh.ClientConfig = ref.Webhooks[0].ClientConfig
	if diff := cmp.Diff(ref.Webhooks[0], wh); diff != "" {
		t.Errorf("webhook differs from deploy/webhook.yaml (-deploy +chart):\n%s", diff)
	}

	// Nothing renders a certificate or key.
	if len(r.all("Secret")) > 0 || bytes.Contains(r.raw, []byte("BEGIN ")) {
		t.Errorf("the chart renders key material: Secrets %d", len(r.all("Secret")))
	}
}

// failurePolicy and timeout are values; excluded namespaces add to kube-system and Sluice's own.
func TestChartWebhookValues(t *testing.T) {
	r := renderChart(t, "sluice", "platform", "webhook.failurePolicy=Ignore", "webhook.timeoutSeconds=3",
		"webhook.excludeNamespaces={legacy}")
	wh := into[admissionregistrationv1.MutatingWebhookConfiguration](t, r.one(t, "MutatingWebhookConfiguration", "")).Webhooks[0]
	if *wh.FailurePolicy != admissionregistrationv1.Ignore || *wh.TimeoutSeconds != 3 {
		t.Errorf("failurePolicy %s timeout %d", *wh.FailurePolicy, *wh.TimeoutSeconds)
	}
	want := []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
		Values: []string{"kube-system", "platform", "legacy"}}}
	if diff := cmp.Diff(want, wh.NamespaceSelector.MatchExpressions); diff != "" {
		t.Errorf("namespaceSelector (-want +got):\n%s", diff)
	}
	// The controller reports opted-in Deployments the webhook never sees: the same list.
	if got := args(t, r.deployment(t))["excluded-namespaces"]; got != strings.Join(want[0].Values, ",") {
		t.Errorf("--excluded-namespaces=%s, want the namespaceSelector's %v", got, want[0].Values)
	}
}

// With cert-manager: an Issuer and a Certificate (checked as cert-manager's own API types), the
// CA injected by cert-manager's annotation, the Secret mounted, and the controller in files mode.
func TestChartCertManager(t *testing.T) {
	r := renderChart(t, "sluice", sluiceNS, "certManager.enabled=true")
	issuer := into[cmapi.Issuer](t, r.one(t, "Issuer", ""))
	cert := into[cmapi.Certificate](t, r.one(t, "Certificate", ""))
	mwc := into[admissionregistrationv1.MutatingWebhookConfiguration](t, r.one(t, "MutatingWebhookConfiguration", ""))
	d := r.deployment(t)
	svc := r.one(t, "Service", "sluice-webhook").GetName()

	if issuer.Spec.SelfSigned == nil || issuer.Namespace != sluiceNS {
		t.Errorf("Issuer %s", asYAML(issuer))
	}
	if ref := cert.Spec.IssuerRef; ref.Name != issuer.Name || ref.Kind != cmapi.IssuerKind || ref.Group != "cert-manager.io" {
		t.Errorf("Certificate issuerRef %+v, want the rendered Issuer %s", ref, issuer.Name)
	}
	wantDNS := []string{svc + "." + sluiceNS + ".svc", svc + "." + sluiceNS + ".svc.cluster.local"}
	if !slices.Equal(cert.Spec.DNSNames, wantDNS) {
		t.Errorf("dnsNames %v, want %v", cert.Spec.DNSNames, wantDNS)
	}
	if cert.Spec.Duration == nil || cert.Spec.Duration.Duration != 8760*time.Hour ||
		cert.Spec.RenewBefore == nil || cert.Spec.RenewBefore.Duration != 2920*time.Hour {
		t.Errorf("duration %v renewBefore %v", cert.Spec.Duration, cert.Spec.RenewBefore)
	}
	if pk := cert.Spec.PrivateKey; pk == nil || pk.RotationPolicy != cmapi.RotationPolicyAlways {
		t.Errorf("privateKey %s: a renewal must rotate the key", asYAML(pk))
	}
	if !slices.Contains(cert.Spec.Usages, cmapi.UsageServerAuth) {
		t.Errorf("usages %v", cert.Spec.Usages)
	}
	if got, want := mwc.Annotations[cmapi.WantInjectAnnotation], sluiceNS+"/"+cert.Name; got != want {
		t.Errorf("%s = %q, want %q", cmapi.WantInjectAnnotation, got, want)
	}
	if mwc.Webhooks[0].ClientConfig.CABundle != nil {
		t.Error("caBundle rendered")
	}
	var mounted string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "certs" && v.Secret != nil {
			mounted = v.Secret.SecretName
		}
	}
	if mounted != cert.Spec.SecretName {
		t.Errorf("the Deployment mounts Secret %q, the Certificate writes %q", mounted, cert.Spec.SecretName)
	}
	flags := args(t, d)
	for _, self := range []string{"cert-secret", "webhook-configuration", "webhook-service", "cert-validity"} {
		if _, ok := flags[self]; ok {
			t.Errorf("--%s rendered with cert-manager: the controller must only serve the files", self)
		}
	}
	if flags["cert-dir"] == "" {
		t.Error("no --cert-dir")
	}
	// cert-manager mode needs no permission on webhook configurations or Secrets of its own.
	for _, cr := range r.all("ClusterRole") {
		for _, rule := range into[rbacv1.ClusterRole](t, cr).Rules {
			if slices.Contains(rule.APIGroups, "admissionregistration.k8s.io") {
				t.Errorf("ClusterRole %s may write webhook configurations with cert-manager", cr.GetName())
			}
		}
	}

	// An existing issuer instead of the self-signed one.
	r = renderChart(t, "sluice", sluiceNS, "certManager.enabled=true", "certManager.issuerRef.name=corp-ca", "certManager.issuerRef.kind=ClusterIssuer")
	if len(r.all("Issuer")) != 0 {
		t.Error("Issuer rendered although issuerRef names one")
	}
	if ref := into[cmapi.Certificate](t, r.one(t, "Certificate", "")).Spec.IssuerRef; ref.Name != "corp-ca" || ref.Kind != cmapi.ClusterIssuerKind {
		t.Errorf("issuerRef %+v", ref)
	}
}

// Watched namespaces: the flag, the webhook only for them, and RBAC as Roles there.
func TestChartWatchedNamespaces(t *testing.T) {
	r := renderChart(t, "sluice", sluiceNS, "watchNamespaces={"+teamA+","+teamB+"}")
	if got := args(t, r.deployment(t))["watch-namespaces"]; got != teamA+","+teamB {
		t.Errorf("--watch-namespaces=%q", got)
	}
	wh := into[admissionregistrationv1.MutatingWebhookConfiguration](t, r.one(t, "MutatingWebhookConfiguration", "")).Webhooks[0]
	want := []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{teamA, teamB}}}
	if diff := cmp.Diff(want, wh.NamespaceSelector.MatchExpressions); diff != "" {
		t.Errorf("namespaceSelector (-want +got):\n%s", diff)
	}
	// No namespaced resource is granted cluster-wide.
	for _, o := range r.all("ClusterRole") {
		for _, rule := range into[rbacv1.ClusterRole](t, o).Rules {
			if !slices.Equal(rule.APIGroups, []string{"admissionregistration.k8s.io"}) {
				t.Errorf("ClusterRole %s grants %v %v cluster-wide with watched namespaces", o.GetName(), rule.APIGroups, rule.Resources)
			}
		}
	}
	for _, ns := range []string{teamA, teamB} {
		role := into[rbacv1.Role](t, roleIn(t, r, "Role", "sluice", ns))
		if !grants(role.Rules, "apps", "deployments", "patch") || !grants(role.Rules, "", "secrets", "get") ||
			!grants(role.Rules, "sluice.dev", "alertproviders", "get") {
			t.Errorf("Role in %s: %s", ns, asYAML(role.Rules))
		}
		rb := into[rbacv1.RoleBinding](t, roleIn(t, r, "RoleBinding", "sluice", ns))
		if rb.RoleRef.Name != role.Name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "sluice" || rb.Subjects[0].Namespace != sluiceNS {
			t.Errorf("RoleBinding in %s: %s", ns, asYAML(rb))
		}
	}
	// Sluice's own namespace and kube-system cannot be watched (the webhook never sees them).
	if _, stderr, err := tryHelm(t, "template", "sluice", chartDir(), "-n", sluiceNS, "--set", "watchNamespaces={"+sluiceNS+"}"); err == nil {
		t.Error("watching Sluice's own namespace rendered")
	} else if !strings.Contains(stderr, "never sent to the webhook") {
		t.Errorf("stderr %s", stderr)
	}
}

// Secrets: readable only where MetricTemplates live (secrets.namespaces) and, optionally,
// only by name.
func TestChartSecretsScope(t *testing.T) {
	r := renderChart(t, "sluice", sluiceNS, "secrets.namespaces={monitoring}", "secrets.names={datadog,newrelic}")
	main := into[rbacv1.ClusterRole](t, r.one(t, "ClusterRole", "sluice"))
	if grants(main.Rules, "", "secrets", "get") {
		t.Errorf("ClusterRole grants Secrets with secrets.namespaces set: %s", asYAML(main.Rules))
	}
	role := into[rbacv1.Role](t, roleIn(t, r, "Role", "sluice-secrets", "monitoring"))
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"datadog", "newrelic"}}}
	if diff := cmp.Diff(want, role.Rules); diff != "" {
		t.Errorf("secrets Role (-want +got):\n%s", diff)
	}
	rb := into[rbacv1.RoleBinding](t, roleIn(t, r, "RoleBinding", "sluice-secrets", "monitoring"))
	if rb.RoleRef.Name != "sluice-secrets" || rb.Subjects[0].Name != "sluice" {
		t.Errorf("RoleBinding %s", asYAML(rb))
	}
	// By name only, cluster-wide.
	main = into[rbacv1.ClusterRole](t, renderChart(t, "sluice", sluiceNS, "secrets.names={datadog}").one(t, "ClusterRole", "sluice"))
	if !slices.ContainsFunc(main.Rules, func(p rbacv1.PolicyRule) bool {
		return slices.Equal(p.Resources, []string{"secrets"}) && slices.Equal(p.ResourceNames, []string{"datadog"})
	}) {
		t.Errorf("secrets.names not applied: %s", asYAML(main.Rules))
	}
}

// controller.defaultAlerts: the flag carries the list as the controller parses it, and each
// namespace the list names gets a Role reading those AlertProviders (by name) and their
// Secrets — also when Sluice watches other namespaces only.
func TestChartDefaultAlerts(t *testing.T) {
	r := renderChart(t, "sluice", sluiceNS, "watchNamespaces={"+teamA+"}", "secrets.names={ops-webhook}",
		"controller.defaultAlerts[0].name=ops", "controller.defaultAlerts[0].severity=error",
		"controller.defaultAlerts[0].providerRef.name=ops-slack", "controller.defaultAlerts[0].providerRef.namespace="+sluiceNS,
		"controller.defaultAlerts[1].name=sre", "controller.defaultAlerts[1].providerRef.name=pager", "controller.defaultAlerts[1].providerRef.namespace="+sluiceNS,
		"controller.defaultAlerts[2].name=audit", "controller.defaultAlerts[2].providerRef.name=ops-slack", "controller.defaultAlerts[2].providerRef.namespace="+teamB)
	raw := args(t, r.deployment(t))["default-alerts"]
	as, errs := spec.ParseAlerts("--default-alerts", raw)
	if len(errs) > 0 {
		t.Fatalf("--default-alerts=%s does not parse: %v", raw, errs)
	}
	want := []spec.Alert{
		{Name: "ops", Severity: spec.SeverityError, ProviderRef: spec.AlertProviderRef{Name: "ops-slack", Namespace: sluiceNS}},
		{Name: "sre", ProviderRef: spec.AlertProviderRef{Name: "pager", Namespace: sluiceNS}},
		{Name: "audit", ProviderRef: spec.AlertProviderRef{Name: "ops-slack", Namespace: teamB}},
	}
	if diff := cmp.Diff(want, as); diff != "" {
		t.Errorf("--default-alerts (-want +got):\n%s", diff)
	}
	for ns, names := range map[string][]string{sluiceNS: {"ops-slack", "pager"}, teamB: {"ops-slack"}} {
		role := into[rbacv1.Role](t, roleIn(t, r, "Role", "sluice-alerts", ns))
		wantRules := []rbacv1.PolicyRule{
			{APIGroups: []string{"sluice.dev"}, Resources: []string{"alertproviders"}, Verbs: []string{"get"}, ResourceNames: names},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"ops-webhook"}},
		}
		if diff := cmp.Diff(wantRules, role.Rules); diff != "" {
			t.Errorf("Role sluice-alerts in %s (-want +got):\n%s", ns, diff)
		}
		rb := into[rbacv1.RoleBinding](t, roleIn(t, r, "RoleBinding", "sluice-alerts", ns))
		if rb.RoleRef.Name != "sluice-alerts" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "sluice" || rb.Subjects[0].Namespace != sluiceNS {
			t.Errorf("RoleBinding sluice-alerts in %s: %s", ns, asYAML(rb))
		}
	}
	if n := len(r.all("Role")); n != 5 { // team-a, the two alert namespaces, leader election, webhook TLS
		t.Errorf("%d Roles rendered, want 5", n)
	}
}

// Router RBAC: with every router the ClusterRole is deploy/rbac's (the one the e2e suite runs
// sluice under); with fewer, the other routers' APIs are not granted.
func TestChartRouterRBAC(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repo, "deploy", "rbac", "clusterrole.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The chart keeps the self-managed certificates' permission on its webhook configuration in
	// a ClusterRole of its own (it is cluster-scoped, also when namespaces are scoped).
	ref := into[rbacv1.ClusterRole](t, parseManifest(t, raw).one(t, "ClusterRole", "sluice"))
	ref.Rules = slices.DeleteFunc(ref.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, "admissionregistration.k8s.io")
	})
	r := renderChart(t, "sluice", sluiceNS)
	all := into[rbacv1.ClusterRole](t, r.one(t, "ClusterRole", "sluice"))
	if diff := cmp.Diff(ref.Rules, all.Rules); diff != "" {
		t.Errorf("ClusterRole with every router differs from deploy/rbac/clusterrole.yaml (-deploy +chart):\n%s", diff)
	}
	// … and that one is deploy/rbac's rule for the self-managed certificates.
	ref = into[rbacv1.ClusterRole](t, parseManifest(t, raw).one(t, "ClusterRole", "sluice"))
	ref.Rules = slices.DeleteFunc(ref.Rules, func(r rbacv1.PolicyRule) bool {
		return !slices.Contains(r.APIGroups, "admissionregistration.k8s.io")
	})
	ca := into[rbacv1.ClusterRole](t, r.one(t, "ClusterRole", "sluice-webhook-ca"))
	if diff := cmp.Diff(ref.Rules, ca.Rules); diff != "" {
		t.Errorf("webhook CA ClusterRole differs from deploy/rbac's rule (-deploy +chart):\n%s", diff)
	}
	wantCA := []rbacv1.PolicyRule{{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
		ResourceNames: []string{"sluice"}, Verbs: []string{"get", "patch"}}}
	if diff := cmp.Diff(wantCA, ca.Rules); diff != "" {
		t.Errorf("webhook CA ClusterRole (-want +got):\n%s", diff)
	}

	routerGroups := map[string][]string{
		"gatewayapi": {"gateway.networking.k8s.io"},
		"istio":      {"networking.istio.io"},
		"linkerd":    {"split.smi-spec.io", "gateway.networking.k8s.io"},
		"nginx":      {"networking.k8s.io"},
		"contour":    {"projectcontour.io"},
		"appmesh":    {"appmesh.k8s.aws"},
	}
	for _, routers := range [][]string{{"replicas"}, {"replicas", "istio"}, {"linkerd"}, {"nginx", "contour", "appmesh"}} {
		t.Run(strings.Join(routers, ","), func(t *testing.T) {
			sets := []string{"routers={" + strings.Join(routers, ",") + "}", "controller.defaultRouter=" + routers[0]}
			cr := into[rbacv1.ClusterRole](t, renderChart(t, "sluice", sluiceNS, sets...).one(t, "ClusterRole", "sluice"))
			var want []string
			for _, r := range routers {
				want = append(want, routerGroups[r]...)
			}
			for _, groups := range routerGroups {
				for _, g := range groups {
					if got := grants(cr.Rules, g, "", "get"); got != slices.Contains(want, g) {
						t.Errorf("API group %s granted: %v, want %v", g, got, !got)
					}
				}
			}
			// Every router may run an isolated canary (replicas: a blue/green release), behind
			// Services Sluice owns (TestChartGrantsEveryRouterRule checks each router's rules).
			if !grants(cr.Rules, "", "services", "create") {
				t.Errorf("may not create Services: an isolated canary's <svc>-stable and <svc>-canary could not be made")
			}
		})
	}
	// The default router must be one of them.
	if _, stderr, err := tryHelm(t, "template", "sluice", chartDir(), "--set", "routers={istio}"); err == nil || !strings.Contains(stderr, "defaultRouter") {
		t.Errorf("defaultRouter replicas with routers={istio}: err %v, stderr %s", err, stderr)
	}
}

// grants reports whether rules allow verb on resource (any resource when empty) of group.
func grants(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && (resource == "" || slices.Contains(r.Resources, resource)) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

func roleIn(t *testing.T, r rendered, kind, name, ns string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range r.all(kind) {
		if o.GetName() == name && o.GetNamespace() == ns {
			return o
		}
	}
	t.Fatalf("no %s %s in namespace %s", kind, name, ns)
	return nil
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(testCluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func createNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// installCertManagerCRDs applies the Issuer and Certificate CRDs that ship in the cert-manager
// module go.mod requires (deploy/crds), so that the API server can validate the chart's
// cert-manager objects. No cert-manager controller runs: nothing issues them.
func installCertManagerCRDs(t *testing.T) {
	t.Helper()
	dir := moduleDir(t, certManagerModule)
	for _, f := range []string{"cert-manager.io_issuers.yaml", "cert-manager.io_certificates.yaml"} {
		if _, stderr, err := testCluster.Kubectl(t.Context(), "apply", "--server-side", "-f", filepath.Join(dir, "deploy", "crds", f)); err != nil {
			t.Fatalf("apply cert-manager CRD %s: %v\n%s", f, err, stderr)
		}
	}
	if _, stderr, err := testCluster.Kubectl(t.Context(), "wait", "--for=condition=Established", "--timeout=60s",
		"crd/issuers.cert-manager.io", "crd/certificates.cert-manager.io"); err != nil {
		t.Fatalf("wait for the cert-manager CRDs: %v\n%s", err, stderr)
	}
}

// serviceMonitorModule publishes the Prometheus Operator's CRDs (example/prometheus-operator-crd).
const serviceMonitorModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

// installServiceMonitorCRD applies the ServiceMonitor CRD as the Prometheus Operator publishes
// it, for the dry-run of the chart's optional ServiceMonitor.
func installServiceMonitorCRD(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", serviceMonitorModule)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if err != nil || json.Unmarshal(out, &m) != nil || m.Dir == "" {
		t.Fatalf("download %s: %v %s", serviceMonitorModule, err, m.Error)
	}
	path := filepath.Join(m.Dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml")
	if _, stderr, err := testCluster.Kubectl(t.Context(), "apply", "--server-side", "-f", path); err != nil {
		t.Fatalf("apply the ServiceMonitor CRD: %v\n%s", err, stderr)
	}
	if _, stderr, err := testCluster.Kubectl(t.Context(), "wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com"); err != nil {
		t.Fatalf("wait for the ServiceMonitor CRD: %v\n%s", err, stderr)
	}
}

// moduleDir returns the directory of module at the version the repository's go.mod requires.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json", module)
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", module, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go list -m %s: no module dir in %s (%v)", module, out, err)
	}
	return m.Dir
}

// Every value in values.yaml is documented in the chart README and declared in the schema.
func TestEveryValueIsDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir(), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rawSchema, err := os.ReadFile(filepath.Join(chartDir(), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(rawSchema, &schema); err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, v map[string]any, schema map[string]any)
	walk = func(prefix string, v map[string]any, schema map[string]any) {
		props, _ := schema["properties"].(map[string]any)
		for k, child := range v {
			path := prefix + k
			sub, declared := props[k].(map[string]any)
			if !declared {
				t.Errorf("value %s is not in values.schema.json", path)
			}
			m, isMap := child.(map[string]any)
			if isMap && len(m) > 0 && sub["properties"] != nil {
				walk(path+".", m, sub)
				continue
			}
			if !bytes.Contains(readme, []byte("`"+path+"`")) {
				t.Errorf("value %s is not documented in deploy/helm/sluice/README.md", path)
			}
		}
	}
	walk("", values, schema)
}

// The optional ServiceMonitor selects the metrics Service (and only it) by its port name.
func TestChartServiceMonitor(t *testing.T) {
	r := renderChart(t, "sluice", sluiceNS, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=kps")
	sm := r.one(t, "ServiceMonitor", "")
	if sm.GetLabels()["release"] != "kps" {
		t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("endpoints %v", endpoints)
	}
	port, _ := endpoints[0].(map[string]any)["port"].(string)
	// Sluice's series carry the Deployment's namespace label: it must not become
	// exported_namespace, or the dashboard's queries find nothing.
	if honor, _ := endpoints[0].(map[string]any)["honorLabels"].(bool); !honor {
		t.Errorf("the ServiceMonitor endpoint does not honor sluice's labels: %v", endpoints[0])
	}
	var selected []string
	for _, o := range r.all("Service") {
		svc := into[corev1.Service](t, o)
		matches := true
		for k, v := range sel {
			matches = matches && svc.Labels[k] == v
		}
		if !matches {
			continue
		}
		selected = append(selected, svc.Name)
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == port }) {
			t.Errorf("Service %s has no port %q", svc.Name, port)
		}
	}
	if !slices.Equal(selected, []string{"sluice-metrics"}) {
		t.Errorf("the ServiceMonitor selects %v, want [sluice-metrics]", selected)
	}
}

// One replica gets no PodDisruptionBudget: it would block every drain of its node.
func TestChartSingleReplicaHasNoPodDisruptionBudget(t *testing.T) {
	if got := renderChart(t, "sluice", sluiceNS, "replicaCount=1").all("PodDisruptionBudget"); len(got) != 0 {
		t.Errorf("PodDisruptionBudget rendered for one replica")
	}
	if got := renderChart(t, "sluice", sluiceNS, "replicaCount=3").all("PodDisruptionBudget"); len(got) != 1 {
		t.Errorf("no PodDisruptionBudget for three replicas")
	}
}
