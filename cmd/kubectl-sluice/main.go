// Command kubectl-sluice is the kubectl plugin for Sluice: it reads a release from the
// Deployment's state annotation and writes the manual control annotations for you.
//
//	kubectl sluice status NAME      phase, weight, last check readings, message
//	kubectl sluice list             every opted-in Deployment of the namespace and its phase
//	kubectl sluice promote NAME     approve the revision in flight (bound to that revision)
//	kubectl sluice abort NAME       roll the release back
//	kubectl sluice pause NAME       stop stepping and analysing; resume continues
//	kubectl sluice resume NAME
//	kubectl sluice retry NAME       start again a release that failed
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-dev/sluice/rollout/spec"
)

const usage = `usage: kubectl sluice [-n NAMESPACE] status|list|promote|abort|pause|resume|retry [NAME]`

func main() {
	fs := pflag.NewFlagSet("kubectl-sluice", pflag.ExitOnError)
	namespace := fs.StringP("namespace", "n", "", "namespace (default: the kubeconfig context's)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	_ = fs.Parse(os.Args[1:])
	args := fs.Args()
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	ns, _, err := cc.Namespace()
	if err == nil && *namespace != "" {
		ns = *namespace
	}
	cfg, err2 := cc.ClientConfig()
	if err := firstErr(err, err2); err != nil {
		fail(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	cmd, name := args[0], ""
	if len(args) > 1 {
		name = args[1]
	}
	if cmd != "list" && name == "" {
		fail(fmt.Errorf("%s needs a Deployment name\n%s", cmd, usage))
	}
	switch cmd {
	case "status":
		err = status(ctx, cs, ns, name)
	case "list":
		err = list(ctx, cs, ns)
	case "promote":
		err = control(ctx, cs, ns, name, spec.AnnPromote)
	case "abort":
		err = control(ctx, cs, ns, name, spec.AnnAbort)
	case "pause":
		err = control(ctx, cs, ns, name, spec.AnnPause)
	case "resume":
		err = annotate(ctx, cs, ns, name, map[string]any{spec.AnnPause: nil})
	case "retry":
		err = control(ctx, cs, ns, name, spec.AnnRetry)
	default:
		err = fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	if err != nil {
		fail(err)
	}
}

func status(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if d.Labels[spec.LabelEnabled] != spec.ValueEnabled {
		return fmt.Errorf("deployment %s/%s is not opted in (label %s=%s)", ns, name, spec.LabelEnabled, spec.ValueEnabled)
	}
	st, err := spec.ReadState(d.Annotations)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Deployment:\t%s/%s\n", ns, name)
	fmt.Fprintf(w, "Phase:\t%s\n", st.Phase)
	if st.Revision != "" {
		fmt.Fprintf(w, "Revision:\t%s (%s)\n", st.Revision, st.Image)
		fmt.Fprintf(w, "Stable:\t%s\n", st.Stable)
	}
	if st.Phase.InFlight() {
		if p := st.Plan; p != nil {
			fmt.Fprintf(w, "Release:\t%s\n", describePlan(p))
		}
		switch {
		case st.Plan != nil && st.Plan.Iterative():
			fmt.Fprintf(w, "Iteration:\t%d of %d (every %s)\n", st.Iteration, st.Plan.Iterations, st.Plan.Interval.Duration)
		case st.Plan != nil:
			fmt.Fprintf(w, "Weight:\t%d%% (step %d of %v, every %s)\n", st.Weight, st.Step+1, st.Plan.Steps, st.Plan.Interval.Duration)
		default:
			fmt.Fprintf(w, "Weight:\t%d%%\n", st.Weight)
		}
		fmt.Fprintf(w, "Failed checks:\t%d\n", st.FailedChecks)
		fmt.Fprintf(w, "Inconclusive:\t%d\n", st.Inconclusive)
	}
	if st.FailedRevision != "" {
		fmt.Fprintf(w, "Last failed:\t%s\n", st.FailedRevision)
	}
	if !st.StartedAt.IsZero() {
		fmt.Fprintf(w, "Started:\t%s (%s ago)\n", st.StartedAt.Format(time.RFC3339), time.Since(st.StartedAt).Round(time.Second))
	}
	fmt.Fprintf(w, "Message:\t%s\n", st.Message)
	for _, c := range st.Checks {
		v := "no data"
		if c.Value != nil {
			v = fmt.Sprintf("%.4g", *c.Value)
		}
		dry := ""
		if c.DryRun {
			dry = " (dry run)"
		}
		fmt.Fprintf(w, "Check %s:\t%s %s%s %s\n", c.Name, v, c.Verdict, dry, c.Reason)
	}
	return w.Flush()
}

func list(ctx context.Context, cs kubernetes.Interface, ns string) error {
	ds, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: spec.LabelEnabled + "=" + spec.ValueEnabled})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPHASE\tWEIGHT\tREVISION\tMESSAGE")
	for _, d := range ds.Items {
		st, _ := spec.ReadState(d.Annotations)
		fmt.Fprintf(w, "%s\t%s\t%d%%\t%s\t%s\n", d.Name, st.Phase, st.Weight, st.Revision, st.Message)
	}
	return w.Flush()
}

// control writes control annotation key with the revision it acts on, read now: the release in
// flight (promote, abort, pause) or the Failed release (retry). An approval given while looking
// at one release can never act on a newer one: Sluice ignores a control naming another revision.
func control(ctx context.Context, cs kubernetes.Interface, ns, name, key string) error {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	st, err := spec.ReadState(d.Annotations)
	if err != nil {
		return err
	}
	rev := st.Revision
	switch {
	case key == spec.AnnRetry && st.Phase != spec.PhaseFailed:
		return fmt.Errorf("no failed release to retry on %s/%s (phase %s)", ns, name, st.Phase)
	case key == spec.AnnRetry:
		rev = spec.TemplateHash(&d.Spec.Template)
	case !st.Phase.InFlight():
		return fmt.Errorf("no release in flight on %s/%s (phase %s)", ns, name, st.Phase)
	}
	return annotate(ctx, cs, ns, name, map[string]any{key: rev})
}

func annotate(ctx context.Context, cs kubernetes.Interface, ns, name string, ann map[string]any) error {
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		return err
	}
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		return err
	}
	keys := make([]string, 0, len(ann))
	for k, v := range ann {
		if v == nil {
			keys = append(keys, k+"-")
		} else {
			keys = append(keys, fmt.Sprintf("%s=%v", k, v))
		}
	}
	fmt.Printf("deployment.apps/%s annotated %s\n", name, strings.Join(keys, " "))
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kubectl sluice:", err)
	os.Exit(1)
}

// describePlan says how the release reaches the canary, e.g. "ab through istio (virtualservice
// shop)" or "canary through replicas".
func describePlan(p *spec.Config) string {
	out := fmt.Sprintf("%s through %s", p.Strategy, p.Router)
	if kind := p.RouteKindOf(); kind != "" {
		route := p.Route
		if route == "" {
			route = "named after the Deployment"
		}
		out += fmt.Sprintf(" (%s %s)", kind, route)
	}
	if a := p.SessionAffinity; a != nil {
		out += fmt.Sprintf(", sessions kept by cookie %s", a.CookieName)
	}
	return out
}
