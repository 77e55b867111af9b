package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"sort"
	"strconv"
)

// mutant is one deliberate bug in one file.
type mutant struct {
	// File is the path shown in reports (relative to the module root); Line is where the
	// mutation is.
	File      string
	Line, Col int
	// Desc says what was changed, e.g. "< → <=".
	Desc string
	// Src is the whole mutated file.
	Src []byte
}

func (m mutant) String() string { return fmt.Sprintf("%s:%d:%d: %s", m.File, m.Line, m.Col, m.Desc) }

// site is a mutation not yet applied: apply changes the syntax tree in place and returns the
// function that puts it back.
type site struct {
	pos   token.Pos
	desc  string
	apply func() (undo func())
}

// generate returns every mutant of one Go source file, in source order. Mutants whose printed
// source is the same as an earlier one's (or as the original's) are dropped.
func generate(name string, src []byte) ([]mutant, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	orig, err := render(fset, f)
	if err != nil {
		return nil, err
	}
	c := &collector{}
	c.file(f)
	sort.SliceStable(c.sites, func(i, j int) bool { return c.sites[i].pos < c.sites[j].pos })

	seen := map[string]bool{string(orig): true}
	var out []mutant
	for _, s := range c.sites {
		undo := s.apply()
		b, err := render(fset, f)
		undo()
		if err != nil {
			return nil, fmt.Errorf("%s: print mutant %q: %w", fset.Position(s.pos), s.desc, err)
		}
		if seen[string(b)] {
			continue
		}
		seen[string(b)] = true
		pos := fset.Position(s.pos)
		out = append(out, mutant{File: name, Line: pos.Line, Col: pos.Column, Desc: s.desc, Src: b})
	}
	// The tree must be back as it was: a leaked mutation would spoil every later mutant.
	if again, err := render(fset, f); err != nil || !bytes.Equal(again, orig) {
		return nil, fmt.Errorf("%s: internal error: a mutation was not undone", name)
	}
	return out, nil
}

func render(fset *token.FileSet, f *ast.File) ([]byte, error) {
	var buf bytes.Buffer
	if err := (&printer.Config{Mode: printer.UseSpaces | printer.TabIndent, Tabwidth: 8}).Fprint(&buf, fset, f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// collector walks a file and records the mutation sites.
type collector struct {
	sites []site
	// results are the result types of the innermost enclosing function (nil outside one).
	results []ast.Expr
}

func (c *collector) add(pos token.Pos, desc string, apply func() func()) {
	c.sites = append(c.sites, site{pos: pos, desc: desc, apply: apply})
}

func (c *collector) file(f *ast.File) {
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		c.function(fd.Type, fd.Body)
	}
}

// function walks a function body with its result types in scope for return mutations.
func (c *collector) function(typ *ast.FuncType, body *ast.BlockStmt) {
	saved := c.results
	c.results = nil
	if typ.Results != nil {
		for _, fl := range typ.Results.List {
			n := max(len(fl.Names), 1)
			for range n {
				c.results = append(c.results, fl.Type)
			}
		}
	}
	ast.Inspect(body, c.visit)
	c.results = saved
}

// comparisons maps each comparison to its boundary and negated forms.
var comparisons = map[token.Token][]token.Token{
	token.LSS: {token.LEQ, token.GEQ},
	token.LEQ: {token.LSS, token.GTR},
	token.GTR: {token.GEQ, token.LEQ},
	token.GEQ: {token.GTR, token.LSS},
	token.EQL: {token.NEQ},
	token.NEQ: {token.EQL},
}

func (c *collector) visit(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.FuncLit:
		c.function(n.Type, n.Body)
		return false

	case *ast.BinaryExpr:
		c.binary(n)

	case *ast.IfStmt:
		c.ifStmt(n)

	case *ast.SwitchStmt:
		if n.Tag == nil {
			// A tagless switch is an if/else chain: negate each case's condition.
			for _, cc := range n.Body.List {
				cc := cc.(*ast.CaseClause)
				for i, e := range cc.List {
					if isComparison(e) {
						continue // the comparison's own negation covers it
					}
					c.add(e.Pos(), "negate case condition", func() func() {
						old := cc.List[i]
						cc.List[i] = not(old)
						return func() { cc.List[i] = old }
					})
				}
			}
		}
		for _, cc := range n.Body.List {
			c.branch(&cc.(*ast.CaseClause).Body, "case")
		}

	case *ast.TypeSwitchStmt:
		for _, cc := range n.Body.List {
			c.branch(&cc.(*ast.CaseClause).Body, "case")
		}

	case *ast.ReturnStmt:
		c.returnStmt(n)
	}
	return true
}

func (c *collector) binary(b *ast.BinaryExpr) {
	switch b.Op {
	case token.LAND, token.LOR:
		to := token.LOR
		if b.Op == token.LOR {
			to = token.LAND
		}
		c.add(b.OpPos, fmt.Sprintf("%s → %s", b.Op, to), setOp(b, to))
		return
	}
	tos, ok := comparisons[b.Op]
	if !ok {
		return
	}
	for _, to := range tos {
		c.add(b.OpPos, fmt.Sprintf("%s → %s", b.Op, to), setOp(b, to))
	}
	// Off-by-one on an integer constant compared with.
	for _, side := range []*ast.Expr{&b.X, &b.Y} {
		lit, ok := (*side).(*ast.BasicLit)
		if !ok || lit.Kind != token.INT {
			continue
		}
		v, err := strconv.ParseInt(lit.Value, 0, 64)
		if err != nil {
			continue
		}
		for _, d := range []int64{+1, -1} {
			nv := strconv.FormatInt(v+d, 10)
			c.add(lit.Pos(), fmt.Sprintf("constant %s → %s in %s", lit.Value, nv, b.Op), func() func() {
				old := lit.Value
				lit.Value = nv
				return func() { lit.Value = old }
			})
		}
	}
}

func setOp(b *ast.BinaryExpr, to token.Token) func() func() {
	return func() func() {
		old := b.Op
		b.Op = to
		return func() { b.Op = old }
	}
}

func (c *collector) ifStmt(s *ast.IfStmt) {
	if !isComparison(s.Cond) {
		c.add(s.Cond.Pos(), "negate if condition", func() func() {
			old := s.Cond
			s.Cond = not(old)
			return func() { s.Cond = old }
		})
	}
	if len(s.Body.List) > 1 {
		c.add(s.Body.Pos(), "empty if body", func() func() {
			old := s.Body.List
			s.Body.List = nil
			return func() { s.Body.List = old }
		})
	}
	c.branch(&s.Body.List, "if body")
	if e, ok := s.Else.(*ast.BlockStmt); ok {
		c.branch(&e.List, "else body")
	}
}

// branch adds the removal of each statement of a branch body that can go without breaking the
// build (declarations cannot).
func (c *collector) branch(list *[]ast.Stmt, where string) {
	for i, st := range *list {
		if !removable(st) {
			continue
		}
		c.add(st.Pos(), "remove statement in "+where+": "+brief(st), func() func() {
			old := *list
			next := make([]ast.Stmt, 0, len(old)-1)
			next = append(next, old[:i]...)
			next = append(next, old[i+1:]...)
			*list = next
			return func() { *list = old }
		})
	}
}

func removable(st ast.Stmt) bool {
	switch st := st.(type) {
	case *ast.ExprStmt, *ast.IncDecStmt, *ast.ReturnStmt, *ast.SendStmt, *ast.IfStmt:
		return true
	case *ast.BranchStmt:
		return st.Tok == token.BREAK || st.Tok == token.CONTINUE
	case *ast.AssignStmt:
		return st.Tok != token.DEFINE
	}
	return false
}

// brief is a statement's first line, shortened, for reports.
func brief(st ast.Stmt) string {
	var buf bytes.Buffer
	if err := printer.Fprint(&buf, token.NewFileSet(), st); err != nil {
		return fmt.Sprintf("%T", st)
	}
	s := buf.String()
	if i := bytes.IndexByte(buf.Bytes(), '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "…"
	}
	return s
}

// returnStmt negates each boolean result of a return.
func (c *collector) returnStmt(r *ast.ReturnStmt) {
	if len(r.Results) != len(c.results) {
		return // a bare return of named results, or a call returning several values
	}
	for i, t := range c.results {
		if id, ok := t.(*ast.Ident); !ok || id.Name != "bool" {
			continue
		}
		c.add(r.Results[i].Pos(), "negate returned bool", func() func() {
			old := r.Results[i]
			r.Results[i] = not(old)
			return func() { r.Results[i] = old }
		})
	}
}

func isComparison(e ast.Expr) bool {
	b, ok := e.(*ast.BinaryExpr)
	return ok && comparisons[b.Op] != nil
}

// not is !(e).
func not(e ast.Expr) ast.Expr {
	return &ast.UnaryExpr{Op: token.NOT, X: &ast.ParenExpr{X: e}}
}
