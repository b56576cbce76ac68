package waterfall

import (
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"time"
)

// web holds the page's template: the binary serves it, nothing comes from elsewhere.
//
//go:embed web
var web embed.FS

var pageTemplate = template.Must(template.New("traces.html").Funcs(template.FuncMap{"duration": duration}).ParseFS(web, "web/traces.html"))

// shown is how many traces the page and the API show, the latest first.
const shown = 50

// Handler serves GET /traces, the waterfalls of the kept traces, and GET /traces/api/traces,
// the same as JSON; mount it on both paths.
func (r *Recent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /traces", r.page)
	mux.HandleFunc("GET /traces/api/traces", r.api)
	return mux
}

func (r *Recent) api(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(r.Traces(shown))
}

func (r *Recent) page(w http.ResponseWriter, _ *http.Request) {
	traces := r.Traces(shown)
	p := pageData{Kept: r.max, Traces: make([]traceView, len(traces))}
	known := map[string]bool{}
	for _, t := range traces {
		known[t.ID] = true
	}
	for i, t := range traces {
		p.Traces[i] = view(t, known)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := pageTemplate.Execute(w, p); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// pageData is what the template draws.
type pageData struct {
	Kept   int
	Traces []traceView
}

type traceView struct {
	ID       string
	Title    string // the first root span's name
	Parts    []string
	Duration time.Duration
	Failed   bool
	Rows     []rowView
}

// rowView is one span of a waterfall: its bar starts Left percent into the trace and is
// Width percent of it long.
type rowView struct {
	Span
	Depth               int
	Indent, Left, Width float64 // Indent in em
	Duration            time.Duration
	Attrs               []attr
	Links               []linkView
}

type attr struct{ Key, Value string }

type linkView struct {
	ID   string
	Kept bool // the linked trace is on the page
}

// minWidth keeps the bar of a span of a few microseconds in a trace of seconds visible.
const minWidth = 0.4

func view(t Trace, known map[string]bool) traceView {
	total := t.End.Sub(t.Start)
	v := traceView{ID: t.ID, Title: t.Spans[0].Name, Duration: total}
	depth := map[string]int{}
	for _, s := range t.Spans {
		d := 0
		if p, ok := depth[s.ParentID]; ok && s.ParentID != "" {
			d = p + 1
		}
		depth[s.SpanID] = d
		row := rowView{Span: s, Depth: d, Indent: 0.2 + 1.2*float64(d), Duration: s.End.Sub(s.Start), Left: percent(s.Start.Sub(t.Start), total)}
		row.Width = max(minWidth, min(percent(s.End.Sub(s.Start), total), 100-row.Left))
		row.Left = min(row.Left, 100-row.Width) // a short span at the end stays in its lane
		for k, val := range s.Attrs {
			row.Attrs = append(row.Attrs, attr{k, val})
		}
		slices.SortFunc(row.Attrs, func(a, b attr) int { return cmp.Compare(a.Key, b.Key) })
		for _, id := range s.Links {
			row.Links = append(row.Links, linkView{ID: id, Kept: known[id]})
		}
		if !slices.Contains(v.Parts, s.Part) {
			v.Parts = append(v.Parts, s.Part)
		}
		v.Failed = v.Failed || s.Failed
		v.Rows = append(v.Rows, row)
	}
	return v
}

func percent(d, total time.Duration) float64 {
	if total <= 0 {
		return 0
	}
	return 100 * float64(d) / float64(total)
}

// duration writes d for a reader: 850µs, 12.3ms, 1.52s.
func duration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
