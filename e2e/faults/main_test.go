// Package faults is Sluice's fault matrix, end to end: the real sluice binary on a local
// control plane (kube-apiserver, etcd, controller-manager, scheduler, kwok) with a real
// Prometheus, and one test per fault: sluice killed (SIGKILL) at every point of a release for
// the replicas router and for Gateway API, stopped (SIGTERM) mid-step, Prometheus down, slow,
// answering 5xx or NaN, kube-apiserver restarted, the webhook endpoint down under each
// failurePolicy, and API Priority and Fairness rejecting sluice's requests with 429. Each row
// checks the outcome and that the release went through a valid sequence of states with no step
// repeated or skipped, its canary created once, and no stable pod touched before promotion.
//
// sluice runs behind two proxies on 127.0.0.1 (e2e/stack): its API traffic goes through
// stack.APIProxy (same identity, same RBAC), which lets a test stop it at an exact state write,
// and its --prometheus-address is stack.PrometheusProxy, which faults one namespace's queries
// at a time so that the rows run in parallel. `make test-faults` runs the package; the table
// of rows is docs/faults.md.
package faults

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/e2e/cluster"
	"github.com/sluice-dev/sluice/e2e/stack"
)

var (
	env      *stack.Stack
	apiProxy *stack.APIProxy
	promxy   *stack.PrometheusProxy
)

// queryTimeout is sluice's --query-timeout here: shorter than the 5 s interval, so a slow
// Prometheus costs a run, not the release's schedule.
const queryTimeout = "2s"

// downLabel on a namespace takes it out of the sluice webhook's namespaceSelector, so that a
// test can register a webhook for it whose endpoint is down.
const downLabel = "faults.sluice.dev/webhook-down"

func TestMain(m *testing.M) {
	log.SetLogger(logr.Discard())
	// Pod and Service ranges of their own, so that this package's pods do not take the
	// addresses of another test binary's control plane running at the same time.
	opts := cluster.Options{PodCIDR: "127.41.0.0/16", ServiceCIDR: "127.42.0.0/16"}
	os.Exit(cluster.Main(m, opts, func(c *cluster.Cluster) error {
		var err error
		if apiProxy, err = stack.StartAPIProxy(c, stack.Identity); err != nil {
			return err
		}
		if promxy, err = stack.StartPrometheusProxy(); err != nil {
			return err
		}
		env, err = stack.Up(context.Background(), c, stack.Options{SluiceArgs: []string{
			"--kubeconfig=" + apiProxy.Kubeconfig,
			"--prometheus-address=" + promxy.URL,
			"--query-timeout=" + queryTimeout,
			// A restarted sluice works at once instead of waiting for the killed one's lease
			// to expire (15 s per kill); the takeover itself is e2e's TestControllerRestartResumes.
			"--leader-elect=false",
		}})
		if err != nil {
			return err
		}
		if err := promxy.SetUpstream(env.PrometheusURL); err != nil {
			return err
		}
		return excludeDownNamespaces(context.Background())
	}))
}

// excludeDownNamespaces adds `downLabel DoesNotExist` to the sluice webhook's namespaceSelector.
func excludeDownNamespaces(ctx context.Context) error {
	api := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := api.Get(ctx, "sluice", metav1.GetOptions{})
	if err != nil {
		return err
	}
	for i := range cfg.Webhooks {
		sel := cfg.Webhooks[i].NamespaceSelector
		if sel == nil {
			return fmt.Errorf("webhook %s has no namespaceSelector", cfg.Webhooks[i].Name)
		}
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: downLabel, Operator: metav1.LabelSelectorOpDoesNotExist,
		})
	}
	_, err = api.Update(ctx, cfg, metav1.UpdateOptions{})
	return err
}
