package main

import (
	"fmt"
	"slices"
)

// median is the median of f over the phases ps (the mean of the middle two for an even count).
func median(ps []Phase, f func(Phase) float64) float64 {
	xs := make([]float64, len(ps))
	for i, p := range ps {
		xs[i] = f(p)
	}
	m, _, _ := medianOf(xs)
	return m
}

// medianOf returns the median, lowest and highest of xs; zeros when xs is empty.
func medianOf(xs []float64) (m, lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m = s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return m, s[0], s[len(s)-1]
}

// medianRange writes the median of xs and, for more than one, its range: "0.91 [0.88–0.95]".
func medianRange(xs []float64, format string) string {
	m, lo, hi := medianOf(xs)
	if len(xs) < 2 {
		return fmt.Sprintf(format, m)
	}
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", m, lo, hi)
}
