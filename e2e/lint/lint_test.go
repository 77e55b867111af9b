package lint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-dev/sluice/e2e/cluster"
)

// planted is one violation written into the copy and the finding it must produce.
type planted struct {
	file, src string
	// want lists (line, linter, text that the message must contain) per finding.
	want []finding
}

type finding struct {
	File   string
	Line   int
	Linter string
	Text   string
}

// The violations of issue 13, each in a file of its own so that the rest of the package (which
// other changes rewrite) can stay as it is.
var plants = []planted{
	{
		// rollout/plan is pure: no API client, and nothing of ours but rollout/spec.
		file: "rollout/plan/zz_planted_layering.go",
		src: `package plan

import (
	_ "sigs.k8s.io/controller-runtime/pkg/client"

	_ "github.com/sluice-dev/sluice/providers/metrics"
)
`,
		want: []finding{
			{Line: 4, Linter: "depguard", Text: "import 'sigs.k8s.io/controller-runtime/pkg/client' is not allowed from list 'pure'"},
			{Line: 6, Linter: "depguard", Text: "import 'github.com/sluice-dev/sluice/providers/metrics' is not allowed from list 'pure'"},
		},
	},
	{
		// The planner is given now; it never reads the clock.
		file: "rollout/plan/zz_planted_clock.go",
		src: `package plan

import "time"

func PlantedNow() time.Time { return time.Now() }
`,
		want: []finding{
			{Line: 5, Linter: "forbidigo", Text: "use of `time.Now` forbidden"},
		},
	},
	{
		// … under any import name.
		file: "rollout/plan/zz_planted_clock_alias.go",
		src: `package plan

import clock "time"

func PlantedSince(t clock.Time) clock.Duration { return clock.Since(t) }
`,
		want: []finding{
			{Line: 5, Linter: "forbidigo", Text: "use of `clock.Since` forbidden"},
		},
	},
	{
		// Routers import only rollout/spec and providers/routers of ours.
		file: "providers/routers/istio/zz_planted_layering.go",
		src: `package istio

import _ "github.com/sluice-dev/sluice/rollout/plan"
`,
		want: []finding{
			{Line: 3, Linter: "depguard", Text: "import 'github.com/sluice-dev/sluice/rollout/plan' is not allowed from list 'routers'"},
		},
	},
}

// TestLintCatchesLayeringAndClock runs the pinned golangci-lint with the repository's
// configuration on a copy of the tree: the packages it plants violations in must be clean as
// they are, and each violation must then be reported by the intended linter, and nothing else.
func TestLintCatchesLayeringAndClock(t *testing.T) {
	if testing.Short() {
		t.Skip("builds golangci-lint on first use (~1.5 min) and lints a copy of the tree")
	}
	bin, err := cluster.EnsureGolangciLint(t.Context(), cluster.Options{Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := copyTree(root, dir); err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, p := range plants {
		if pkg := "./" + filepath.Dir(p.file); !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
	}

	if got := lint(t, bin, dir, pkgs); len(got) > 0 {
		t.Fatalf("golangci-lint reports findings in %v before anything is planted:\n%s", pkgs, describe(got))
	}

	var want []finding
	for _, p := range plants {
		if err := os.WriteFile(filepath.Join(dir, p.file), []byte(p.src), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, f := range p.want {
			f.File = p.file
			want = append(want, f)
		}
	}
	got := lint(t, bin, dir, pkgs)
	// Compare the message by containment: the rest of it is the rule's description.
	for i := range got {
		for _, w := range want {
			if got[i].File == w.File && got[i].Line == w.Line && strings.Contains(got[i].Text, w.Text) {
				got[i].Text = w.Text
			}
		}
	}
	sortFindings(got)
	sortFindings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings on the planted violations (-want +got):\n%s", diff)
	}
}

// lint runs golangci-lint in dir on pkgs and returns its findings (paths relative to dir).
func lint(t *testing.T, bin, dir string, pkgs []string) []finding {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	args := append([]string{"run", "--output.json.path=" + report}, pkgs...)
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("golangci-lint %s:\n%s", strings.Join(args, " "), out)
	var exit *exec.ExitError
	// Exit status 1 means "issues found"; anything else is a failure to lint.
	if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
		t.Fatalf("golangci-lint %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	data, readErr := os.ReadFile(report)
	if readErr != nil {
		t.Fatalf("golangci-lint %s: %v", strings.Join(args, " "), readErr)
	}
	var rep struct {
		Issues []struct {
			FromLinter string
			Text       string
			Pos        struct {
				Filename string
				Line     int
			}
		}
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("golangci-lint %s: decode its JSON report: %v\n%s", strings.Join(args, " "), err, data)
	}
	if err != nil && len(rep.Issues) == 0 {
		t.Fatalf("golangci-lint %s: %v without findings\n%s", strings.Join(args, " "), err, out)
	}
	var got []finding
	for _, is := range rep.Issues {
		name := filepath.ToSlash(is.Pos.Filename)
		if rel, err := filepath.Rel(dir, is.Pos.Filename); err == nil && filepath.IsAbs(is.Pos.Filename) {
			name = filepath.ToSlash(rel)
		}
		got = append(got, finding{File: name, Line: is.Pos.Line, Linter: is.FromLinter, Text: is.Text})
	}
	return got
}

func sortFindings(fs []finding) {
	slices.SortFunc(fs, func(a, b finding) int {
		return strings.Compare(fmt.Sprintf("%s:%06d:%s", a.File, a.Line, a.Text), fmt.Sprintf("%s:%06d:%s", b.File, b.Line, b.Text))
	})
}

func describe(fs []finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s:%d: %s (%s)\n", f.File, f.Line, f.Text, f.Linter)
	}
	return b.String()
}

// copyTree copies the module source at src into dst, without .git, bin/ and .local/.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		switch rel {
		case ".git", "bin", ".local":
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // a worktree's .git is a file
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil // symlinks and the like are not source
	})
}

// testWriter sends build progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
