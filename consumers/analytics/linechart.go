package analytics

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// The geometry of every chart, in SVG user units.
const (
	chartW = 760
	chartH = 240
	padL   = 60
	padR   = 16
	padT   = 12
	padB   = 30
)

// palette colours the platforms, in the order they are listed.
var palette = []string{"#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#4b5563"}

// lineChart is a line chart over the hours of a window, drawn on the server. Each point it
// marks carries its hour and value in data- attributes, so the numbers can be read back
// from the page.
type lineChart struct {
	ID, Title, Note string
	W, H            int
	Series          []series
	XTicks, YTicks  []tick
	Legend          []legendEntry // for charts whose lines are not the platforms
	Empty           bool
}

type series struct {
	Name, Color string
	Path        string
	// Marks are the points as SVG circles, each with its series, hour (RFC 3339) and value
	// (the number drawn: a count, a percentage or milliseconds) in data- attributes and its
	// tooltip as a title. They are written here, every text escaped, rather than by the
	// template: html/template took longer over a month's thousands of points than the
	// queries did.
	Marks template.HTML
}

type tick struct {
	Pos   float64
	Label string
}

// axes maps the hours of a window to x and values 0…top to y.
type axes struct {
	from time.Time
	n    int
	top  float64
}

func (a axes) x(i int) float64 {
	return padL + (float64(i)+0.5)*float64(chartW-padL-padR)/float64(a.n)
}

func (a axes) y(v float64) float64 {
	return chartH - padB - v/a.top*float64(chartH-padT-padB)
}

func (a axes) index(t time.Time) int { return int(t.Sub(a.from) / time.Hour) }

// hourly is one line's values by hour index.
type hourly struct {
	name, color string
	values      map[int]float64
	zeroFill    bool // a missing hour is 0 (counts), not a gap (rates, delays)
}

// valueFormat renders a value twice: as a plain number for a point's data-value, and for people
// (tooltips and the axis).
type valueFormat struct {
	number, label func(float64) string
}

var (
	counts   = valueFormat{number: func(v float64) string { return fmt.Sprintf("%.0f", v) }, label: func(v float64) string { return fmt.Sprintf("%.0f", v) }}
	percents = valueFormat{number: func(v float64) string { return fmt.Sprintf("%.2f", v) }, label: func(v float64) string { return fmt.Sprintf("%.1f%%", v) }}
	millis   = valueFormat{number: func(v float64) string { return fmt.Sprintf("%.0f", v) }, label: formatDuration}
)

// newLineChart draws lines over the n hours from from.
func newLineChart(id, title string, from time.Time, n int, lines []hourly, f valueFormat) lineChart {
	var most float64
	for _, l := range lines {
		for _, v := range l.values {
			most = math.Max(most, v)
		}
	}
	a := axes{from: from, n: n, top: niceCeil(most)}
	c := lineChart{ID: id, Title: title, W: chartW, H: chartH, XTicks: a.timeTicks(), YTicks: a.valueTicks(f.label), Empty: !anyValues(lines)}
	for _, l := range lines {
		c.Series = append(c.Series, a.line(l, f))
	}
	return c
}

func anyValues(lines []hourly) bool {
	for _, l := range lines {
		if len(l.values) > 0 {
			return true
		}
	}
	return false
}

func (a axes) line(l hourly, f valueFormat) series {
	s := series{Name: l.name, Color: l.color}
	var path, marks strings.Builder
	name, color := html.EscapeString(l.name), html.EscapeString(l.color)
	drawing := false
	for i := range a.n {
		v, ok := l.values[i]
		if !ok && !l.zeroFill {
			drawing = false
			continue
		}
		cmd := "L"
		if !drawing {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f,%.1f", cmd, a.x(i), a.y(v))
		drawing = true
		if ok {
			hour := a.from.Add(time.Duration(i) * time.Hour)
			fmt.Fprintf(&marks, `<circle cx="%s" cy="%s" r="3" fill="%s" data-series="%s" data-hour="%s" data-value="%s"><title>%s</title></circle>`,
				number(a.x(i)), number(a.y(v)), color, name, hour.Format(time.RFC3339), html.EscapeString(f.number(v)),
				html.EscapeString(fmt.Sprintf("%s, %s: %s", l.name, hour.Format("Jan 2 15:04"), f.label(v))))
		}
	}
	s.Path, s.Marks = path.String(), template.HTML(marks.String()) //nolint:gosec // every text in it is escaped above
	return s
}

// number writes v as the template would: the shortest form that reads back as v.
func number(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// tickSteps are the hour steps the time axis labels with, the first that leaves at most
// eight labels.
var tickSteps = []int{1, 2, 3, 6, 12, 24, 48, 72, 168}

func (a axes) timeTicks() []tick {
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if a.n/s <= 8 {
			step = s
			break
		}
	}
	var out []tick
	for i := 0; i < a.n; i += step {
		t := a.from.Add(time.Duration(i) * time.Hour)
		label := t.Format("15:04")
		if i == 0 || t.Hour() < step || step >= 24 {
			label = t.Format("Jan 2 15:04")
		}
		out = append(out, tick{Pos: a.x(i), Label: label})
	}
	return out
}

func (a axes) valueTicks(label func(float64) string) []tick {
	out := make([]tick, 0, 5)
	for i := range 5 {
		v := a.top * float64(i) / 4
		out = append(out, tick{Pos: a.y(v), Label: label(v)})
	}
	return out
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1), so axis labels are round.
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// formatDuration renders milliseconds for people: 850 ms, 4.2 s, 3.5 min, 2.1 h.
func formatDuration(ms float64) string {
	switch {
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	case ms < 60_000:
		return fmt.Sprintf("%.1f s", ms/1000)
	case ms < 3_600_000:
		return fmt.Sprintf("%.1f min", ms/60_000)
	}
	return fmt.Sprintf("%.1f h", ms/3_600_000)
}
