package flaggerimport

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/providers/builtin"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// convertFile converts testdata/name.yaml (with testdata/name.deployment.yaml as --deployment
// when it exists) and renders what kubectl sluice import prints: the objects, then the report.
func convertFile(t *testing.T, name string) (string, *Result) {
	t.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dep, err := os.ReadFile(filepath.Join("testdata", name+".deployment.yaml"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	res, err := Convert(in, Options{Deployments: dep, Routers: builtin.Routers().Catalog()})
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	var out bytes.Buffer
	if err := Write(&out, res.Objects); err != nil {
		t.Fatal(err)
	}
	out.WriteString("\n# report (stderr):\n")
	for _, f := range res.Findings {
		out.WriteString("# " + f.String() + "\n")
	}
	return out.String(), res
}

// TestGolden: one Canary per router and strategy (canary, blue/green, A/B, mirror, session
// affinity, webhooks, alerts, MetricTemplates with variables) and what import writes for it.
// Run with -update to rewrite testdata/*.golden after a deliberate change.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		if strings.HasSuffix(name, ".deployment") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			got, res := convertFile(t, name)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("import %s (-want +got):\n%s", in, diff)
			}
			if name != "daemonset-and-unknown" {
				for _, tr := range res.Traces {
					if len(tr.Unknown) > 0 {
						t.Errorf("%s: fields reported as unknown: %q", tr.Source, tr.Unknown)
					}
				}
			}
		})
	}
}

// TestEveryFieldMappedOrReported walks every leaf of every input object (independently of the
// conversion's own bookkeeping) and requires each to be mapped somewhere or named in a finding.
func TestEveryFieldMappedOrReported(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/*.yaml")
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		if strings.HasSuffix(name, ".deployment") {
			continue
		}
		_, res := convertFile(t, name)
		for _, tr := range res.Traces {
			for _, leaf := range Leaves(tr.Object) {
				if !Covered(tr, leaf, res.Findings) {
					t.Errorf("%s: %s: %s is neither mapped nor reported", in, tr.Source, leaf)
				}
			}
		}
	}
}

// FuzzConvert: any input either is refused as unreadable or converts without a panic, and
// every leaf of every input object is mapped or reported; the output renders as YAML.
func FuzzConvert(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/*.yaml")
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	routers := builtin.Routers().Catalog()
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := Convert(in, Options{Routers: routers})
		if err != nil {
			return
		}
		for _, tr := range res.Traces {
			for _, leaf := range Leaves(tr.Object) {
				if !Covered(tr, leaf, res.Findings) {
					t.Errorf("%s: %s neither mapped nor reported", tr.Source, leaf)
				}
			}
		}
		if err := Write(io.Discard, res.Objects); err != nil {
			t.Errorf("Write: %v", err)
		}
	})
}
