// Package resultsmd keeps bench/RESULTS.md one file written by several benchmarks: each
// owns a section between HTML-comment markers and rewrites only that section, so a run of
// one benchmark never drops the figures of the others.
package resultsmd

import (
	"bytes"
	"os"
)

// Markers returns the begin and end markers of the section called name.
func Markers(name string) (begin, end string) {
	return "<!-- " + name + ":begin -->", "<!-- " + name + ":end -->"
}

// WriteSection replaces the section called name in the file at path with body, keeping the
// rest of the file as it is. A section the file lacks is added: at the top when first is
// set, else at the end. A missing file is created.
func WriteSection(path, name, body string, first bool) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	begin, end := Markers(name)
	section := []byte(begin + "\n" + string(bytes.TrimRight([]byte(body), "\n")) + "\n" + end + "\n")
	return os.WriteFile(path, splice(old, section, []byte(begin), []byte(end), first), 0o644)
}

func splice(old, section, begin, end []byte, first bool) []byte {
	b, e := bytes.Index(old, begin), bytes.Index(old, end)
	switch {
	case b >= 0 && e > b:
		rest := bytes.TrimPrefix(old[e+len(end):], []byte("\n"))
		return append(append(append([]byte{}, old[:b]...), section...), rest...)
	case first && len(old) > 0:
		return append(append(section, '\n'), old...)
	case len(old) > 0:
		return append(append(bytes.TrimRight(old, "\n"), "\n\n"...), section...)
	}
	return section
}
