package main

import (
	"strings"
	"testing"
)

const src = `package p

func size(n int) string {
	switch {
	case n > 10:
		return "big"
	case n > 0 && n%2 == 0:
		return "even"
	}
	return "none"
}

func never(n int) bool {
	switch n {
	case 1, n - 2:
		return true
	}
	return false
}

var limit, other = 5 * 60, 2 - 1
`

// The blocks go test -coverprofile writes for src when size ran and never did not: none
// holds a case expression or a package-level value.
const profile = `mode: set
m/p/p.go:3.27,4.9 1 1
m/p/p.go:5.13,6.15 1 1
m/p/p.go:7.25,8.16 1 0
m/p/p.go:10.2,10.15 1 1
m/p/p.go:13.24,14.11 1 0
m/p/p.go:15.14,16.14 1 0
m/p/p.go:18.2,18.14 1 0
`

func TestCaseExpressionsAndPackageValuesGetACount(t *testing.T) {
	out, err := complete(profile, func(name string) ([]byte, error) {
		if name != "m/p/p.go" {
			t.Fatalf("read %q", name)
		}
		return []byte(src), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	added, ok := strings.CutPrefix(out, profile)
	if !ok {
		t.Fatalf("the profile's lines changed:\n%s", out)
	}
	want := "m/p/p.go:21.20,21.26 0 1\n" + // 5 * 60, run at the package's initialisation
		"m/p/p.go:21.28,21.33 0 1\n" + // 2 - 1
		"m/p/p.go:5.7,5.13 0 1\n" + // n > 10
		"m/p/p.go:7.7,7.24 0 1\n" + // n > 0 && n%2 == 0
		"m/p/p.go:15.7,15.8 0 0\n" + // 1, in a switch that never ran
		"m/p/p.go:15.10,15.15 0 0\n" // n - 2
	if added != want {
		t.Errorf("added\n%s\nwant\n%s", added, want)
	}
}

func TestOtherModulesAreLeftAlone(t *testing.T) {
	in := "mode: set\nother/x.go:1.1,2.2 1 1\n"
	out, err := complete(in, func(string) ([]byte, error) { return nil, nil })
	if err != nil || out != in {
		t.Fatalf("got %q, %v; want the profile unchanged", out, err)
	}
}
