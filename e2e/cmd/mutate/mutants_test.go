package main

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `package p

func f(a, b int, ok bool) bool {
	if a < 3 && ok {
		a++
		return true
	}
	switch {
	case ok:
		b = a
	}
	x := a == b
	return x
}
`

func TestGenerate(t *testing.T) {
	ms, err := generate("p/p.go", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.String())
		if _, err := parser.ParseFile(token.NewFileSet(), "m.go", m.Src, 0); err != nil {
			t.Errorf("%s: mutant does not parse: %v", m, err)
		}
		if string(m.Src) == sample {
			t.Errorf("%s: mutant is the original", m)
		}
	}
	want := []string{
		"p/p.go:4:5: negate if condition",
		"p/p.go:4:7: < → <=",
		"p/p.go:4:7: < → >=",
		"p/p.go:4:9: constant 3 → 4 in <",
		"p/p.go:4:9: constant 3 → 2 in <",
		"p/p.go:4:11: && → ||",
		"p/p.go:4:17: empty if body",
		"p/p.go:5:3: remove statement in if body: a++",
		"p/p.go:6:3: remove statement in if body: return true",
		"p/p.go:6:10: negate returned bool",
		"p/p.go:9:7: negate case condition",
		"p/p.go:10:3: remove statement in case: b = a",
		"p/p.go:12:9: == → !=",
		"p/p.go:13:9: negate returned bool",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mutants (-want +got):\n%s", diff)
	}
	for _, m := range ms {
		if m.Desc == "< → >=" && !strings.Contains(string(m.Src), "a >= 3 && ok") {
			t.Errorf("%s: source does not carry the mutation:\n%s", m, m.Src)
		}
		if m.Desc == "negate returned bool" && m.Line == 13 && !strings.Contains(string(m.Src), "return !(x)") {
			t.Errorf("%s: source does not carry the mutation:\n%s", m, m.Src)
		}
	}
}

func TestGenerateLeavesDeclarations(t *testing.T) {
	ms, err := generate("p.go", []byte("package p\n\nfunc f(a int) int {\n\tif a > 0 {\n\t\tb := a\n\t\treturn b\n\t}\n\treturn 0\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.Contains(m.Desc, "b := a") {
			t.Errorf("a declaration was removed: %s", m)
		}
	}
}
