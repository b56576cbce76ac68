// Command mutate completes a Go coverage profile for scripts/mutate.sh: Go's cover tool puts
// the expressions of a switch's case clauses, and those of package-level declarations, in no
// block, so gremlins, which marks a mutant covered only when a block of the profile holds it,
// counts every mutant in a `case x > y:` as not covered and never runs it
// (go-gremlins/gremlins#298). This adds a block for each
// case expression with the count of the block that holds its switch statement: a switch that
// ran evaluates its first case, and a later case that no test reaches is then run as a
// mutant and lives, instead of hiding among the not covered. A package-level `const limit =
// 5 * time.Minute` is likewise run as a mutant: whether a test notices the changed value is
// the question mutation testing asks.
//
//	go run ./scripts/mutate MODULE ROOT PROFILE
//
// rewrites PROFILE in place, reading the sources of MODULE's files below ROOT.
package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: mutate MODULE ROOT PROFILE")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(1)
	}
}

func run(module, root, profile string) error {
	data, err := os.ReadFile(profile)
	if err != nil {
		return err
	}
	out, err := complete(string(data), func(name string) ([]byte, error) {
		rel, ok := strings.CutPrefix(name, module+"/")
		if !ok {
			return nil, nil
		}
		return os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	})
	if err != nil {
		return err
	}
	return os.WriteFile(profile, []byte(out), 0o644)
}

// block is a line of a coverage profile: name:startLine.startCol,endLine.endCol stmts count.
type block struct {
	sl, sc, el, ec int
	count          int
}

func (b block) holds(p token.Position) bool {
	after := p.Line > b.sl || p.Line == b.sl && p.Column >= b.sc
	before := p.Line < b.el || p.Line == b.el && p.Column <= b.ec
	return after && before
}

// complete returns profile with a line added for each case expression of the files that
// read returns (nil for a file to leave alone).
func complete(profile string, read func(name string) ([]byte, error)) (string, error) {
	blocks := map[string][]block{}
	var names []string
	sc := bufio.NewScanner(strings.NewReader(profile))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "mode:") || line == "" {
			continue
		}
		name, b, err := parseLine(line)
		if err != nil {
			return "", err
		}
		if _, seen := blocks[name]; !seen {
			names = append(names, name)
		}
		blocks[name] = append(blocks[name], b)
	}
	var added strings.Builder
	for _, name := range names {
		src, err := read(name)
		if err != nil {
			return "", err
		}
		if src != nil {
			if err := caseBlocks(&added, name, src, blocks[name]); err != nil {
				return "", err
			}
		}
	}
	return strings.TrimRight(profile, "\n") + "\n" + added.String(), nil
}

func parseLine(line string) (string, block, error) {
	var b block
	var stmts int
	i := strings.LastIndex(line, ":")
	if i < 0 {
		return "", b, fmt.Errorf("bad profile line %q", line)
	}
	_, err := fmt.Sscanf(line[i+1:], "%d.%d,%d.%d %d %d", &b.sl, &b.sc, &b.el, &b.ec, &stmts, &b.count)
	if err != nil {
		return "", b, fmt.Errorf("bad profile line %q: %w", line, err)
	}
	return line[:i], b, nil
}

// caseBlocks writes a profile line for each case expression of src's switches, counted as
// the most-run block that holds the switch keyword, and one for each value of its
// package-level var and const declarations, counted as run: the package's initialisation
// (or the compiler) evaluates them whenever its tests run.
func caseBlocks(w *strings.Builder, name string, src []byte, blocks []block) error {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return err
	}
	line := func(e ast.Node, count int) {
		from, to := fset.Position(e.Pos()), fset.Position(e.End())
		fmt.Fprintf(w, "%s:%d.%d,%d.%d 0 %d\n", name, from.Line, from.Column, to.Line, to.Column, count)
	}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && (g.Tok == token.VAR || g.Tok == token.CONST) {
			for _, s := range g.Specs {
				for _, v := range s.(*ast.ValueSpec).Values {
					line(v, 1)
				}
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sw, ok := n.(*ast.SwitchStmt)
		if !ok {
			return true
		}
		count := 0
		at := fset.Position(sw.Switch)
		for _, b := range blocks {
			if b.holds(at) {
				count = max(count, b.count)
			}
		}
		for _, s := range sw.Body.List {
			for _, e := range s.(*ast.CaseClause).List {
				line(e, count)
			}
		}
		return true
	})
	return nil
}
