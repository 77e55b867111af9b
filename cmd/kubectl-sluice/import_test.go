package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportExitCodes: import exits 1 only on input it cannot read; a Canary with fields that
// have no equivalent is converted (exit 0) with the report on stderr, the objects on stdout.
func TestImportExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	canary := `apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: web, namespace: shop}
spec:
  provider: kuma
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80}
  analysis: {interval: 1m, threshold: 2, stepWeight: 20, metrics: [{name: request-success-rate, thresholdRange: {min: 99}}]}
`
	good := write("canary.yaml", canary)
	for name, tc := range map[string]struct {
		args      []string
		stdin     string
		code      int
		out, errs string
		emptyOut  bool
	}{
		"file":  {args: []string{"import", good}, code: exitOK, out: "sluice.dev/router: replicas", errs: "Canary shop/web: spec.provider: kuma: Sluice has no such router"},
		"stdin": {args: []string{"import", "-"}, stdin: canary, code: exitOK, out: "sluice.dev/step-weight: \"20\""},
		"with --deployment": {args: []string{"import", "--deployment", write("d.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {replicas: 3}\n"), good},
			code: exitOK, out: "replicas: 3"},
		"missing file":   {args: []string{"import", filepath.Join(dir, "nope.yaml")}, code: exitFailed, errs: "no such file", emptyOut: true},
		"not YAML":       {args: []string{"import", write("bad.yaml", "kind: [Canary\n")}, code: exitFailed, errs: "document 1", emptyOut: true},
		"not an object":  {args: []string{"import", write("list.yaml", "- a\n- b\n")}, code: exitFailed, errs: "not a YAML object", emptyOut: true},
		"no file":        {args: []string{"import"}, code: exitError, errs: "import needs a file name", emptyOut: true},
		"flag elsewhere": {args: []string{"status", "web", "--deployment", good}, code: exitError, errs: "for import only", emptyOut: true},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, strings.NewReader(tc.stdin), &out, &errOut)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
			if !strings.Contains(out.String(), tc.out) || (tc.emptyOut && out.Len() > 0) {
				t.Errorf("stdout does not hold %q (empty: %v):\n%s", tc.out, tc.emptyOut, out.String())
			}
			if !strings.Contains(errOut.String(), tc.errs) {
				t.Errorf("stderr does not hold %q:\n%s", tc.errs, errOut.String())
			}
		})
	}
}
