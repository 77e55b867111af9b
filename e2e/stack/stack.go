package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/certs"
	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/webhook"
)

// Identity is the user Sluice runs as on the local control plane.
const Identity = "sluice"

// SluiceJob is the Prometheus job that scrapes sluice's own /metrics.
const SluiceJob = "sluice"

// WebhookOffLabel on a namespace keeps the API server from calling Sluice's webhook for it:
// writes there go through as if the webhook were down with failurePolicy Ignore.
const WebhookOffLabel = "e2e.sluice.dev/webhook-off"

// Namespace is Sluice's own namespace (leader election).
const Namespace = "sluice-system"

// Options configure Up.
type Options struct {
	Log io.Writer
	// ScrapeInterval of Prometheus (default 1s, so short release intervals have data).
	ScrapeInterval time.Duration
	// SluiceArgs are extra flags for sluice.
	SluiceArgs []string
}

// Stack is Sluice running on a local control plane.
type Stack struct {
	Cluster       *cluster.Cluster
	Client        kubernetes.Interface
	PrometheusURL string
	// SluiceBinary is the built sluice; MetricsURL serves its /metrics, which Prometheus
	// scrapes as job SluiceJob.
	SluiceBinary string
	PluginBinary string
	MetricsURL   string
	opts         Options
	args         []string
	readyURL     string
	repo         string
	// webhookURL and caBundle are what the webhook configuration is registered with.
	webhookURL string
	caBundle   []byte
}

// Up builds sluice, starts Prometheus and sluice, and registers the webhook.
func Up(ctx context.Context, c *cluster.Cluster, o Options) (*Stack, error) {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = time.Second
	}
	repo, err := cluster.RepoRoot()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return nil, err
	}
	s := &Stack{Cluster: c, Client: cs, opts: o, repo: repo}
	step := func(format string, args ...any) {
		fmt.Fprintf(o.Log, "[%5.1fs] %s\n", c.Uptime().Seconds(), fmt.Sprintf(format, args...))
	}

	step("building sluice and kubectl-sluice")
	binDir := filepath.Join(c.Dir, "bin")
	s.SluiceBinary = filepath.Join(binDir, "sluice")
	s.PluginBinary = filepath.Join(binDir, "kubectl-sluice")
	build := exec.CommandContext(ctx, "go", "build", "-o", binDir+"/", "./cmd/sluice", "./cmd/kubectl-sluice")
	build.Dir, build.Stdout, build.Stderr = repo, o.Log, o.Log
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build sluice: %w", err)
	}

	step("applying deploy/crds, deploy/rbac and the %s namespace", Namespace)
	if err := s.rbac(ctx); err != nil {
		return nil, err
	}
	step("installing the routers' CRDs (Gateway API, Istio, Contour, SMI, App Mesh stand-in)")
	if err := InstallRouterCRDs(ctx, c, repo); err != nil {
		return nil, err
	}
	kubeconfig, _, err := c.UserKubeconfig(Identity)
	if err != nil {
		return nil, err
	}

	bundle, err := certs.Generate([]string{"127.0.0.1", "localhost"}, 365*24*time.Hour, time.Now())
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(c.Dir, "sluice-certs")
	if err := bundle.WriteDir(certDir); err != nil {
		return nil, err
	}
	ports, err := cluster.FreePorts(3)
	if err != nil {
		return nil, err
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	s.MetricsURL = "http://" + metricsAddr + "/metrics"

	step("starting Prometheus (scrapes pods and sluice's %s every %s)", s.MetricsURL, o.ScrapeInterval)
	promKubeconfig, err := c.PrometheusKubeconfig(ctx)
	if err != nil {
		return nil, err
	}
	promConfig := cluster.PodsScrapeConfig(promKubeconfig, o.ScrapeInterval) + cluster.StaticScrapeJob(SluiceJob, metricsAddr, o.ScrapeInterval)
	if s.PrometheusURL, err = c.StartPrometheus(ctx, promConfig); err != nil {
		return nil, err
	}
	s.args = append([]string{
		"--kubeconfig=" + kubeconfig,
		"--controller-identity=" + Identity,
		"--webhook-host=127.0.0.1", "--webhook-port=" + strconv.Itoa(ports[0]),
		"--cert-dir=" + certDir,
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(ports[2]),
		"--leader-election-namespace=" + Namespace,
		"--prometheus-address=" + s.PrometheusURL,
	}, o.SluiceArgs...)
	step("starting sluice (webhook https://127.0.0.1:%d%s)", ports[0], webhook.Path)
	if err := s.StartSluice(ctx); err != nil {
		return nil, err
	}
	s.readyURL = fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2])
	if err := s.WaitSluice(ctx); err != nil {
		return nil, err
	}
	step("registering the webhook from deploy/webhook.yaml")
	s.webhookURL, s.caBundle = fmt.Sprintf("https://127.0.0.1:%d%s", ports[0], webhook.Path), bundle.CACert
	if err := s.registerWebhook(ctx, s.webhookURL, s.caBundle); err != nil {
		return nil, err
	}
	step("sluice is up")
	return s, nil
}

// StartSluice (re)starts the sluice process with the same flags and any extra ones.
func (s *Stack) StartSluice(ctx context.Context, extra ...string) error {
	_, err := s.Cluster.StartProcess("sluice", s.SluiceBinary, append(slices.Clone(s.args), extra...)...)
	return err
}

// WaitSluice waits until the running sluice is ready (its webhook serving, its caches synced).
func (s *Stack) WaitSluice(ctx context.Context) error {
	if err := WaitHTTP(ctx, s.readyURL, 60*time.Second); err != nil {
		return fmt.Errorf("sluice not ready: %w\n%s", err, s.Cluster.LogTail("sluice", 20))
	}
	return nil
}

// Plugin runs `kubectl sluice ARGS` as the cluster admin.
func (s *Stack) Plugin(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.PluginBinary, append([]string{"--kubeconfig", s.Cluster.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// KillSluice kills sluice with SIGKILL, as a crash would, and waits for it to exit.
func (s *Stack) KillSluice() error { return s.Cluster.KillProcess("sluice") }

// StopSluice sends sig to sluice and waits up to timeout for it to exit. It returns how long
// that took and how sluice exited (nil: status 0); past timeout sluice is killed and the error
// wraps cluster.ErrStillRunning.
func (s *Stack) StopSluice(sig syscall.Signal, timeout time.Duration) (took time.Duration, exit, err error) {
	start := time.Now()
	exit, err = s.Cluster.StopProcess("sluice", sig, timeout)
	return time.Since(start), exit, err
}

// Replica is another sluice process, started by a test that needs more than one (HA,
// certificates) or other flags.
type Replica struct {
	Name        string
	PID         int
	WebhookPort int
	MetricsURL  string
	ReadyURL    string
}

// StartReplica starts another sluice process, logged as name, with the stack's flags, its own
// loopback ports for the webhook, metrics and probes, and extra flags (which win over the
// stack's). The cluster stops it with everything else; KillProcess(name) kills it.
func (s *Stack) StartReplica(name string, extra ...string) (*Replica, error) {
	ports, err := cluster.FreePorts(3)
	if err != nil {
		return nil, err
	}
	r := &Replica{
		Name: name, WebhookPort: ports[0],
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
		ReadyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]),
	}
	args := append(slices.Clone(s.args),
		"--webhook-port="+strconv.Itoa(ports[0]),
		"--metrics-bind-address=127.0.0.1:"+strconv.Itoa(ports[1]),
		"--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(ports[2]))
	if r.PID, err = s.Cluster.StartProcess(name, s.SluiceBinary, append(args, extra...)...); err != nil {
		return nil, err
	}
	return r, nil
}

// WaitReady waits until the replica's /readyz is ok.
func (s *Stack) WaitReady(ctx context.Context, r *Replica, timeout time.Duration) error {
	if err := WaitHTTP(ctx, r.ReadyURL, timeout); err != nil {
		return fmt.Errorf("%s not ready: %w\n%s", r.Name, err, s.Cluster.LogTail(r.Name, 20))
	}
	return nil
}

// RestoreSluice registers the webhook configuration again as Up did (a test may have pointed
// it elsewhere) and starts the stack's sluice again, for tests that took it away.
func (s *Stack) RestoreSluice(ctx context.Context) error {
	if err := s.registerWebhook(ctx, s.webhookURL, s.caBundle); err != nil {
		return err
	}
	if err := s.StartSluice(ctx); err != nil {
		return err
	}
	return s.WaitSluice(ctx)
}

func (s *Stack) rbac(ctx context.Context) error {
	if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	for _, dir := range []string{"crds", "rbac"} {
		if _, stderr, err := s.Cluster.Kubectl(ctx, "apply", "-f", filepath.Join(s.repo, "deploy", dir)); err != nil {
			return fmt.Errorf("apply deploy/%s: %w: %s", dir, err, stderr)
		}
	}
	if _, stderr, err := s.Cluster.Kubectl(ctx, "wait", "--for=condition=Established", "crd/metrictemplates.sluice.dev", "--timeout=30s"); err != nil {
		return fmt.Errorf("wait for the MetricTemplate CRD: %w: %s", err, stderr)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: Identity}}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "sluice"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "sluice"},
		Subjects:   subject,
	}
	if _, err := s.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "sluice-leader-election", Namespace: Namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "sluice-leader-election"},
		Subjects:   subject,
	}
	if _, err := s.Client.RbacV1().RoleBindings(Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	fs := LeaseFlowSchema(flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: Identity}}, Namespace)
	if _, err := s.Client.FlowcontrolV1().FlowSchemas().Create(ctx, fs, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create FlowSchema %s: %w", fs.Name, err)
	}
	return nil
}

// LeaseFlowSchema is the chart's FlowSchema (deploy/helm/sluice/templates/flowschema.yaml, as
// rendered for release "sluice"; e2e/install checks the two agree) for subject: its Lease
// requests in namespace, in the leader-election priority level.
func LeaseFlowSchema(subject flowcontrolv1.Subject, namespace string) *flowcontrolv1.FlowSchema {
	return &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: "sluice-leader-election"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "leader-election"},
			MatchingPrecedence:         210,
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{subject},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
					APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
					Verbs: []string{"get", "create", "update"}, Namespaces: []string{namespace},
				}},
			}},
		},
	}
}

// registerWebhook installs deploy/webhook.yaml, pointed at the local sluice by url.
func (s *Stack) registerWebhook(ctx context.Context, url string, caBundle []byte) error {
	raw, err := os.ReadFile(filepath.Join(s.repo, "deploy", "webhook.yaml"))
	if err != nil {
		return err
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := yaml.UnmarshalStrict(raw, cfg); err != nil {
		return fmt.Errorf("parse deploy/webhook.yaml: %w", err)
	}
	for i := range cfg.Webhooks {
		cfg.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
		// A test switches the webhook off for its own namespace only (as a webhook that is down
		// with failurePolicy Ignore would be), leaving the tests running beside it guarded.
		sel := cfg.Webhooks[i].NamespaceSelector
		if sel == nil {
			sel = &metav1.LabelSelector{}
			cfg.Webhooks[i].NamespaceSelector = sel
		}
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: WebhookOffLabel, Operator: metav1.LabelSelectorOpDoesNotExist,
		})
	}
	api := s.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	_ = api.Delete(ctx, cfg.Name, metav1.DeleteOptions{})
	if _, err := api.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("register webhook: %w", err)
	}
	return nil
}

// WaitHTTP polls url until it answers 200 OK, for at most timeout.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
