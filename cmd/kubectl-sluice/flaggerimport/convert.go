package flaggerimport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/rollout/spec"
)

// Options are what a conversion needs beyond the input.
type Options struct {
	// Deployments is a YAML stream holding the user's Deployment manifests (--deployment): a
	// Canary's target found there (or in the input itself) is written out whole with Sluice's
	// label and annotations merged in; otherwise only those are written, as a patch.
	Deployments []byte
	// MeshProvider is the provider of a Canary that names none: Flagger's -mesh-provider
	// flag. Empty: gatewayapi for a Canary with gatewayRefs, nginx for one with an ingressRef,
	// else istio (Flagger's default).
	MeshProvider string
	// Routers is the catalog the annotations are validated against (the routers Sluice
	// offers).
	Routers spec.Routers
}

// Object is one object of the output, with a comment saying where it came from.
type Object struct {
	Comment string
	Object  map[string]any
}

// Finding is an input field with no equivalent in Sluice (or that Sluice would refuse as
// converted), named by its object and path.
type Finding struct {
	Source  string
	Field   string
	Message string
}

func (f Finding) String() string {
	if f.Field == "" {
		return f.Source + ": " + f.Message
	}
	return f.Source + ": " + f.Field + ": " + f.Message
}

// Trace is what became of each field of one input object: Mapped (path → where it went),
// Reported (paths with a Finding), Unknown (leaves in neither set, reported as unknown fields).
type Trace struct {
	Source   string
	Kind     string
	Object   map[string]any
	Mapped   map[string]string
	Reported map[string]bool
	Unknown  []string
}

// Result is a conversion's output.
type Result struct {
	Objects  []Object
	Findings []Finding
	Traces   []Trace
	// Canaries is how many Canary objects the input held.
	Canaries int
}

// flaggerGroup is the API group of Flagger's objects.
const flaggerGroup = "flagger.app"

// Convert reads a YAML stream (one or more documents, or a List) of Flagger objects and
// converts each Canary, MetricTemplate and AlertProvider. Other objects are left out with a
// finding. The error is for input that is not YAML objects; anything else is a finding.
func Convert(input []byte, opts Options) (*Result, error) {
	docs, err := decodeStream(input)
	if err != nil {
		return nil, err
	}
	deployments, err := decodeStream(opts.Deployments)
	if err != nil {
		return nil, fmt.Errorf("--deployment: %w", err)
	}
	var users []map[string]any
	for _, d := range append(deployments, docs...) {
		if kindOf(d) == "apps/Deployment" {
			users = append(users, d)
		}
	}
	res := &Result{}
	for _, obj := range docs {
		gk := kindOf(obj)
		d := newDoc(sourceOf(obj), obj)
		switch gk {
		case flaggerGroup + "/Canary":
			res.Canaries++
			c := &canary{d: d, opts: opts, users: users}
			res.Objects = append(res.Objects, c.convert()...)
		case flaggerGroup + "/MetricTemplate":
			res.Objects = append(res.Objects, metricTemplate(d)...)
		case flaggerGroup + "/AlertProvider":
			res.Objects = append(res.Objects, alertProvider(d)...)
		case "apps/Deployment":
			// Read as the target of a Canary (users above); written out with it.
			d.top().to("(the Canary's target, written with Sluice's label and annotations)")
		default:
			d.top().report("not a Flagger object; left out of the output (apply it as before)")
		}
		for _, path := range d.uncovered() {
			node{d: d, path: path}.report("a field this version of kubectl sluice import does not know; not converted")
		}
		res.Findings = append(res.Findings, d.findings...)
		res.Traces = append(res.Traces, Trace{Source: d.source, Kind: gk, Object: obj, Mapped: d.mapped, Reported: d.reported, Unknown: unknownOf(d)})
	}
	return res, nil
}

// unknownOf lists the paths reported as unknown fields.
func unknownOf(d *doc) []string {
	var out []string
	for _, f := range d.findings {
		if strings.HasPrefix(f.Message, "a field this version") {
			out = append(out, f.Field)
		}
	}
	return out
}

// decodeStream splits a YAML stream into objects; Lists are expanded, empty documents skipped.
func decodeStream(b []byte) ([]map[string]any, error) {
	var out []map[string]any
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for n := 1; ; n++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		switch obj := v.(type) {
		case nil:
			continue
		case map[string]any:
			if items, ok := obj["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(obj["kind"]), "List") {
				for i, it := range items {
					m, ok := it.(map[string]any)
					if !ok {
						return nil, fmt.Errorf("document %d: items[%d] is not an object", n, i)
					}
					out = append(out, m)
				}
				continue
			}
			if _, ok := obj["kind"].(string); !ok {
				return nil, fmt.Errorf("document %d: not a Kubernetes object (no kind)", n)
			}
			out = append(out, obj)
		default:
			return nil, fmt.Errorf("document %d: not a YAML object", n)
		}
	}
}

// kindOf is "group/Kind" of an object ("apps/Deployment", "flagger.app/Canary"; "/Service" for
// the core group).
func kindOf(obj map[string]any) string {
	av, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, _, found := strings.Cut(av, "/")
	if !found {
		group = ""
	}
	return group + "/" + kind
}

// sourceOf names an object in findings: "Canary test/podinfo".
func sourceOf(obj map[string]any) string {
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if ns, _ := meta["namespace"].(string); ns != "" {
		name = ns + "/" + name
	}
	if name == "" {
		name = "(no name)"
	}
	return kind + " " + name
}

// Write renders objects as a YAML stream, each preceded by its comment.
func Write(w io.Writer, objs []Object) error {
	for i, o := range objs {
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		for _, line := range strings.Split(strings.TrimSpace(o.Comment), "\n") {
			if line != "" {
				fmt.Fprintln(w, "# "+line)
			}
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
