package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure EnsureBinaries and Start. The zero value is a one-node cluster in a
// temporary dir that dies with the calling process.
type Options struct {
	// Dir holds the cluster's state: kubeconfig, PKI, etcd data, logs and the pid file.
	// Default: a new temporary dir; with Detached, DetachedDir().
	Dir string
	// KeepDir keeps Dir after Stop (it is always kept when Start fails, for its logs).
	KeepDir bool
	// Detached starts the processes in their own session so that they outlive the
	// caller; Down(Dir) stops them. Otherwise they are killed when the caller dies.
	Detached bool
	// Nodes is the number of fake nodes (default 1).
	Nodes int
	// PodCIDR is where kwok takes pod IPs from (default 127.1.0.0/16). Keep it on
	// loopback and distinct between clusters that run at the same time.
	PodCIDR string
	// ServiceCIDR is the Service IP range (default 127.16.0.0/16).
	ServiceCIDR string
	// Log receives progress lines (default os.Stderr).
	Log io.Writer
	// CacheDir holds built binaries (default CacheDir()).
	CacheDir string
	// RepoRoot is the Sluice checkout that holds e2e/tools (default RepoRoot()).
	RepoRoot string
	// AuditPolicy, when set, is an audit.k8s.io/v1 Policy (YAML) the API server logs requests
	// by, as JSON lines, to Cluster.AuditLog.
	AuditPolicy string
	// ControlPlaneQPS, when set, is the client-side limit of kube-controller-manager's and
	// kube-scheduler's API clients, requests/s (burst 1.5×), in place of their defaults (20/s
	// burst 30, and 50/s burst 100). Control planes of large clusters run them higher; the
	// scale benchmark sets it to see a controller's own cost past the controller-manager's.
	ControlPlaneQPS float32
}

// clientLimits are the API client flags of kube-controller-manager and kube-scheduler.
func (o *Options) clientLimits() []string {
	if o.ControlPlaneQPS <= 0 {
		return nil
	}
	return []string{fmt.Sprintf("--kube-api-qps=%g", o.ControlPlaneQPS), fmt.Sprintf("--kube-api-burst=%d", int(math.Ceil(float64(o.ControlPlaneQPS)*1.5)))}
}

func (o *Options) complete() error {
	var err error
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.CacheDir == "" {
		if o.CacheDir, err = CacheDir(); err != nil {
			return err
		}
	}
	if o.RepoRoot == "" {
		if o.RepoRoot, err = RepoRoot(); err != nil {
			return err
		}
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.PodCIDR == "" {
		o.PodCIDR = "127.1.0.0/16"
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = "127.16.0.0/16"
	}
	for _, cidr := range []string{o.PodCIDR, o.ServiceCIDR} {
		p, err := netip.ParsePrefix(cidr)
		if err != nil || !p.Addr().IsLoopback() {
			return fmt.Errorf("CIDR %q: must be a loopback range such as 127.1.0.0/16", cidr)
		}
	}
	return nil
}

// DetachedDir is where a detached cluster keeps its state by default:
// <repo>/.local/cluster (git-ignored).
func DetachedDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".local", "cluster"), nil
}

// Ports are the loopback ports the control plane listens on.
type Ports struct {
	Etcd, EtcdPeer, APIServer, ControllerManager, Scheduler int
	Prometheus                                              int // 0 until StartPrometheus
}

// Cluster is a running control plane. Its methods are safe for concurrent use.
type Cluster struct {
	// Dir holds kubeconfig, PKI, data, logs (Dir/logs/*.log) and the pid file.
	Dir string
	// Kubeconfig is the path of an admin (system:masters) kubeconfig.
	Kubeconfig string
	Binaries   Binaries
	Ports      Ports
	// AuditLog is the API server's audit log (JSON lines), or "" without Options.AuditPolicy.
	AuditLog string

	opts    Options
	started time.Time
	ca      *CA
	server  string
	admin   *rest.Config

	mu            sync.Mutex
	procs         []*process
	stopping      bool // set by Stop; no process starts after it
	prometheusURL string
	stopOnce      sync.Once
	stopErr       error
}

// Node annotations and labels of the fake nodes.
const (
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	kwokNodeValue      = "fake"
	clusterName        = "sluice-e2e"
)

// Start builds missing binaries (see EnsureBinaries) and starts etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok on free 127.0.0.1 ports. It returns
// once the API server is ready, every node is Ready and schedulable, and the default
// ServiceAccount exists. On failure it stops what it started and keeps Dir for its logs.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	bins, err := EnsureBinaries(ctx, opts)
	if err != nil {
		return nil, err
	}
	dir, err := prepareDir(opts)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Binaries: bins, opts: opts, started: time.Now()}
	track(c) // from now on, Main's signal handler stops it too
	defer func() {
		if err != nil {
			untrack(c)
			if killErr := c.kill(); killErr != nil {
				err = errors.Join(err, killErr)
			}
			err = fmt.Errorf("%w\n(cluster state and logs kept in %s)", err, dir)
		}
	}()
	c.logf("starting control plane in %s", dir)

	ports, err := FreePorts(5)
	if err != nil {
		return nil, err
	}
	c.Ports = Ports{Etcd: ports[0], EtcdPeer: ports[1], APIServer: ports[2], ControllerManager: ports[3], Scheduler: ports[4]}
	c.server = fmt.Sprintf("https://127.0.0.1:%d", c.Ports.APIServer)

	svc := netip.MustParsePrefix(opts.ServiceCIDR)
	p, err := writePKI(filepath.Join(dir, "pki"), []string{
		"127.0.0.1", "localhost", svc.Masked().Addr().Next().String(),
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
	})
	if err != nil {
		return nil, err
	}
	c.ca = p.ca
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if c.admin, err = c.writeKubeconfig(c.Kubeconfig, "sluice-e2e-admin", "system:masters"); err != nil {
		return nil, err
	}
	kubeconfigs := map[string]string{}
	for name, ident := range map[string][]string{
		"kube-controller-manager": {"system:kube-controller-manager"},
		"kube-scheduler":          {"system:kube-scheduler"},
		"kwok":                    {"sluice-e2e-kwok", "system:masters"},
	} {
		kubeconfigs[name] = filepath.Join(dir, "kubeconfigs", name+".kubeconfig")
		if _, err := c.writeKubeconfig(kubeconfigs[name], ident[0], ident[1:]...); err != nil {
			return nil, err
		}
	}

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.Etcd)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdPeer)
	if err := c.startProcess("etcd", bins.Etcd, nil,
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync=true",
	); err != nil {
		return nil, err
	}
	if err := c.poll(ctx, "etcd", time.Minute, c.started, func(ctx context.Context) error {
		return httpGet(ctx, etcdURL+"/health", `"health":"true"`)
	}); err != nil {
		return nil, err
	}

	auditPolicy := "" // empty flags: no auditing
	if opts.AuditPolicy != "" {
		auditPolicy = filepath.Join(dir, "audit-policy.yaml")
		if err := os.WriteFile(auditPolicy, []byte(opts.AuditPolicy), 0o644); err != nil {
			return nil, fmt.Errorf("write audit policy: %w", err)
		}
		c.AuditLog = filepath.Join(dir, "logs", "audit.log")
	}
	if err := c.startProcess("kube-apiserver", bins.KubeAPIServer, nil,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.Ports.APIServer),
		"--cert-dir="+filepath.Join(dir, "kube-apiserver"),
		"--tls-cert-file="+p.apiserverCert, "--tls-private-key-file="+p.apiserverKey,
		"--client-ca-file="+p.caCert,
		"--endpoint-reconciler-type=none",
		"--authorization-mode=RBAC",
		"--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
		"--service-cluster-ip-range="+opts.ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+p.saPub,
		"--service-account-signing-key-file="+p.saKey,
		"--requestheader-client-ca-file="+p.frontProxyCACert,
		"--requestheader-allowed-names="+frontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+p.frontProxyCert, "--proxy-client-key-file="+p.frontProxyKey,
		"--allow-privileged=true",
		"--audit-policy-file="+auditPolicy, "--audit-log-path="+c.AuditLog, "--audit-log-format=json",
		// Never rotated (the default rotates at 100 MB, which 1,000 releases pass): readers
		// count every request of a window from this one file.
		"--audit-log-maxsize=1000000",
	); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	if err := c.poll(ctx, "kube-apiserver", 2*time.Minute, c.started, func(ctx context.Context) error {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("readyz: %w: %s", err, body)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	common := func(name string, port int) []string {
		return []string{
			"--kubeconfig=" + kubeconfigs[name],
			"--authentication-kubeconfig=" + kubeconfigs[name],
			"--authorization-kubeconfig=" + kubeconfigs[name],
			"--bind-address=127.0.0.1",
			fmt.Sprintf("--secure-port=%d", port),
			"--cert-dir=" + filepath.Join(dir, name),
			"--leader-elect=false",
		}
	}
	if err := c.startProcess("kube-controller-manager", bins.KubeControllerManager, nil,
		append(append(common("kube-controller-manager", c.Ports.ControllerManager),
			"--use-service-account-credentials=true",
			"--service-account-private-key-file="+p.saKey,
			"--root-ca-file="+p.caCert,
			"--cluster-signing-cert-file="+p.caCert, "--cluster-signing-key-file="+p.caKey,
			// Autoscalers act within a second or two rather than the default 15 s.
			"--horizontal-pod-autoscaler-sync-period=1s",
		), opts.clientLimits()...)...,
	); err != nil {
		return nil, err
	}
	if err := c.startProcess("kube-scheduler", bins.KubeScheduler, nil,
		append(common("kube-scheduler", c.Ports.Scheduler), opts.clientLimits()...)...); err != nil {
		return nil, err
	}
	if err := c.startProcess("kwok", bins.Kwok, []string{"KWOK_WORKDIR=" + filepath.Join(dir, "kwok")},
		"--kubeconfig="+kubeconfigs["kwok"],
		"--config="+bins.KwokStages,
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"="+kwokNodeValue,
		"--node-ip=127.0.0.1",
		"--cidr="+opts.PodCIDR,
		// Without node leases kwok only refreshes node status about once a minute, later than
		// the node lifecycle controller's grace period: nodes flap NotReady and their pods are
		// marked unready for good.
		"--node-lease-duration-seconds=40",
	); err != nil {
		return nil, err
	}
	for i := range opts.Nodes {
		podCIDR, err := nodePodCIDR(opts.PodCIDR, i)
		if err != nil {
			return nil, err
		}
		if err := createNode(ctx, cs, fmt.Sprintf("kwok-node-%d", i), podCIDR); err != nil {
			return nil, err
		}
	}

	err = c.pollAll(ctx, []check{
		{"kube-controller-manager", func(ctx context.Context) error {
			return httpGet(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.Ports.ControllerManager), "ok")
		}},
		{"kube-scheduler", func(ctx context.Context) error {
			return httpGet(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", c.Ports.Scheduler), "ok")
		}},
		{fmt.Sprintf("%d kwok node(s)", opts.Nodes), func(ctx context.Context) error {
			return nodesReady(ctx, cs, opts.Nodes)
		}},
		{"default ServiceAccount", func(ctx context.Context) error {
			_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			return err
		}},
	})
	if err != nil {
		return nil, err
	}
	c.logf("control plane ready (kubeconfig %s)", c.Kubeconfig)
	return c, nil
}

// RESTConfig returns a copy of the admin (system:masters) client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.admin) }

// CA returns the cluster CA: certificates it issues are trusted by the API server for
// client authentication, and the API server's serving certificate chains to it.
func (c *Cluster) CA() *CA { return c.ca }

// CABundle returns the cluster CA certificate in PEM form.
func (c *Cluster) CABundle() []byte { return c.ca.CertPEM() }

// Server returns the API server URL.
func (c *Cluster) Server() string { return c.server }

// UserKubeconfig issues a client certificate for user in groups, signed by the cluster
// CA, and writes a kubeconfig for it into Dir/users. The user has no permissions beyond
// what RBAC grants it (or its groups).
func (c *Cluster) UserKubeconfig(user string, groups ...string) (path string, cfg *rest.Config, err error) {
	name := strings.NewReplacer("/", "_", ":", "_").Replace(user)
	path = filepath.Join(c.Dir, "users", name+".kubeconfig")
	cfg, err = c.writeKubeconfig(path, user, groups...)
	if err != nil {
		return "", nil, err
	}
	return path, cfg, nil
}

// Kubectl runs the built kubectl with the admin kubeconfig.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, c.Binaries.Kubectl, append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), nil
}

func (c *Cluster) writeKubeconfig(path, user string, groups ...string) (*rest.Config, error) {
	certPEM, keyPEM, err := c.ca.ClientCert(user, groups...)
	if err != nil {
		return nil, err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[clusterName] = &clientcmdapi.Cluster{Server: c.server, CertificateAuthorityData: c.ca.CertPEM()}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	kc.Contexts[clusterName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user, Namespace: metav1.NamespaceDefault}
	kc.CurrentContext = clusterName
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("write kubeconfig for %s: %w", user, err)
	}
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return nil, fmt.Errorf("write kubeconfig for %s: %w", user, err)
	}
	return &rest.Config{
		Host: c.server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: c.ca.CertPEM(), CertData: certPEM, KeyData: keyPEM,
		},
		// Tests create objects in bursts; client-side throttling would only slow them.
		QPS: 1000, Burst: 2000,
	}, nil
}

// nodePodCIDR is node i's own /24 of the cluster's pod range. kwok takes pod IPs from the
// node's spec.podCIDR, so nodes sharing one range would hand out the same IPs twice.
func nodePodCIDR(cluster string, i int) (string, error) {
	p, err := netip.ParsePrefix(cluster)
	if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
		return "", fmt.Errorf("pod CIDR %q: want an IPv4 range of /24 or larger", cluster)
	}
	a := p.Masked().Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 + uint32(i)<<8
	sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), 0}), 24)
	if !p.Contains(sub.Addr()) {
		return "", fmt.Errorf("pod CIDR %q has no /24 left for node %d", cluster, i)
	}
	return sub.String(), nil
}

func createNode(ctx context.Context, cs kubernetes.Interface, name, podCIDR string) error {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("1Ti"),
		corev1.ResourcePods:   resource.MustParse("10000"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokNodeAnnotation: kwokNodeValue},
			Labels: map[string]string{
				corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
				"type": "kwok",
			},
		},
		Spec:   corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status: corev1.NodeStatus{Allocatable: res, Capacity: res},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

// nodesReady checks that want nodes are Ready and carry no NoSchedule/NoExecute taint
// (the not-ready taint goes away a moment after Ready).
func nodesReady(ctx context.Context, cs kubernetes.Interface, want int) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ready := 0
	for _, n := range nodes.Items {
		ok := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		for _, t := range n.Spec.Taints {
			if t.Effect != corev1.TaintEffectPreferNoSchedule {
				ok = false
			}
		}
		if ok {
			ready++
		}
	}
	if ready < want {
		return fmt.Errorf("%d of %d nodes Ready and untainted", ready, want)
	}
	return nil
}

// prepareDir returns the absolute cluster dir, created and marked as ours. An existing
// dir is reused only if it is an old cluster dir whose processes are all gone.
func prepareDir(opts Options) (string, error) {
	dir := opts.Dir
	switch {
	case dir == "" && opts.Detached:
		dir = filepath.Join(opts.RepoRoot, ".local", "cluster")
	case dir == "":
		d, err := os.MkdirTemp("", "sluice-cluster-")
		if err != nil {
			return "", fmt.Errorf("create cluster dir: %w", err)
		}
		dir = d
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("cluster dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0):
	case err != nil:
		return "", fmt.Errorf("read cluster dir: %w", err)
	case !hasFiles(dir, markerFile):
		return "", fmt.Errorf("cluster dir %s is not empty and not a cluster dir; refusing to use it", dir)
	default:
		alive, err := livePIDs(dir)
		if err != nil {
			return "", err
		}
		if len(alive) > 0 {
			return "", fmt.Errorf("a cluster is already running in %s (pids %v); stop it first (Down, or `go run ./e2e/cmd/cluster down`)", dir, alive)
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("remove old cluster dir: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cluster dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, markerFile), []byte("a Sluice local control plane; see e2e/README.md\n"), 0o644); err != nil {
		return "", fmt.Errorf("mark cluster dir: %w", err)
	}
	return dir, nil
}

// FreePorts returns n distinct free ports on 127.0.0.1. Another process may take one
// before it is used; on this machine that has not been seen to happen.
func FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// check is one readiness condition polled by pollAll.
type check struct {
	name string
	fn   func(context.Context) error
}

// pollAll polls the checks concurrently, so each one's "ready" line shows when it
// actually became ready.
func (c *Cluster) pollAll(ctx context.Context, checks []check) error {
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, ch := range checks {
		wg.Go(func() { errs[i] = c.poll(ctx, ch.name, 2*time.Minute, c.started, ch.fn) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// poll calls check until it succeeds, a started process exits, or timeout passes.
func (c *Cluster) poll(ctx context.Context, what string, timeout time.Duration, since time.Time, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		err := check(attempt)
		cancelAttempt()
		if err == nil {
			c.logf("[%5.1fs] %s ready", time.Since(since).Seconds(), what)
			return nil
		}
		if exitErr := c.exited(); exitErr != nil {
			return fmt.Errorf("wait for %s: %w", what, exitErr)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last check: %w)", what, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var insecureHTTP = &http.Client{
	// Only for health endpoints of components with self-signed serving certificates.
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
}

// httpGet checks that url answers 200 with a body containing want.
func httpGet(ctx context.Context, url, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := insecureHTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.opts.Log, format+"\n", args...)
}
