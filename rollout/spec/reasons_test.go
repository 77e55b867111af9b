package spec_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// reasonDoc is the shape of a reason's doc comment: its name, then the Event type(s) it is
// emitted with.
var reasonDoc = regexp.MustCompile(`^(Reason\w+) \((Normal|Warning)(?:, or (Normal|Warning)[^)]*)?\): \S`)

// declaredReasons reads reasons.go: every Reason constant and the Event types its doc allows.
func declaredReasons(t *testing.T) map[string][]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "reasons.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string][]string{}
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				continue
			}
			name := vs.Names[0].Name
			m := reasonDoc.FindStringSubmatch(vs.Doc.Text())
			if m == nil || m[1] != name {
				t.Errorf("%s: doc must read %q, got %q", name, name+" (Normal|Warning[, or Normal|Warning …]): when it is emitted", vs.Doc.Text())
				continue
			}
			declared[name] = slices.DeleteFunc([]string{m[2], m[3]}, func(s string) bool { return s == "" })
		}
	}
	if len(declared) == 0 {
		t.Fatal("reasons.go declares no Reason constants")
	}
	return declared
}

// moduleRoot is the directory holding go.mod, above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// emission is one place the code emits an Event: the reason expression and, where the call
// shows it, the Event type.
type emission struct {
	pos    token.Position
	reason ast.Expr
	typ    string // "Normal", "Warning" or "" when the call does not say
	// in is the function the emission is in.
	in string
}

// emitters are the functions whose calls emit or build an Event. One of them may pass its own
// reason parameter on: its callers are checked instead.
var emitters = []string{"Eventf", "Event", "AnnotatedEventf", "normal", "warn", "NormalEvent", "WarningEvent"}

// emissions finds every Event the file emits or builds: Eventf of k8s.io/client-go/tools/events
// (reason after the type), the planner's normal/warn, spec.NormalEvent/WarningEvent, and
// spec.Event literals.
func emissions(fset *token.FileSet, f *ast.File) []emission {
	var out []emission
	for _, decl := range f.Decls {
		in := ""
		if fd, ok := decl.(*ast.FuncDecl); ok {
			in = fd.Name.Name
		}
		for _, e := range emissionsIn(fset, decl) {
			e.in = in
			out = append(out, e)
		}
	}
	return out
}

func emissionsIn(fset *token.FileSet, decl ast.Node) []emission {
	var out []emission
	ast.Inspect(decl, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch name := calleeName(n.Fun); name {
			case "Eventf", "Event", "AnnotatedEventf":
				if len(n.Args) > 3 {
					out = append(out, emission{pos: fset.Position(n.Pos()), reason: n.Args[3], typ: eventType(n.Args[2])})
				}
			case "normal", "NormalEvent", "warn", "WarningEvent":
				if len(n.Args) > 0 {
					typ := "Normal"
					if strings.HasPrefix(name, "warn") || strings.HasPrefix(name, "Warning") {
						typ = "Warning"
					}
					out = append(out, emission{pos: fset.Position(n.Pos()), reason: n.Args[0], typ: typ})
				}
			}
		case *ast.CompositeLit:
			if calleeName(n.Type) != "Event" || len(n.Elts) < 2 {
				return true
			}
			var typ, reason ast.Expr
			if _, ok := n.Elts[0].(*ast.KeyValueExpr); ok {
				for _, e := range n.Elts {
					kv := e.(*ast.KeyValueExpr)
					switch kv.Key.(*ast.Ident).Name {
					case "Type":
						typ = kv.Value
					case "Reason":
						reason = kv.Value
					}
				}
			} else {
				typ, reason = n.Elts[0], n.Elts[1]
			}
			if reason != nil {
				out = append(out, emission{pos: fset.Position(n.Pos()), reason: reason, typ: eventType(typ)})
			}
		}
		return true
	})
	return out
}

func calleeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

// eventType is "Normal" or "Warning" for corev1.EventTypeNormal/Warning, "" for anything else.
func eventType(e ast.Expr) string {
	if s, ok := e.(*ast.SelectorExpr); ok {
		return strings.TrimPrefix(s.Sel.Name, "EventType")
	}
	return ""
}

// TestReasonsDeclared: every Event reason the code emits is a constant declared in reasons.go
// (never a literal, a conversion or a variable: reasons are read back by `kubectl sluice
// history` and users' alerting), emitted with an Event type its doc names, and every declared
// reason is emitted somewhere. Forwarding the Reason of a spec.Event (e.Reason) is allowed.
func TestReasonsDeclared(t *testing.T) {
	declared := declaredReasons(t)
	root := moduleRoot(t)
	used := map[string]bool{}
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		for _, e := range emissions(fset, f) {
			name, ok := reasonConstant(e.reason, f.Name.Name == "spec")
			pos := strings.TrimPrefix(e.pos.String(), root+string(filepath.Separator))
			switch {
			case ok && declared[name] == nil:
				t.Errorf("%s: reason %s is not declared in rollout/spec/reasons.go", pos, name)
			case ok:
				used[name] = true
				if e.typ != "" && !slices.Contains(declared[name], e.typ) {
					t.Errorf("%s: %s emitted as %s, but its doc says %s", pos, name, e.typ, strings.Join(declared[name], " or "))
				}
			case forwarded(e.reason):
			case isIdent(e.reason) && slices.Contains(emitters, e.in):
				// An emitter passing its reason parameter on; its calls are checked.
			default:
				t.Errorf("%s: event reason %s is not a constant of rollout/spec/reasons.go", pos, render(e.reason))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("scanned only %d Go files under %s; the walk is broken", files, root)
	}
	for name := range declared {
		if !used[name] {
			t.Errorf("%s is declared but never emitted; remove it or emit it", name)
		}
	}
}

// reasonConstant names the Reason constant e refers to (spec.ReasonX, string(spec.ReasonX), or
// ReasonX inside package spec).
func reasonConstant(e ast.Expr, inSpec bool) (string, bool) {
	for {
		switch x := e.(type) {
		case *ast.ParenExpr:
			e = x.X
			continue
		case *ast.CallExpr: // string(spec.ReasonX)
			if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "string" && len(x.Args) == 1 {
				e = x.Args[0]
				continue
			}
		case *ast.SelectorExpr:
			if pkg, ok := x.X.(*ast.Ident); ok && pkg.Name == "spec" && strings.HasPrefix(x.Sel.Name, "Reason") {
				return x.Sel.Name, true
			}
		case *ast.Ident:
			if inSpec && strings.HasPrefix(x.Name, "Reason") {
				return x.Name, true
			}
		}
		return "", false
	}
}

// forwarded reports whether e passes on the reason of an Event built elsewhere (e.Reason).
func forwarded(e ast.Expr) bool {
	if c, ok := e.(*ast.CallExpr); ok && len(c.Args) == 1 {
		if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "string" {
			e = c.Args[0]
		}
	}
	s, ok := e.(*ast.SelectorExpr)
	return ok && s.Sel.Name == "Reason"
}

func isIdent(e ast.Expr) bool { _, ok := e.(*ast.Ident); return ok }

func render(e ast.Expr) string {
	if b, ok := e.(*ast.BasicLit); ok {
		return b.Value + " (a literal)"
	}
	return "expression " + exprString(e)
}

func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	case *ast.CallExpr:
		return exprString(x.Fun) + "(…)"
	}
	return "…"
}
