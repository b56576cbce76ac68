package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Micro is one line of `go test -bench -benchmem` output.
type Micro struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	MBPerSec    float64 `json:"mb_per_sec,omitempty"`
}

// parseMicro reads the benchmark lines of `go test -bench -benchmem` output, dropping the
// -GOMAXPROCS suffix of each name.
func parseMicro(r io.Reader) ([]Micro, error) {
	var out []Micro
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		m := Micro{Name: trimProcs(strings.TrimPrefix(f[0], "Benchmark"))}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				m.NsPerOp = v
			case "B/op":
				m.BytesPerOp = v
			case "allocs/op":
				m.AllocsPerOp = v
			case "MB/s":
				m.MBPerSec = v
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func findMicro(ms []Micro, name string) (Micro, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return Micro{}, false
}
