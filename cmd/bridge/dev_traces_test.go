package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/socialbridge/bridge/internal/telemetry/waterfall"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

var welcomeTraces = regexp.MustCompile(`follow each delivery from the webhook to its effect: (http://\S+/traces)\n`)

// waterfallRow is a row of the traces page as Chromium draws it.
type waterfallRow struct {
	Span, Parent, Kind, Label string
	Depth                     int
	BarLeft, BarWidth         float64
	LaneLeft, LaneRight       float64
}

// readTrace reads the rows of the trace whose section holds the text want.
const readTrace = `((want) => {
  const section = [...document.querySelectorAll('section.trace')].find(s => s.textContent.includes(want));
  if (!section) return null;
  return [...section.querySelectorAll('details.row')].map(d => {
    const bar = d.querySelector('.bar').getBoundingClientRect(), lane = d.querySelector('.lane').getBoundingClientRect();
    return {Span: d.dataset.span, Parent: d.dataset.parent, Kind: d.dataset.kind, Depth: +d.dataset.depth,
      Label: d.querySelector('.label').firstChild.textContent.trim(),
      BarLeft: bar.left, BarWidth: bar.width, LaneLeft: lane.left, LaneRight: lane.right};
  });
})`

// TestDevDrawsTracesInChromium follows the welcome: a simulated failed post's trace is on
// the traces page the welcome prints, drawn in headless Chromium as a waterfall: the
// delivery's server span first, the retry action's call (its client span) under the
// group's processing of the record, each bar inside its lane and starting no earlier than
// its parent's; a click shows a span's attributes; nothing is fetched from elsewhere.
func TestDevDrawsTracesInChromium(t *testing.T) {
	chromium := testenv.Require(t, testenv.Chromium)
	stdout, stderr, _ := startDev(t)
	traces := welcomeTraces.FindStringSubmatch(stdout.String())
	commands := printedCommands(t, stdout.String())
	if traces == nil || len(commands) == 0 || !strings.HasPrefix(commands[0], "simulate post.failed") {
		t.Fatalf("no traces URL or simulate post.failed in:\n%s", stdout.String())
	}
	failed := acceptedID.FindStringSubmatch(runPrinted(t, commands[0]))
	if failed == nil {
		t.Fatal("simulate printed no accepted event id")
	}
	id := failed[1]
	testkit.Eventually(t, 2*time.Minute, "the trace of "+id+" reaches the retry action's call", func() bool {
		_, body := get(t, traces[1]+"/api/traces")
		var ts []waterfall.Trace
		_ = json.Unmarshal([]byte(body), &ts)
		return slices.ContainsFunc(ts, func(tr waterfall.Trace) bool { return reachesAction(tr, id) })
	}, stderr.String)

	ctx, requests := chromiumTab(t, chromium)
	// CSS, not a search: the page's style names section.trace too.
	if err := chromedp.Do(ctx, chromedp.Navigate(traces[1]), chromedp.WaitVisible(chromedp.CSS("section.trace"))); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]waterfallRow](readTrace+`(`+jsString(id)+`)`))
	if err != nil {
		t.Fatal(err)
	}
	checkWaterfall(t, rows)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.ArtifactDir(), "traces.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	click := `document.querySelector('details.row.client summary').click()`
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](click), chromedp.WaitVisible(chromedp.CSS("details.row.client[open] dl.attrs dd"))); err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('details.row.client[open] dl.attrs').innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(shown, "bridge.effect") || !strings.Contains(shown, "retry action") {
		t.Errorf("a click on the call shows:\n%s", shown)
	}
	for _, u := range requests() {
		if p, err := url.Parse(u); err != nil || p.Hostname() != "127.0.0.1" {
			t.Errorf("the page fetched %s", u)
		}
	}
}

// reachesAction reports whether tr is the trace of the delivery of id and holds the retry
// action's call.
func reachesAction(tr waterfall.Trace, id string) bool {
	var delivery, call bool
	for _, s := range tr.Spans {
		delivery = delivery || s.Kind == "server" && s.Attrs["bridge.event.id"] == id
		call = call || s.Kind == "client" && s.Attrs["bridge.effect"] == "retry action"
	}
	return delivery && call
}

func checkWaterfall(t *testing.T, rows []waterfallRow) {
	t.Helper()
	if len(rows) < 5 || rows[0].Kind != "server" || rows[0].Label != "POST /webhooks/{source}" || rows[0].Depth != 0 {
		t.Fatalf("the trace's rows: %+v", rows)
	}
	byID := map[string]waterfallRow{}
	for _, r := range rows {
		byID[r.Span] = r
	}
	var call *waterfallRow
	for i, r := range rows {
		if r.BarWidth < 1 || r.BarLeft < r.LaneLeft-0.5 || r.BarLeft+r.BarWidth > r.LaneRight+0.5 {
			t.Errorf("the bar of %q is %.1f px wide at %.1f, its lane %.1f-%.1f", r.Label, r.BarWidth, r.BarLeft, r.LaneLeft, r.LaneRight)
		}
		if p, ok := byID[r.Parent]; ok {
			if r.Depth != p.Depth+1 || r.BarLeft < p.BarLeft-0.5 {
				t.Errorf("%q (depth %d, at %.1f) under %q (depth %d, at %.1f)", r.Label, r.Depth, r.BarLeft, p.Label, p.Depth, p.BarLeft)
			}
		}
		if r.Kind == "client" && call == nil {
			call = &rows[i]
		}
	}
	if call == nil {
		t.Fatalf("no client span among %+v", rows)
	}
	// The call, under the processing of the record, under its receive, under the produce,
	// under the delivery.
	var chain []string
	for r, ok := *call, true; ok; r, ok = byID[r.Parent] {
		chain = append(chain, r.Kind)
	}
	if want := []string{"client", "consumer", "consumer", "producer", "server"}; !slices.Equal(chain, want) {
		t.Errorf("from the call up: %v, want %v", chain, want)
	}
}

// chromiumTab starts headless Chromium with a new profile and returns a tab and the URLs of
// every request the tab has made so far.
func chromiumTab(t *testing.T, chromium string) (context.Context, func() []string) {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	var mu sync.Mutex
	var urls []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(urls)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
