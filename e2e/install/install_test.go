package install

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/certs"
	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/demoapp"
	"github.com/sluice-dev/sluice/e2e/stack"
	"github.com/sluice-dev/sluice/rollout/spec"
	"github.com/sluice-dev/sluice/webhook"
)

// Acceptance 2: the chart installs onto the local control plane, and the controller runs
// under the chart's ServiceAccount, with the chart's flags, behind the chart's webhook
// configuration; a release is held and promoted, another rolled back; writes the chart's RBAC
// does not grant are forbidden.
//
// kwok pods run no process, so the chart's own pods serve nothing: the same sluice binary runs
// here as a local process, authenticated with a token the TokenRequest API issues for the
// chart's ServiceAccount, with the flags read from the installed Deployment (only the
// addresses, the certificate directory and Prometheus's URL are replaced by local ones, and
// --webhook-host, --cert-extra-sans and --kubeconfig added), and the installed webhook
// configuration's clientConfig is pointed at it by url (the API server dials 127.0.0.1, not
// the chart's Service, which has no endpoints here).
//
// Both certificate modes: self-managed (the controller creates its Secret and injects the
// caBundle with the chart's RBAC) and cert-manager's files mode (no cert-manager controller
// runs here, so the certificate comes from the certs package, as cert-manager would write it).
// Namespaces are scoped (watchNamespaces) and only the replicas router is enabled: the
// smallest RBAC the chart renders must be enough for a release.
func TestChartInstallRunsARelease(t *testing.T) {
	ctx := t.Context()
	installCertManagerCRDs(t)
	// Prometheus scrapes the demo pods, as the releases' analysis needs.
	promKubeconfig, err := testCluster.PrometheusKubeconfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	promURL, err := testCluster.StartPrometheus(ctx, cluster.PodsScrapeConfig(promKubeconfig, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	sluice := buildSluice(t)
	t.Run("self-managed certificates", func(t *testing.T) {
		installAndRelease(t, sluice, promURL, "acme-sluice", "shop", false)
	})
	t.Run("cert-manager", func(t *testing.T) {
		installAndRelease(t, sluice, promURL, "beta-sluice", "store", true)
	})
}

func installAndRelease(t *testing.T, sluice, promURL, release, shop string, certManager bool) {
	ns := release + "-system"
	const other = "other" // not watched
	ctx := t.Context()
	admin := adminClient(t)
	createNamespace(t, admin, shop)
	createNamespace(t, admin, other)

	helm(t, "install", release, chartDir(), "--namespace", ns, "--create-namespace",
		"--set", "certManager.enabled="+strconv.FormatBool(certManager),
		"--set", "watchNamespaces={"+shop+"}",
		"--set", "routers={replicas}")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sluice log:\n%s", testCluster.LogTail("sluice", 40))
		}
		// Leave the cluster as found for the other tests: the release, and the CRD it keeps.
		_ = testCluster.KillProcess("sluice")
		if _, stderr, err := tryHelmCtx(context.Background(), t, "uninstall", release, "-n", ns, "--wait", "--ignore-not-found"); err != nil {
			t.Errorf("helm uninstall: %v\n%s", err, stderr)
		}
		deleteCRD(t)
	})

	installed, err := admin.AppsV1().Deployments(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's Deployment: %v", err)
	}
	sa := installed.Spec.Template.Spec.ServiceAccountName

	// A kubeconfig holding a token of the chart's ServiceAccount: the local process is that
	// ServiceAccount to the API server, with exactly the permissions the chart's RBAC gives it.
	kubeconfig, saClient := serviceAccountKubeconfig(t, admin, ns, sa)
	review, err := saClient.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review: %v", err)
	}

	certDir := filepath.Join(t.TempDir(), "serving-certs")
	var caBundle []byte
	if certManager {
		bundle, err := certs.Generate([]string{"127.0.0.1", "localhost"}, 24*time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := bundle.WriteDir(certDir); err != nil {
			t.Fatal(err)
		}
		caBundle = bundle.CACert
	}
	ports, err := cluster.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	flags := localFlags(t, installed, map[string]string{
		"webhook-port":              strconv.Itoa(ports[0]),
		"metrics-bind-address":      "127.0.0.1:" + strconv.Itoa(ports[1]),
		"health-probe-bind-address": "127.0.0.1:" + strconv.Itoa(ports[2]),
		"cert-dir":                  certDir,
		"prometheus-address":        promURL,
	})
	if got := flagValue(flags, "controller-identity"); got != review.Status.UserInfo.Username {
		t.Errorf("the chart's --controller-identity=%s, but its ServiceAccount is %s to the API server", got, review.Status.UserInfo.Username)
	}
	want := map[string]string{"watch-namespaces": shop, "namespace": ns, "leader-election-namespace": ns}
	if !certManager {
		want["cert-secret"] = release + "-webhook-tls"
		want["webhook-configuration"] = release
	}
	for flag, want := range want {
		if got := flagValue(flags, flag); got != want {
			t.Errorf("--%s=%q, want %q", flag, got, want)
		}
	}
	flags = append(flags, "--webhook-host=127.0.0.1", "--kubeconfig="+kubeconfig)
	if !certManager {
		flags = append(flags, "--cert-extra-sans=127.0.0.1")
	}
	t.Logf("sluice %s", strings.Join(flags, " "))
	if _, err := testCluster.StartProcess("sluice", sluice, flags...); err != nil {
		t.Fatal(err)
	}
	if err := stack.WaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]), 90*time.Second); err != nil {
		t.Fatalf("sluice not ready: %v\n%s", err, testCluster.LogTail("sluice", 30))
	}
	checkLeasePriority(t, admin, kubeconfig, ns)

	mwcs := admin.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if !certManager {
		// The controller made its certificate and injected the CA, with the chart's RBAC.
		caBundle = waitCABundle(t, admin, release)
		if _, err := admin.CoreV1().Secrets(ns).Get(ctx, release+"-webhook-tls", metav1.GetOptions{}); err != nil {
			t.Errorf("the certificate Secret: %v", err)
		}
		// docs/install.md: the injected caBundle survives `helm upgrade` (the chart never
		// renders it, so Helm's three-way merge leaves it).
		helm(t, "upgrade", release, chartDir(), "--namespace", ns, "--reuse-values", "--set", "controller.concurrency=8")
		mwc, err := mwcs.Get(ctx, release, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := mwc.Webhooks[0].ClientConfig.CABundle; !bytes.Equal(got, caBundle) {
			t.Errorf("helm upgrade changed the injected caBundle (%d bytes, was %d)", len(got), len(caBundle))
		}
	}
	// The chart's webhook configuration, pointed at the local process; the CA bundle is the one
	// the controller injected (self-managed) or cert-manager's injector would have (files).
	url := fmt.Sprintf("https://127.0.0.1:%d%s", ports[0], webhook.Path)
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mwc, err := mwcs.Get(ctx, release, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i := range mwc.Webhooks {
			mwc.Webhooks[i].ClientConfig.Service = nil
			mwc.Webhooks[i].ClientConfig.URL = &url
			if certManager {
				mwc.Webhooks[i].ClientConfig.CABundle = caBundle
			}
		}
		_, err = mwcs.Update(ctx, mwc, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatalf("point the webhook at the local sluice: %v", err)
	}
	// The API server applies a changed webhook configuration from its own informer, a moment
	// later: wait until an admission (a server-side dry-run, which calls the webhook) reaches
	// the local process instead of the chart's Service.
	probe := demoapp.Deployment("probe", shop, "demo:v1", 1)
	probe.Labels[spec.LabelEnabled] = spec.ValueEnabled
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, err := admin.AppsV1().Deployments(shop).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admission does not reach the local sluice: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A release held and promoted, then one rolled back.
	a := startApp(t, admin, shop, "web")
	a.create(t, "demo:v1")
	a.waitFor(t, 90*time.Second, "3 available replicas of demo:v1", func(d *appsv1.Deployment) (bool, string) {
		return d.Status.AvailableReplicas == 3 && d.Status.UpdatedReplicas == 3,
			fmt.Sprintf("available=%d updated=%d", d.Status.AvailableReplicas, d.Status.UpdatedReplicas)
	})
	if _, stderr, err := testCluster.Kubectl(ctx, "-n", shop, "set", "image", "deployment/web", "app=demo:v2"); err != nil {
		t.Fatalf("kubectl set image: %v", err)
	} else if !strings.Contains(stderr, "sluice: held app=demo:v2") {
		t.Errorf("kubectl set image printed %q, want Sluice's hold warning", stderr)
	}
	if d := a.get(t); !d.Spec.Paused {
		t.Fatal("the new template was not held (Deployment not paused)")
	}
	st := a.waitPhase(t, 3*time.Minute, spec.PhaseSucceeded)
	if d := a.get(t); d.Spec.Paused || d.Spec.Template.Spec.Containers[0].Image != "demo:v2" || st.Stable != st.Revision {
		t.Errorf("after promotion: paused=%v image=%s state=%+v", d.Spec.Paused, d.Spec.Template.Spec.Containers[0].Image, st)
	}
	a.waitFor(t, time.Minute, "demo:v2 rolled out", func(d *appsv1.Deployment) (bool, string) {
		return d.Status.UpdatedReplicas == 3 && d.Status.AvailableReplicas == 3 && d.Status.Replicas == 3,
			fmt.Sprintf("updated=%d available=%d replicas=%d", d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.Replicas)
	})

	if _, _, err := testCluster.Kubectl(ctx, "-n", shop, "set", "image", "deployment/web", "app=demo:v3-bad"); err != nil {
		t.Fatalf("kubectl set image: %v", err)
	}
	a.waitPhase(t, 3*time.Minute, spec.PhaseFailed)
	if c := a.canary(t); c != nil {
		t.Errorf("canary %s left after the rollback", c.Name)
	}
	for pod, image := range a.stablePods(t) {
		if image != "demo:v2" {
			t.Errorf("stable pod %s runs %s after the rollback, want demo:v2", pod, image)
		}
	}

	// What the chart's RBAC does not grant is refused, whoever asks as this ServiceAccount.
	bystander := demoapp.Deployment("bystander", other, "demo:v1", 1)
	if _, err := admin.AppsV1().Deployments(other).Create(ctx, bystander, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "datadog", Namespace: other}, StringData: map[string]string{"api_key": "x"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "datadog", Namespace: shop}, StringData: map[string]string{"api_key": "x"}},
	} {
		if _, err := admin.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	stranger := demoapp.Deployment("stranger", shop, "demo:v1", 1) // in a watched namespace, not opted in
	if _, err := admin.AppsV1().Deployments(shop).Create(ctx, stranger, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]func() error{
		"delete a Deployment that is not opted in, in a watched namespace (the write guard)": func() error {
			return saClient.AppsV1().Deployments(shop).Delete(ctx, "stranger", metav1.DeleteOptions{})
		},
		"create a Deployment that is not a canary copy (the write guard)": func() error {
			_, err := saClient.AppsV1().Deployments(shop).Create(ctx, demoapp.Deployment("intruder", shop, "demo:v1", 1), metav1.CreateOptions{})
			return err
		},
		"delete a Deployment in a namespace it does not watch": func() error {
			return saClient.AppsV1().Deployments(other).Delete(ctx, "bystander", metav1.DeleteOptions{})
		},
		"read a Secret in a namespace it does not watch": func() error {
			_, err := saClient.CoreV1().Secrets(other).Get(ctx, "datadog", metav1.GetOptions{})
			return err
		},
		"list Secrets in a watched namespace (only get by name is granted)": func() error {
			_, err := saClient.CoreV1().Secrets(shop).List(ctx, metav1.ListOptions{})
			return err
		},
		"list Secrets in its own namespace": func() error {
			_, err := saClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		},
		"create an Ingress in a watched namespace (only the nginx router owns Ingresses; routers={replicas})": func() error {
			_, err := saClient.NetworkingV1().Ingresses(shop).Create(ctx, &networkingv1.Ingress{
				ObjectMeta: metav1.ObjectMeta{Name: "web-canary"},
				Spec:       networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
			}, metav1.CreateOptions{})
			return err
		},
		"create a Pod in a watched namespace": func() error {
			_, err := saClient.CoreV1().Pods(shop).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "x"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}},
			}, metav1.CreateOptions{})
			return err
		},
		"list webhook configurations": func() error {
			_, err := saClient.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
			return err
		},
	}
	if certManager {
		forbidden["read its webhook configuration (cert-manager injects the CA)"] = func() error {
			_, err := saClient.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, release, metav1.GetOptions{})
			return err
		}
		forbidden["read a Secret in its own namespace (cert-manager writes the certificate)"] = func() error {
			_, err := saClient.CoreV1().Secrets(ns).Get(ctx, release+"-webhook-tls", metav1.GetOptions{})
			return err
		}
	}
	for what, call := range forbidden {
		if err := call(); !apierrors.IsForbidden(err) {
			t.Errorf("%s as the chart's ServiceAccount: %v, want Forbidden", what, err)
		}
	}
	// ... while what it needs in a watched namespace is granted (the same client, so the
	// refusals above are RBAC's, not a broken token).
	if _, err := saClient.CoreV1().Secrets(shop).Get(ctx, "datadog", metav1.GetOptions{}); err != nil {
		t.Errorf("read a Secret in a watched namespace: %v", err)
	}
	for _, d := range []struct{ ns, name string }{{other, "bystander"}, {shop, "stranger"}} {
		if _, err := admin.AppsV1().Deployments(d.ns).Get(ctx, d.name, metav1.GetOptions{}); err != nil {
			t.Errorf("Deployment %s/%s is gone: %v", d.ns, d.name, err)
		}
	}

	if !certManager {
		uninstallAsDocumented(t, admin, release, ns, a)
	}
}

// uninstallAsDocumented follows docs/install.md's uninstall with a release still held (the
// rolled-back Deployment stays paused on its stable ReplicaSet): it is listed, the webhook
// configuration goes first, the chart goes, the Deployment is left exactly as held, and the
// documented way to finish it works without Sluice.
func uninstallAsDocumented(t *testing.T, admin kubernetes.Interface, release, ns string, a *app) {
	ctx := t.Context()
	list, _, err := testCluster.Kubectl(ctx, "get", "deploy", "-A", "-l", "sluice.dev/enabled=true",
		"-o", `jsonpath={range .items[?(@.spec.paused==true)]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(list) != a.ns+"/"+a.name {
		t.Errorf("docs/install.md's list of paused Deployments printed %q, want %s/%s", list, a.ns, a.name)
	}
	if err := testCluster.KillProcess("sluice"); err != nil {
		t.Fatal(err)
	}
	if err := admin.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, release, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	helm(t, "uninstall", release, "-n", ns, "--wait")
	if _, err := admin.CoreV1().Secrets(ns).Get(ctx, release+"-webhook-tls", metav1.GetOptions{}); err != nil {
		t.Errorf("the self-managed certificate Secret (docs/install.md: left for the operator to delete): %v", err)
	}
	d := a.get(t)
	if !d.Spec.Paused || d.Spec.Template.Spec.Containers[0].Image != "demo:v3-bad" {
		t.Errorf("after uninstall: paused=%v image=%s, want the held template left paused", d.Spec.Paused, d.Spec.Template.Spec.Containers[0].Image)
	}
	for pod, image := range a.stablePods(t) {
		if image != "demo:v2" {
			t.Errorf("pod %s runs %s after uninstall, want the stable demo:v2", pod, image)
		}
	}
	// Finish it: back to the stable template, then resume (no webhook is called any more).
	for _, args := range [][]string{
		{"set", "image", "deployment/" + a.name, "app=demo:v2"},
		{"rollout", "resume", "deployment/" + a.name},
	} {
		if _, stderr, err := testCluster.Kubectl(ctx, append([]string{"-n", a.ns}, args...)...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, stderr)
		}
	}
	a.waitFor(t, time.Minute, "demo:v2 unpaused and available", func(d *appsv1.Deployment) (bool, string) {
		return !d.Spec.Paused && d.Status.UpdatedReplicas == 3 && d.Status.AvailableReplicas == 3 && d.Status.ObservedGeneration == d.Generation,
			fmt.Sprintf("paused=%v updated=%d available=%d", d.Spec.Paused, d.Status.UpdatedReplicas, d.Status.AvailableReplicas)
	})
}

// waitCABundle waits until the webhook configuration named name carries a caBundle and
// returns it.
func waitCABundle(t *testing.T, cs kubernetes.Interface, name string) []byte {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if b := mwc.Webhooks[0].ClientConfig.CABundle; len(b) > 0 {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("no caBundle injected into %s after 60s\n%s", name, testCluster.LogTail("sluice", 20))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// localFlags returns the installed Deployment's controller flags with $(VAR) references
// expanded from the container's downward-API env and the flags in local replaced. Every
// replaced flag must be one the chart renders.
func localFlags(t *testing.T, d *appsv1.Deployment, local map[string]string) []string {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	vars := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			vars[e.Name] = d.Namespace
		case e.ValueFrom == nil:
			vars[e.Name] = e.Value
		default:
			t.Fatalf("env %s: the test cannot resolve %s", e.Name, asYAML(e.ValueFrom))
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range c.Args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if v, ok := local[name]; ok {
			a = "--" + name + "=" + v
			seen[name] = true
		}
		for k, v := range vars {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		if strings.Contains(a, "$(") {
			t.Fatalf("flag %s refers to a variable the container does not define", a)
		}
		out = append(out, a)
	}
	for name := range local {
		if !seen[name] {
			t.Fatalf("the chart renders no --%s: %v", name, c.Args)
		}
	}
	return out
}

func flagValue(flags []string, name string) string {
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// checkLeasePriority checks the chart's FlowSchema: the API server puts the ServiceAccount's
// requests for its leader-election Lease in the leader-election priority level (as it says in
// each answer's header), and its other requests elsewhere.
func checkLeasePriority(t *testing.T, admin kubernetes.Interface, kubeconfig, ns string) {
	t.Helper()
	pl, err := admin.FlowcontrolV1().PriorityLevelConfigurations().Get(t.Context(), "leader-election", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the leader-election priority level: %v", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	level := func(path string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, cfg.Host+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedPriorityLevelConfigurationUID)
	}
	if got := level("/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases/sluice.dev"); got != string(pl.UID) {
		t.Errorf("the controller's Lease requests are in priority level %q, want leader-election (%s)", got, pl.UID)
	}
	if got := level("/apis/apps/v1/namespaces/" + ns + "/deployments"); got == "" || got == string(pl.UID) {
		t.Errorf("the controller's other requests are in priority level %q, want one other than leader-election", got)
	}
}

// serviceAccountKubeconfig writes a kubeconfig with a token of ServiceAccount ns/sa from the
// TokenRequest API and returns its path and a client that uses it.
func serviceAccountKubeconfig(t *testing.T, admin kubernetes.Interface, ns, sa string) (string, kubernetes.Interface) {
	t.Helper()
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](2 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", ns, sa, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: testCluster.Server(), CertificateAuthorityData: testCluster.CABundle()}
	kc.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: sa, Namespace: ns}
	kc.CurrentContext = "local"
	path := filepath.Join(t.TempDir(), "serviceaccount.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return path, cs
}

func buildSluice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build sluice: %v\n%s", err, out)
	}
	return bin
}

// app is an opted-in demo Deployment whose pods are served and loaded for the test.
type app struct {
	cs       kubernetes.Interface
	ns, name string
}

func startApp(t *testing.T, cs kubernetes.Interface, ns, name string) *app {
	t.Helper()
	fleet := &demoapp.Fleet{Client: cs, Namespace: ns}
	load := &demoapp.Load{Fleet: fleet, RPS: 40, Selector: labels.SelectorFromSet(labels.Set{"app": name})}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = fleet.Run(runCtx); done <- struct{}{} }()
	go func() { _ = load.Run(runCtx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return &app{cs: cs, ns: ns, name: name}
}

func (a *app) create(t *testing.T, image string) {
	t.Helper()
	d := demoapp.Deployment(a.name, a.ns, image, 3)
	d.Labels[spec.LabelEnabled] = spec.ValueEnabled
	d.Annotations = map[string]string{spec.AnnInterval: "5s", spec.AnnThreshold: "2"}
	if _, err := a.cs.AppsV1().Deployments(a.ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s: %v", a.name, err)
	}
}

func (a *app) get(t *testing.T) *appsv1.Deployment {
	t.Helper()
	d, err := a.cs.AppsV1().Deployments(a.ns).Get(t.Context(), a.name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", a.name, err)
	}
	return d
}

func (a *app) canary(t *testing.T) *appsv1.Deployment {
	t.Helper()
	d, err := a.cs.AppsV1().Deployments(a.ns).Get(t.Context(), spec.CanaryName(a.name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("get canary: %v", err)
	}
	return d
}

func (a *app) waitFor(t *testing.T, timeout time.Duration, what string, cond func(*appsv1.Deployment) (bool, string)) *appsv1.Deployment {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		d := a.get(t)
		ok, detail := cond(d)
		if ok {
			return d
		}
		if detail != last {
			t.Logf("waiting for %s: %s", what, detail)
			last = detail
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last: %s)\nsluice log:\n%s", timeout, what, detail, testCluster.LogTail("sluice", 20))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (a *app) waitPhase(t *testing.T, timeout time.Duration, phase spec.Phase) spec.State {
	t.Helper()
	var st spec.State
	a.waitFor(t, timeout, "phase "+string(phase), func(d *appsv1.Deployment) (bool, string) {
		var err error
		if st, err = spec.ReadState(d.Annotations); err != nil {
			t.Fatalf("read state: %v", err)
		}
		return st.Phase == phase, fmt.Sprintf("phase=%s weight=%d failed=%d: %s", st.Phase, st.Weight, st.FailedChecks, st.Message)
	})
	return st
}

// stablePods returns name → image of the parent's live (non-canary) pods.
func (a *app) stablePods(t *testing.T) map[string]string {
	t.Helper()
	pods, err := a.cs.CoreV1().Pods(a.ns).List(t.Context(), metav1.ListOptions{
		LabelSelector: "app=" + a.name + "," + spec.LabelTrack + "!=" + spec.ValueCanary,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[p.Name] = p.Spec.Containers[0].Image
		}
	}
	return out
}
