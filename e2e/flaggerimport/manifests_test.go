package flaggerimport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Where Flagger's repository publishes Canary manifests, as its Go module carries it.
var publishedDirs = []string{"docs", "kustomize", "test", "artifacts", "charts"}

// snippet is one YAML stream holding at least one Canary, found in Flagger's module.
type snippet struct {
	// where: the file, relative to the module, and the line the stream starts on.
	where string
	yaml  []byte
	// err: the stream is not YAML (a documentation fragment with placeholders).
	err error
}

var (
	fence      = regexp.MustCompile("^\\s*```\\s*([A-Za-z]*)\\s*$")
	heredoc    = regexp.MustCompile(`<<-?\s*['"]?([A-Z_]+)['"]?`)
	canaryKind = regexp.MustCompile(`(?m)^\s*kind:\s*Canary\s*$`)
)

// findSnippets walks the module's published directories and README: YAML files whole, YAML
// blocks of Markdown, here-documents of shell scripts. A Helm chart's templates are rendered
// by render (nil: skipped and counted). Only streams mentioning `kind: Canary` are kept.
func findSnippets(modDir string, render func(chart string) ([]byte, error)) ([]snippet, map[string]int, error) {
	var out []snippet
	files := map[string]int{}
	charts := map[string]bool{}
	add := func(where string, b []byte) {
		if !canaryKind.Match(b) {
			return
		}
		objs, err := parseStream(b)
		if err == nil && !slices.ContainsFunc(objs, isCanary) {
			return // names a Canary (an owner reference, a CRD) without being one
		}
		out = append(out, snippet{where: where, yaml: b, err: err})
	}
	roots := append(slices.Clone(publishedDirs), "README.md")
	for _, root := range roots {
		err := filepath.WalkDir(filepath.Join(modDir, root), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(modDir, path)
			top := strings.SplitN(rel, string(filepath.Separator), 2)[0]
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			switch ext := filepath.Ext(path); {
			case strings.Contains(rel, string(filepath.Separator)+"templates"+string(filepath.Separator)):
				if chart := filepath.Dir(filepath.Dir(path)); canaryKind.Match(b) {
					charts[chart] = true
				}
				files[top]++
			case ext == ".yaml" || ext == ".yml":
				if strings.HasSuffix(rel, "crd.yaml") {
					files[top]++
					return nil // the Canary CRD itself, not a Canary
				}
				add(rel, b)
				files[top]++
			case ext == ".md":
				for _, s := range markdownBlocks(b) {
					add(fmt.Sprintf("%s:%d", rel, s.line), s.text)
				}
				files[top]++
			case ext == ".sh":
				for _, s := range hereDocs(b) {
					add(fmt.Sprintf("%s:%d", rel, s.line), s.text)
				}
				files[top]++
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
	}
	for _, chart := range slices.Sorted(maps.Keys(charts)) {
		rel, _ := filepath.Rel(modDir, chart)
		if render == nil {
			files["charts not rendered"]++
			continue
		}
		b, err := render(chart)
		if err != nil {
			return nil, nil, fmt.Errorf("render %s: %w", rel, err)
		}
		add(rel+" (helm template)", b)
	}
	return out, files, nil
}

func isCanary(o map[string]any) bool {
	av, _ := o["apiVersion"].(string)
	return strings.HasPrefix(av, "flagger.app/") && o["kind"] == "Canary"
}

type block struct {
	line int
	text []byte
}

// markdownBlocks are the fenced code blocks of a Markdown file tagged yaml or yml, or untagged
// ones that hold a Kubernetes object.
func markdownBlocks(b []byte) []block {
	var out []block
	var cur *block
	var lang string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			if cur == nil {
				cur, lang = &block{line: n + 1}, strings.ToLower(m[1])
				continue
			}
			if lang == "yaml" || lang == "yml" || (lang == "" && bytes.Contains(cur.text, []byte("apiVersion:"))) {
				out = append(out, *cur)
			}
			cur = nil
			continue
		}
		if cur != nil {
			cur.text = append(cur.text, line+"\n"...)
		}
	}
	return out
}

// hereDocs are the here-documents of a shell script (cat <<EOF | kubectl apply -f -).
func hereDocs(b []byte) []block {
	var out []block
	var cur *block
	var end string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if cur != nil {
			if strings.TrimSpace(line) == end {
				out = append(out, *cur)
				cur = nil
				continue
			}
			cur.text = append(cur.text, line+"\n"...)
			continue
		}
		if m := heredoc.FindStringSubmatch(line); m != nil {
			cur, end = &block{line: n + 1}, m[1]
		}
	}
	return out
}

// parseStream decodes a YAML stream into objects (documents that are not maps are an error).
func parseStream(b []byte) ([]map[string]any, error) {
	var out []map[string]any
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		switch obj := v.(type) {
		case nil:
		case map[string]any:
			out = append(out, obj)
		default:
			return nil, fmt.Errorf("a document is not an object")
		}
	}
}

// moduleDir is where the Go module cache holds Flagger at the version e2e/tools/flagger pins
// (go mod download in that module, so its go.sum vouches for the content).
func moduleDir(repo string) (dir, version string, err error) {
	tools := filepath.Join(repo, "e2e", "tools", "flagger")
	gomod, err := os.ReadFile(filepath.Join(tools, "go.mod"))
	if err != nil {
		return "", "", err
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/fluxcd/flagger (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		return "", "", errors.New("e2e/tools/flagger/go.mod requires no github.com/fluxcd/flagger")
	}
	version = string(m[1])
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/fluxcd/flagger@"+version)
	cmd.Dir, cmd.Env = tools, append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("go mod download flagger %s: %w", version, err)
	}
	var mod struct{ Dir string }
	if err := yaml.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", "", fmt.Errorf("go mod download named no directory: %s", out)
	}
	return mod.Dir, version, nil
}
