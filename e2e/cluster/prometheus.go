package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// prometheusUser is the identity Prometheus discovers pods with.
const prometheusUser = "sluice-e2e-prometheus"

// StartPrometheus starts the built Prometheus on a free 127.0.0.1 port with configYAML
// as its configuration (see PodsScrapeConfig) and returns its base URL once /-/ready
// answers. Stop stops it with the rest of the cluster.
func (c *Cluster) StartPrometheus(ctx context.Context, configYAML string) (baseURL string, err error) {
	c.mu.Lock()
	running := c.prometheusURL
	c.mu.Unlock()
	if running != "" {
		return "", fmt.Errorf("start prometheus: already running at %s", running)
	}
	ports, err := FreePorts(1)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(c.Dir, "prometheus")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return "", fmt.Errorf("start prometheus: %w", err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(configYAML), 0o644); err != nil {
		return "", fmt.Errorf("start prometheus: write config: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	if err := c.startProcess("prometheus", c.Binaries.Prometheus, nil,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=1h",
		"--web.listen-address="+addr,
	); err != nil {
		return "", err
	}
	baseURL = "http://" + addr
	if err := c.poll(ctx, "prometheus", time.Minute, c.started, func(ctx context.Context) error {
		return httpGet(ctx, baseURL+"/-/ready", "")
	}); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.prometheusURL = baseURL
	c.Ports.Prometheus = ports[0]
	c.mu.Unlock()
	return baseURL, nil
}

// PrometheusKubeconfig writes a kubeconfig for Prometheus's kubernetes_sd_configs
// (`kubeconfig_file:`) and grants its user read access to what service discovery
// watches. It returns the file's path.
func (c *Cluster) PrometheusKubeconfig(ctx context.Context) (string, error) {
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return "", fmt.Errorf("create admin client: %w", err)
	}
	verbs := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: prometheusUser},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "services", "endpoints", "nodes", "namespaces"}, Verbs: verbs},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: verbs},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: verbs},
		},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: prometheusUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: prometheusUser}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create ClusterRoleBinding %s: %w", binding.Name, err)
	}
	path, _, err := c.UserKubeconfig(prometheusUser)
	return path, err
}

// PodsScrapeConfig returns a Prometheus configuration with one job, "kubernetes-pods",
// that discovers pods through the API server (kubeconfigPath, see PrometheusKubeconfig)
// and scrapes every pod annotated prometheus.io/scrape: "true" at
// <pod IP>:<prometheus.io/port><prometheus.io/path, default /metrics> every interval.
// Series carry namespace and pod labels.
func PodsScrapeConfig(kubeconfigPath string, interval time.Duration) string {
	d := promDuration(interval)
	return fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
- job_name: kubernetes-pods
  kubernetes_sd_configs:
  - role: pod
    kubeconfig_file: %[2]q
  relabel_configs:
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
    regex: "true"
    action: keep
  - source_labels: [__meta_kubernetes_pod_phase]
    regex: Succeeded|Failed
    action: drop
  - source_labels: [__meta_kubernetes_pod_ip]
    regex: ""
    action: drop
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_port, __meta_kubernetes_pod_ip]
    regex: (\d+);(.+)
    replacement: $2:$1
    target_label: __address__
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
    regex: (.+)
    target_label: __metrics_path__
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: pod
`, d, kubeconfigPath)
}

// promDuration formats d the way Prometheus parses durations ("1s", "500ms").
func promDuration(d time.Duration) string {
	if d <= 0 {
		d = time.Second
	}
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// StaticScrapeJob returns a scrape job to append to PodsScrapeConfig's scrape_configs: job
// scrapes target (host:port) at /metrics every interval. It keeps the scraped series' own
// labels (honor_labels), so that a `namespace` label of the series is not renamed.
func StaticScrapeJob(job, target string, interval time.Duration) string {
	return fmt.Sprintf(`- job_name: %[1]q
  scrape_interval: %[2]s
  scrape_timeout: %[2]s
  honor_labels: true
  static_configs:
  - targets: [%[3]q]
`, job, promDuration(interval), target)
}
