package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// The example alerting rules docs/operations.md explains, and that page.
const (
	alertRulesPath = "../../deploy/prometheus/alerts.yml"
	operationsPath = "../../docs/operations.md"
)

// promWrites are the series Prometheus writes itself for each scrape target: a rule may read
// them though no /metrics serves them.
var promWrites = map[string]bool{"up": true}

// targetLabels are the labels Prometheus adds to every series it scrapes.
var targetLabels = map[string]bool{"job": true, "instance": true}

// alertRule is one rule of the file, and what its expression reads.
type alertRule struct {
	name    string
	expr    string
	runbook string
	// reads are the metrics its selectors select, each with the labels the rule needs it to
	// have: its selector's matchers, and the labels it is aggregated or matched by.
	reads map[string][]string
	// groupings are the label lists of by (…) and on (…), with the metrics each applies to:
	// a label must be on at least one of them (else the rule groups by nothing).
	groupings []grouping
}

type grouping struct {
	labels, metrics []string
}

// loadAlertRules parses the rules file as Prometheus does (rulefmt, with each expression's
// PromQL and each template checked), and returns its rules with what each reads.
func loadAlertRules(t *testing.T) []alertRule {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(alertRulesPath, false, model.LegacyValidation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	var rules []alertRule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule that is not an alert (%q): the file holds alerts only", g.Name, r.Record)
				continue
			}
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err) // rulefmt parsed it already
			}
			rule := alertRule{name: r.Alert, expr: r.Expr, runbook: r.Annotations["runbook"], reads: map[string][]string{}}
			rule.inspect(t, expr)
			rules = append(rules, rule)
		}
	}
	if len(rules) == 0 {
		t.Fatal("the rules file holds no alert")
	}
	return rules
}

// inspect records what node reads.
func (r *alertRule) inspect(t *testing.T, node parser.Node) {
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			name := selectorName(n)
			if name == "" {
				t.Errorf("%s: the selector %s names no metric (a regular expression or no name)", r.name, n)
				return nil
			}
			ls := r.reads[name]
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					ls = append(ls, m.Name)
				}
			}
			r.reads[name] = ls
		case *parser.AggregateExpr:
			if !n.Without && len(n.Grouping) > 0 {
				r.groupings = append(r.groupings, grouping{n.Grouping, metricsOf(n.Expr)})
			}
		case *parser.BinaryExpr:
			if vm := n.VectorMatching; vm != nil && vm.On && len(vm.MatchingLabels) > 0 {
				r.groupings = append(r.groupings, grouping{vm.MatchingLabels, metricsOf(n.LHS)},
					grouping{vm.MatchingLabels, metricsOf(n.RHS)})
			}
		}
		return nil
	})
}

// selectorName is the metric a selector selects by an exact name, or "".
func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// metricsOf returns the metrics the selectors under node select.
func metricsOf(node parser.Node) []string {
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && selectorName(vs) != "" {
			names = append(names, selectorName(vs))
		}
		return nil
	})
	return names
}

// TestAlertRulesParse: the rules file is valid as Prometheus loads it (`promtool check
// rules`: YAML, PromQL, templates), every selector names its metric exactly, every alert
// has a severity and a summary, and its runbook is a section of docs/operations.md.
func TestAlertRulesParse(t *testing.T) {
	doc, err := os.ReadFile(operationsPath)
	if err != nil {
		t.Fatal(err)
	}
	anchors := headingAnchors(string(doc))
	rules := loadAlertRules(t)
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.name] {
			t.Errorf("two alerts are named %s", r.name)
		}
		seen[r.name] = true
		if len(r.reads) == 0 {
			t.Errorf("%s reads no metric", r.name)
		}
		anchor, ok := strings.CutPrefix(r.runbook, "docs/operations.md#")
		if !ok || !anchors[anchor] {
			t.Errorf("%s: runbook %q is not a section of docs/operations.md", r.name, r.runbook)
		}
	}
	groups, _ := rulefmt.ParseFile(alertRulesPath, false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s has no summary", r.Alert)
			}
		}
	}
}

// headingAnchors returns the anchors GitHub gives the headings of a Markdown page.
func headingAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(doc, "\n") {
		if title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
			anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")] = true
		}
	}
	return anchors
}

// exported is what scrapes of /metrics served: each series name as Prometheus stores it
// (a histogram's _bucket, _sum and _count; a counter's name with its _total), with the
// labels its series carry.
type exported map[string]map[string]bool

// scrape adds what url's /metrics serves to e.
func (e exported) scrape(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, b)
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	families, err := tp.TextToMetricFamilies(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			for _, s := range seriesOf(name, f.GetType()) {
				e.add(s.name, m.GetLabel(), s.extra)
			}
		}
	}
	return nil
}

type series struct {
	name  string
	extra string // a label the series adds to the metric's: le, quantile
}

// seriesOf returns the series a metric family of name and typ is stored as.
func seriesOf(name string, typ dto.MetricType) []series {
	switch typ {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return []series{{name + "_bucket", "le"}, {name + "_sum", ""}, {name + "_count", ""}}
	case dto.MetricType_SUMMARY:
		return []series{{name, "quantile"}, {name + "_sum", ""}, {name + "_count", ""}}
	}
	return []series{{name, ""}}
}

func (e exported) add(name string, ls []*dto.LabelPair, extra string) {
	if e[name] == nil {
		e[name] = map[string]bool{}
	}
	for _, l := range ls {
		e[name][l.GetName()] = true
	}
	if extra != "" {
		e[name][extra] = true
	}
}

// missing returns, for each rule, the metrics and labels it reads that e lacks, sorted.
func missing(rules []alertRule, e exported) []string {
	var out []string
	for _, r := range rules {
		for name, ls := range r.reads {
			if promWrites[name] {
				continue
			}
			have, ok := e[name]
			if !ok {
				out = append(out, fmt.Sprintf("%s reads %s, which no /metrics serves", r.name, name))
				continue
			}
			for _, l := range ls {
				if !have[l] && !targetLabels[l] {
					out = append(out, fmt.Sprintf("%s reads %s by the label %s, which its series lack", r.name, name, l))
				}
			}
		}
		for _, g := range r.groupings {
			if !slices.ContainsFunc(g.metrics, func(m string) bool { return e[m] != nil }) {
				continue // reported above as not served
			}
			for _, l := range g.labels {
				if !targetLabels[l] && !slices.ContainsFunc(g.metrics, func(m string) bool { return e[m][l] || promWrites[m] }) {
					out = append(out, fmt.Sprintf("%s groups or matches %v by %s, which none of them has", r.name, g.metrics, l))
				}
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}
