// Command kubectl-sluice is the kubectl plugin for Sluice: it reads releases from the
// Deployments' state annotation and Events, and writes the manual control annotations for you.
//
//	kubectl sluice status NAME      phase, weight, last check readings, message
//	kubectl sluice list             every opted-in Deployment and its release (-A: all namespaces)
//	kubectl sluice watch NAME       follow the release until it ends; exit 0 promoted, 1 rolled
//	                                back or failed, 2 error or --timeout
//	kubectl sluice history NAME     past releases, newest first
//	kubectl sluice promote NAME     approve the revision in flight (bound to that revision)
//	kubectl sluice abort NAME       roll the release in flight back
//	kubectl sluice pause NAME       stop stepping and analysing; resume continues
//	kubectl sluice resume NAME
//	kubectl sluice retry NAME       start again the release of the template that failed
//	kubectl sluice approve NAME     open, once, the gate the revision in flight waits at
//	kubectl sluice halt NAME        close every gate of the revision in flight; unhalt reopens
//	kubectl sluice unhalt NAME
//	kubectl sluice import FILE|-    convert Flagger's Canary, MetricTemplate and AlertProvider
//	                                manifests to Sluice's (stdout) and report what has no
//	                                equivalent (stderr)
//
// The verbs that read (status, list, history) print kubectl-style tables, or -o json|yaml.
// See docs/plugin.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const usage = `usage: kubectl sluice [flags] VERB [NAME]

verbs:
  status NAME    the release of Deployment NAME (phase, weight, checks, message)
  list           opted-in Deployments and their releases
  watch NAME     follow the release until it ends; exit code 0 promoted, 1 rolled back or
                 failed, 2 error or timeout (for CI pipelines)
  history NAME   past releases: revision, image, outcome, duration, reason (newest first)
  promote NAME   approve the revision in flight
  abort NAME     roll the release in flight back
  pause NAME     pause the release in flight
  resume NAME    resume a paused release
  retry NAME     release again the template that failed
  approve NAME   open, once, the confirm gate the revision in flight waits at (or meets next)
  halt NAME      close every confirm gate of the revision in flight: it waits before its next
                 weight and before promotion, analysis going on, until unhalt
  unhalt NAME    remove the halt
  import FILE|-  convert Flagger Canary, MetricTemplate and AlertProvider manifests to Sluice's:
                 objects on stdout, one line per field without an equivalent on stderr

flags:
`

// Exit codes. watch reports a release's outcome with them; every other verb exits exitFailed
// on an error.
const (
	exitOK     = 0
	exitFailed = 1
	exitError  = 2
)

// options are the command line.
type options struct {
	namespace     string
	allNamespaces bool
	kubeconfig    string
	context       string
	output        string
	timeout       time.Duration
	verb, name    string
	// import
	deployment, meshProvider string
}

func (o *options) addFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's)")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list: every namespace")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&o.context, "context", "", "kubeconfig context")
	fs.StringVarP(&o.output, "output", "o", "", "status, list, history: json or yaml instead of a table")
	fs.DurationVar(&o.timeout, "timeout", 0, "watch: give up after this long with exit code 2 (0: wait until the release ends)")
	fs.StringVar(&o.deployment, "deployment", "", "import: a file with your Deployment manifest(s), written out whole with Sluice's label and annotations")
	fs.StringVar(&o.meshProvider, "mesh-provider", "", "import: the provider of a Canary that names none, as Flagger's -mesh-provider (default: gatewayapi with gatewayRefs, nginx with an ingressRef, else istio)")
}

func (o *options) validate() error {
	switch o.verb {
	case "":
		return errors.New("no verb given")
	case "list":
	case "status", "watch", "history", "promote", "abort", "pause", "resume", "retry", "approve", "halt", "unhalt":
		if o.name == "" {
			return fmt.Errorf("%s needs a Deployment name", o.verb)
		}
	case "import":
		if o.name == "" {
			return fmt.Errorf("import needs a file name, or - for stdin")
		}
	default:
		return fmt.Errorf("unknown verb %q", o.verb)
	}
	if o.output != "" && o.output != "json" && o.output != "yaml" {
		return fmt.Errorf("-o %s: must be json or yaml", o.output)
	}
	if o.allNamespaces && o.verb != "list" {
		return fmt.Errorf("-A is for list only")
	}
	if (o.deployment != "" || o.meshProvider != "") && o.verb != "import" {
		return fmt.Errorf("--deployment and --mesh-provider are for import only")
	}
	if o.timeout < 0 {
		return fmt.Errorf("--timeout must not be negative")
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o options
	fs := pflag.NewFlagSet("kubectl-sluice", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage+fs.FlagUsages()) }
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitError
	}
	rest := fs.Args()
	if len(rest) > 0 {
		o.verb = rest[0]
	}
	if len(rest) > 1 {
		o.name = rest[1]
	}
	if len(rest) > 2 {
		fmt.Fprintf(stderr, "kubectl sluice: unexpected arguments %q\n", rest[2:])
		return exitError
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "kubectl sluice: %v\n%s", err, usage+fs.FlagUsages())
		return exitError
	}

	if o.verb == "import" {
		// Needs no cluster.
		return importFlagger(o.name, o, stdin, stdout, stderr)
	}

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.context})
	ns, _, err := cc.Namespace()
	if err != nil {
		return fail(stderr, o.verb, err)
	}
	if o.namespace != "" {
		ns = o.namespace
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fail(stderr, o.verb, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail(stderr, o.verb, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch o.verb {
	case "watch":
		return watchRelease(ctx, cs, ns, o.name, o.timeout, stdout, stderr, terminalWidth(stdout))
	case "status":
		err = status(ctx, cs, ns, o.name, o.output, stdout)
	case "list":
		if o.allNamespaces {
			ns = ""
		}
		err = list(ctx, cs, ns, o.output, stdout)
	case "history":
		err = history(ctx, cs, ns, o.name, o.output, stdout)
	default:
		err = control(ctx, cs, ns, o.name, o.verb, stdout)
	}
	if err != nil {
		return fail(stderr, o.verb, err)
	}
	return exitOK
}

func fail(stderr io.Writer, verb string, err error) int {
	fmt.Fprintln(stderr, "kubectl sluice:", err)
	if verb == "watch" {
		return exitError
	}
	return exitFailed
}

// terminalWidth is the width of the terminal w writes to, where watch redraws one line instead
// of printing one line per change; 0 when w is not a terminal.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		return 80
	}
	return width
}
